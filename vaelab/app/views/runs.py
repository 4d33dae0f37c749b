"""Runs: every run under the runs directory, its state and headline numbers."""
import streamlit as st

from vaelab.app import ui
from vaelab.app.runs import find_runs
from vaelab.measures import MEASURES

st.title("vaelab runs")
root = ui.runs_root()
head, refresh = st.columns([5, 1])
head.caption(f"runs directory: `{root}`")
refresh.button("Refresh", help="look for new runs and states again")
if not root.is_dir():
    st.warning(f"{root} does not exist yet; it is created when you start a run on the Train page.")
    st.stop()
runs = find_runs(root)
if not runs:
    st.info("No runs yet: start one on the Train page, or with `vaelab train ... --out "
            f"{root}/NAME`.")
    st.stop()

HEADLINE = ("nelbo", "recon", "kl", "nll", "mse", "psnr", "ssim", "active_units", "perplexity", "codes_used", "fid")
rows = []
for r in runs:
    records = r.run.records() if r.error is None else []
    row = {"run": r.name, "model": r.model, "dataset": r.dataset, "state": r.state,
           "epochs": records[-1]["epoch"] if records else 0,
           "best val loss": records[-1].get("val/best_loss") if records else None}
    row |= {k: v for k, v in (r.eval() or {}).items() if k in HEADLINE}
    rows.append(row)
columns = {k: st.column_config.NumberColumn(f"{MEASURES[k].label} {MEASURES[k].arrow}", help=MEASURES[k].help)
           for k in HEADLINE}
st.dataframe(rows, hide_index=True, column_config=columns, height=35 * (len(rows) + 1) + 3)  # every row in view
for r in runs:
    if r.error:
        st.error(f"{r.name}: {r.error}")
st.markdown("Open a run on **Explore** (VAEs), **VQ** (VQ-VAEs) or **Disentanglement**; put several side by side "
            "on **Compare**. Evaluate a run with `vaelab eval DIR` (or the button on Compare) to fill the numbers.")
