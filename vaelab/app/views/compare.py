"""Compare runs side by side: their eval.json numbers, their training curves overlaid, traversals of the same test
image, and where they sit between rate (KL) and distortion (reconstruction). ``?runs=A&runs=B`` opens it with those
runs chosen; one still training (a plain VAE that "Compare with plain VAE" started) joins when it has a checkpoint."""
import streamlit as st
import torch

from vaelab.api import evaluate_run
from vaelab.app import ui
from vaelab.app.paths import inside
from vaelab.app.runs import find_runs, run_info
from vaelab.measures import MEASURES, SAMPLE_QUALITY
from vaelab.viz import dims_by_kl, rate_distortion_figure, traversal
from vaelab.viz.plots import runs_curves_figure

st.title("Compare")
root = ui.runs_root()
runs = [r for r in find_runs(root) if r.trained]
names = [r.name for r in runs]
wanted = st.query_params.get_all("runs")
pending = [n for n in wanted if n not in names and inside(root, root / n) and (root / n).is_dir()]


@st.fragment(run_every=2.0)
def waiting() -> None:
    """The chosen runs that have no checkpoint yet, with their progress; the page redraws when they have one."""
    infos = [run_info(root, root / n) for n in pending]
    if any(r.trained for r in infos):
        st.rerun()
    for r in infos:
        progress = r.run.read_progress()
        if r.state not in ("running", "training"):
            st.warning(f"{r.name} has no checkpoint: its training is {r.state} (see the Train page)")
            continue
        text = f"{r.name}: {r.state}" + (f", step {progress['step']} of {progress['total_steps']}" if progress else "")
        st.progress(min(progress["step"] / max(progress["total_steps"], 1), 1.0) if progress else 0.0,
                    text=text + "; it joins the comparison when it has a checkpoint")


if pending:
    waiting()
if "compare-runs" not in st.session_state:  # the address opens the page; the widget keeps its own state after that
    st.session_state["compare-runs"] = [n for n in wanted if n in names] or names[:2]
else:  # less a run no longer there, plus one the page waited for that has a checkpoint now
    kept = [n for n in st.session_state["compare-runs"] if n in names]
    waited = st.session_state.get("compare-pending", [])
    st.session_state["compare-runs"] = kept + [n for n in waited if n in names and n not in kept]
st.session_state["compare-pending"] = pending
chosen = st.multiselect("runs", names, key="compare-runs", help="e.g. a VAE and a beta-VAE with beta = 4")
st.query_params["runs"] = [*chosen, *pending]
selected = [runs[names.index(name)] for name in chosen]
if len(selected) < 2:
    st.info("Choose two or more trained runs.")
    st.stop()



def scale(r) -> str:
    """What a run's nats are measured on: its dataset, its binarization and its likelihood."""
    with ui.errors_shown(stop=False):
        cfg = r.run.load_config()
        return f"{cfg.data.name} ({cfg.data.binarize}, {cfg.model.likelihood} likelihood)"
    return "unreadable"


groups: dict[str, list] = {}
for r in selected:
    groups.setdefault(scale(r), []).append(r)
selected = [r for group in groups.values() for r in group]  # the columns grouped by dataset and likelihood
if len(groups) > 1:
    st.warning("These runs' numbers are not comparable across groups: nats, bits and image metrics depend on the "
               "dataset and the likelihood. " + "; ".join(f"**{g}**: {', '.join(r.name for r in rs)}"
                                                          for g, rs in groups.items()))

missing = [r for r in selected if r.eval() is None]
if missing:
    st.warning("Not evaluated yet: " + ", ".join(r.name for r in missing))
    if st.button("Evaluate them on the test split", help="as `vaelab eval DIR`; writes each run's eval.json"):
        for r in missing:
            with st.spinner(f"evaluating {r.name}"), ui.errors_shown(stop=False):
                evaluate_run(r.path)
        st.rerun()

SHOWN = ("nelbo", "recon", "kl", "nll", "sse", "mse", "psnr", "ssim", "mmd", "active_units", "perplexity",
         "codes_used", *SAMPLE_QUALITY)
table = {"model": {}, "dataset": {}, "beta": {}, "latent / codes": {}}
for r in selected:
    with ui.errors_shown(stop=False):
        cfg = r.run.load_config()
        table["model"][r.name], table["dataset"][r.name] = cfg.model.name, cfg.data.name
        table["beta"][r.name] = f"{cfg.kl.beta:g} ({cfg.kl.schedule})" if r.family.density else "n/a"
        table["latent / codes"][r.name] = r.family.size(cfg)
    for key in SHOWN:
        value = (r.eval() or {}).get(key)
        if value is not None:
            table.setdefault(MEASURES[key].heading, {})[r.name] = f"{value:.4g}" if isinstance(value, float) else str(value)
    quality = (r.eval() or {}).get("sample_quality")
    if quality:
        net = quality["features"]
        table.setdefault("sample-quality features", {})[r.name] = f"{net['name']} ({net['sha256'][:12]})"
st.table([{"": title, **{r.name: str(row.get(r.name, "")) for r in selected}} for title, row in table.items()])
shown = [key for key in SHOWN if MEASURES[key].heading in table]  # each row explained below the table
if shown:
    st.caption("  \n".join(f"**{MEASURES[key].heading}**: {MEASURES[key].help}" for key in shown) + "  \nSample "
               "quality compares only between runs scored with the same feature network (`vaelab eval DIR "
               "--sample-quality`).")

st.subheader("rate and distortion")
points = {r.name: (r.eval()["kl"], r.eval()["recon"]) for r in selected
          if (r.eval() or {}).get("kl") is not None and "recon" in r.eval()}  # an autoencoder has no recon in nats
if points:
    ui.show_figure(rate_distortion_figure(points, legend=True), "rate-distortion", width=400, where=st.columns(2)[0])
else:
    st.caption("evaluate VAE runs to place them here")

st.subheader("training curves")
curves = runs_curves_figure({r.name: r.run.records() for r in selected})
if curves is not None:
    ui.show_figure(curves, "training-curves")
    st.caption("every chosen run on one plot per quantity, a colour each: " + ", ".join(r.name for r in selected))

vaes = [r for r in selected if r.can("traverse")]
if vaes:
    st.subheader("traversals")
    left, right = st.columns(2)
    index = left.number_input("test image", 0, 9999, 0)
    rows = right.slider("dimensions per run (most KL first)", 1, 10, 5)
    for column, r in zip(st.columns(len(vaes)), vaes):
        with column, ui.errors_shown(stop=False):
            cfg, model = ui.load(r)
            test = ui.split(cfg)
            i = min(index, len(test) - 1)
            y = None if test.y is None else test.y[i:i + 1]
            dims = dims_by_kl(ui.evaluation(r), rows)
            x = test.batch(torch.tensor([i]))  # one image, not the whole split as float
            images, nrow = traversal(model, x, y, dims, 9, 3.0)
            ui.show_images(images, nrow, caption=f"{r.name}: each row one dimension, -3 to 3 prior sd",
                           rows=[f"z{d}" for d in dims], name=f"{r.name}-traversal", width=400)
