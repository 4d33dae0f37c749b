"""The Streamlit entry point of ``vaelab app``: the pages and their navigation."""
from pathlib import Path

import streamlit as st

from vaelab.app.gate import guard

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="vaelab", layout="wide")
guard()  # an allowed Host, and the token when the app has one
st.navigation([
    st.Page(VIEWS / "runs.py", title="Runs", default=True),  # at /
    st.Page(VIEWS / "train.py", title="Train", url_path="train"),
    st.Page(VIEWS / "explore.py", title="Explore", url_path="explore"),
    st.Page(VIEWS / "compare.py", title="Compare", url_path="compare"),
    st.Page(VIEWS / "vq.py", title="VQ", url_path="vq"),
    st.Page(VIEWS / "disentangle.py", title="Disentanglement", url_path="disentanglement"),
    st.Page(VIEWS / "arithmetic.py", title="Arithmetic", url_path="arithmetic"),
    st.Page(VIEWS / "beta.py", title="β study", url_path="beta"),
    st.Page(VIEWS / "sweep.py", title="Sweep", url_path="sweep"),
    st.Page(VIEWS / "anomaly.py", title="Anomaly", url_path="anomaly"),
    st.Page(VIEWS / "impute.py", title="Imputation", url_path="imputation"),
]).run()
