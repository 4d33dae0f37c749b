"""Imputation: hide part of each test image by a mask, fill it with the run's model (pseudo-Gibbs,
Metropolis-within-Gibbs or importance sampling) and compare the error on the hidden pixels with mean imputation
(:mod:`vaelab.studies.imputation`)."""
import pandas as pd
import streamlit as st

from vaelab.app import ui
from vaelab.studies.imputation import METHODS, imputation_study


@st.cache_data(max_entries=8, show_spinner="filling the hidden pixels")
def study(path: str, stamp: float, mask: str, method: str, n: int, completions: int, steps: int):
    return imputation_study(path, mask, method, limit=n, n=completions, steps=steps)


st.title("Imputation")
info, cfg, model = ui.open_run("likelihood")
kind = st.sidebar.selectbox("mask", ["random", "half-top", "half-left", "square"])
side = min(info.facts.shape[-2:])
mask = {"random": lambda: f"random:{st.sidebar.slider('missing rate', 0.1, 0.9, 0.5, 0.1)}",
        "square": lambda: f"square:{st.sidebar.slider('square side', 1, side, side // 2)}"}.get(kind, lambda: kind)()
method = st.sidebar.selectbox("method", METHODS, help="pseudo-Gibbs (Rezende et al. 2014), Metropolis-within-Gibbs "
                              "(Mattei & Frellsen 2018), importance sampling (Mattei & Frellsen 2019)")
n = st.sidebar.select_slider("test images", [50, 100, 200, 500], 100)
completions = st.sidebar.slider("completions per image", 1, 8, 4)
steps = st.sidebar.select_slider("sweeps", [5, 10, 20, 50, 100], 20)
with ui.errors_shown():
    found = study(str(info.path), info.run.checkpoint("best").stat().st_mtime, mask, method, n, completions, steps)
rows = [{"imputation": name, **errors} for name, errors in found.errors.items()]
st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=ui.measure_columns(next(iter(found.errors.values()))))
if "acceptance" in found.extra:
    st.caption(f"Metropolis-Hastings acceptance rate: {found.extra['acceptance']:.3f}")
images, nrow = found.picture(8)
ui.show_images(images, nrow, caption="each column: a test image; the hidden pixels grey in the masked input",
               rows=["masked", *(f"completion {i + 1}" for i in range(len(images) // nrow - 2)), "truth"],
               name=f"{info.name}-imputation")
