"""Sweep: the table of a ``vaelab sweep`` (a row per run), its rate-distortion plot and metrics against the swept
keys, posterior collapse per run, and one run picked to look at (its curves, KL per dimension, samples)."""
from urllib.parse import quote

import streamlit as st

from vaelab.app import ui
from vaelab.app.paths import relative
from vaelab.app.runs import run_info
from vaelab.measures import MEASURES
from vaelab.studies import read_spec, sweep_figures, sweep_table
from vaelab.studies.sweep import SPEC_FILE
from vaelab.viz import kl_per_dim_figure, samples

st.title("Sweep")
root = ui.runs_root()
found = sorted(p.parent for p in [root / SPEC_FILE, *root.glob(f"*/{SPEC_FILE}"), *root.glob(f"*/*/{SPEC_FILE}")]
               if p.exists())
typed = st.sidebar.text_input("or open a sweep folder", help="the --out of `vaelab sweep`, inside the runs folder")
if typed:
    with ui.errors_shown():
        out = relative(root, typed)
elif found:
    names = [str(p.relative_to(root)) for p in found]
    wanted = st.query_params.get("sweep")
    out = found[st.selectbox("sweep", range(len(found)), format_func=names.__getitem__,
                             index=names.index(wanted) if wanted in names else 0)]
    st.query_params["sweep"] = str(out.relative_to(root))
else:
    st.info(f"No sweep in {root} yet: run one with `vaelab sweep ... --out {root}/NAME` (see README, Studies).")
    st.stop()

with ui.errors_shown():
    spec = read_spec(out)
    rows = sweep_table(out)
keys = spec.space_.keys
st.caption(f"`{out}`: {spec.search} search over {', '.join(keys)}, {spec.seeds} seed(s) per trial, evaluated on the "
           f"{spec.split} split; objective {MEASURES[spec.objective].heading}")
if not rows:
    st.info("No trial has finished yet.")
    st.stop()
shown = ["trial", "seed", *keys, "objective", *(k for k in ("nelbo", "recon", "kl", "active_units", "mig", "dci")
                                                 if k in rows[0]), "collapse"]
columns = {k: st.column_config.NumberColumn(MEASURES[k].heading, help=MEASURES[k].help) for k in shown
           if k in MEASURES}
st.dataframe([{k: r.get(k) for k in shown} for r in rows], hide_index=True, column_config=columns)
collapsed = [r["run"] for r in rows if r.get("collapse")]
if collapsed:
    st.warning(f"posterior collapse in {len(collapsed)} of {len(rows)} runs ({', '.join(collapsed)}): "
               f"{next(r['collapse'] for r in rows if r.get('collapse'))}")

figures = sweep_figures(rows, keys)
for name, fig in figures.items():
    ui.show_figure(fig, name.removesuffix(".png"))

st.subheader("A run of the sweep")
run_name = st.selectbox("run", [r["run"] for r in rows])
row = next(r for r in rows if r["run"] == run_name)
info = run_info(root, out / run_name)
st.write({k: row[k] for k in (*keys, "seed", "nelbo", "recon", "kl", "active_units") if k in row})
left, right = st.columns(2)
curves = ui.curves_png(info, width=400)
if curves:
    left.image(curves, caption="training curves")
    ui.download(curves, f"{run_name}-curves.png", where=left)
records = info.run.records()
if records and records[-1].get("val/kl_per_dim"):
    ui.show_figure(kl_per_dim_figure(records[-1]["val/kl_per_dim"]), f"{run_name}-kl-per-dim", width=400, where=right)
with ui.errors_shown():
    _, model = ui.load(info)
if model.family.can("samples") and not model.family.can("code-prior"):
    images, nrow = samples(model, 32)
    ui.show_images(images.detach(), nrow, caption="samples")
st.markdown(f"Open it on [Explore](explore?run={quote(str((out / run_name).resolve().relative_to(root)))}).")
