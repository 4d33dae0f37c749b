"""Runs: every run under the runs directory, its state and headline numbers."""
import streamlit as st

from vaelab.app.gate import runs_root
from vaelab.app.runs import find_runs
from vaelab.measures import MEASURES

st.title("vaelab runs")
root = runs_root()
HEADLINE = ("nelbo", "recon", "kl", "nll", "mse", "psnr", "ssim", "active_units", "perplexity", "codes_used", "fid")


@st.cache_data(ttl=5, show_spinner=False)
def scan(root: str) -> tuple[list[dict], list[str]]:
    """The table's rows and the unreadable runs' errors, scanned at most every 5 s (Refresh: now)."""
    rows, errors = [], []
    for r in find_runs(root):
        records = r.run.records() if r.error is None else []
        row = {"run": r.name, "model": r.model, "dataset": r.dataset, "state": r.state,
               "epochs": records[-1]["epoch"] if records else 0,
               "best val loss": records[-1].get("val/best_loss") if records else None}
        rows.append(row | {k: v for k, v in (r.eval() or {}).items() if k in HEADLINE})
        errors += [f"{r.name}: {r.error}"] if r.error else []
    return rows, errors


head, refresh = st.columns([5, 1])
head.caption(f"runs directory: `{root}`")
if refresh.button("Refresh", help="look for new runs and states again"):
    scan.clear()
if not root.is_dir():
    st.warning(f"{root} does not exist yet; it is created when you start a run on the Train page.")
    st.stop()
rows, errors = scan(str(root))
if not rows:
    st.info("No runs yet: start one on the Train page, or with `vaelab train ... --out "
            f"{root}/NAME`.")
    st.stop()
columns = {k: st.column_config.NumberColumn(MEASURES[k].heading, help=MEASURES[k].help) for k in HEADLINE} | {
    "best val loss": st.column_config.NumberColumn(f"best val {MEASURES['loss'].heading}", help="The lowest "
                                                   f"validation loss so far. {MEASURES['loss'].help}")}
st.dataframe(rows, hide_index=True, column_config=columns, height=35 * (len(rows) + 1) + 3)  # every row in view
for error in errors:
    st.error(error)
st.markdown("Open a run on **Explore** (VAEs), **VQ** (VQ-VAEs) or **Disentanglement**; put several side by side "
            "on **Compare**. Evaluate a run with `vaelab eval DIR` (or the button on Compare) to fill the numbers.")
