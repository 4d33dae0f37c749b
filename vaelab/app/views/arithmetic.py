"""Latent arithmetic: pick an attribute (a class, a CelebA attribute, a factor of a factor dataset), slide its
strength and see test images move along its vector (White 2016); draw an analogy a - b + c."""
import streamlit as st
import torch

from vaelab.app import ui
from vaelab.studies.arithmetic import Arithmetic

STEPS = 5  # images per row between strength 0 and the chosen one


@st.cache_resource(max_entries=4, show_spinner="encoding the attribute examples")
def _study(path: str, stamp: float) -> Arithmetic:
    return Arithmetic(path)


st.title("Latent arithmetic")
info = ui.pick_run("interpolate")
with ui.errors_shown():
    study = _study(str(info.path), info.run.checkpoint("best").stat().st_mtime)
st.caption(f"attribute vectors from {len(study.z)} test examples of {study.cfg.data.name}: the mean code of those "
           f"with the attribute minus that of those without")

left, right = st.columns([1, 2])
attribute = left.selectbox("attribute", study.names)
strength = left.slider("strength", -3.0, 3.0, 2.0, 0.1)
n = int(left.number_input("images", 1, 16, 6))
strengths = torch.linspace(0, strength, STEPS)
index = torch.arange(min(n, len(study.z)))
images, nrow = study.add(attribute, strengths, index)
ui.show_images(images, nrow, f"each row: a test image, then its code + s x v({attribute}), s above each column",
               rows=[f"image {i}" for i in index.tolist()],
               columns=["image", *(f"s={s:.2g}" for s in strengths.tolist())],
               name=f"{info.name}-arithmetic", width=500, where=right)

st.subheader("Analogy")
a, b, c = st.columns(3)
tokens = (a.text_input("a", study.names[-1]), b.text_input("minus b", "img:0"), c.text_input("plus c", study.names[0]))
with ui.errors_shown(stop=False):
    images, nrow = study.analogy(*tokens)
    ui.show_images(images, nrow, "attribute names: their examples' mean code, decoded; img:N: the N-th test image's "
                   "code, decoded", columns=["a", "b", "c", "a - b + c"], name=f"{info.name}-analogy", width=480)
