"""Anomaly detection: how well each score of a run (reconstruction error, -ELBO, NLL, complexity-corrected NLL)
separates its normal test examples from anomalies (held-out classes or another dataset): ROC-AUC, PR-AUC, FPR at
95% TPR, histograms, ROC curves, the most and least anomalous images (:mod:`vaelab.studies.anomaly`)."""
import pandas as pd
import streamlit as st
import torch

from vaelab.app import ui
from vaelab.data import DATASETS
from vaelab.measures import MEASURES
from vaelab.studies.anomaly import anomaly_study


@st.cache_data(max_entries=8, show_spinner="scoring the test examples")
def study(path: str, stamp: float, anomalous: str | None, holdout: tuple[int, ...] | None, n: int, k: int):
    return anomaly_study(path, anomalous=anomalous, holdout=list(holdout) if holdout else None, limit=n, k=k)


st.title("Anomaly detection")
info, cfg, model = ui.open_run("reconstruct")
kind = st.sidebar.radio("anomalies", ["held-out classes", "another dataset"])
if kind == "another dataset":
    anomalous, holdout = st.sidebar.selectbox("dataset", [d for d in DATASETS if d != cfg.data.name]), None
else:
    classes = list(range(info.facts.num_classes))
    anomalous = None
    holdout = tuple(st.sidebar.multiselect("held-out classes", classes, classes[-1:] if cfg.data.classes is None
                                           else [], help="empty: for a run trained on some classes "
                                           "(data.classes), all the others"))
n = st.sidebar.select_slider("examples of each group", [100, 200, 500, 1000, 2000], 200)
k = st.sidebar.select_slider("importance samples", [10, 20, 50, 100], 20)
with ui.errors_shown():
    found = study(str(info.path), info.run.checkpoint("best").stat().st_mtime, anomalous, holdout or None, n, k)
st.caption(f"normal: {found.normal} · anomalous: {found.anomalous}")
table = pd.DataFrame([{"score": MEASURES[key].title, **row} for key, row in found.metrics.items()])
st.dataframe(table, hide_index=True, column_config={
    "score": st.column_config.TextColumn("score", help="; ".join(f"{MEASURES[k].title}: {MEASURES[k].help}"
                                                                 for k in found.metrics)),
    **ui.measure_columns(next(iter(found.metrics.values())))})
figures = found.figures()
left, right = st.columns([3, 2])
ui.show_figure(figures["histograms"], f"{info.name}-anomaly-scores", width=460, where=left)
ui.show_figure(figures["roc"], f"{info.name}-roc", width=300, where=right)
best = st.selectbox("images ranked by", list(found.metrics), format_func=lambda key: MEASURES[key].label)
most, least = found.extremes(best, 16)
ui.show_images(torch.cat([most, least]), 16, rows=["most", "least"], columns=[str(r) for r in range(1, 17)],
               caption=f"the 16 most and the 16 least anomalous images by {MEASURES[best].label} (columns: rank), as "
                       "the dataset holds them", name=f"{info.name}-anomaly-extremes")
