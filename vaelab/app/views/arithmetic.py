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
images, nrow = study.add(attribute, torch.linspace(0, strength, STEPS), torch.arange(min(n, len(study.z))))
with right:
    ui.show_images(images, nrow, f"each row: a test image, then its code + s x v({attribute}) for s from 0 to "
                                 f"{strength:g}")

st.subheader("Analogy")
a, b, c = st.columns(3)
tokens = (a.text_input("a", study.names[-1]), b.text_input("minus b", "img:0"), c.text_input("plus c", study.names[0]))
with ui.errors_shown(stop=False):
    images, nrow = study.analogy(*tokens)
    ui.show_images(images, nrow, f"{tokens[0]}, {tokens[1]}, {tokens[2]}, then {tokens[0]} - {tokens[1]} + "
                                 f"{tokens[2]} (attribute names: their examples' mean code; img:N: the N-th test "
                                 f"image)")
