"""β study, the β-VAE workflow on one page (Higgins et al. 2017): pick a dataset and β values, train one run per β
(``vaelab sweep --grid kl.beta=...`` as a background job), watch each run train, then see them side by side:
traversals of each run's dimensions of most KL in one labelled grid, their rate-distortion points, MIG and DCI where
the dataset has ground-truth factors; any run beside a plain VAE (β = 1) on Compare in one click."""
from urllib.parse import quote

import streamlit as st
import torch

from vaelab.app import jobs, ui
from vaelab.app.paths import confine
from vaelab.app.runs import run_info
from vaelab.cli import parser, sweep_spec
from vaelab.config import ConfigError
from vaelab.data import DATASETS
from vaelab.data.factors import FACTOR_DATASETS
from vaelab.measures import measure
from vaelab.studies import read_spec, sweep_table
from vaelab.studies.sweep import SPEC_FILE, run_path
from vaelab.viz import dims_by_kl, rate_distortion_figure, traversal
from vaelab.viz.study import tradeoff_figure

BETA = "kl.beta"
SHOWN = ("nelbo", "recon", "kl", "active_units", "mig", "dci")

st.title("β study")
root = ui.runs_root()


def studies() -> list:
    """The sweep folders under the runs directory whose only varied key is β."""
    specs = [*root.glob(f"*/{SPEC_FILE}"), *root.glob(f"*/*/{SPEC_FILE}")]
    found = []
    for path in sorted(specs):
        try:
            if read_spec(path.parent).space_.keys == [BETA]:
                found.append(path.parent)
        except (ConfigError, ValueError, TypeError, KeyError):
            continue  # another kind of folder, or a damaged spec: the Sweep page names it
    return found


def beta_values(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise ConfigError(f"β values {text!r}: give numbers >= 0 separated by commas, such as 1, 4, 16")
    return values


found = studies()
with st.expander("New β study", expanded=not found):
    left, right = st.columns(2)
    names = list(DATASETS)
    dataset = left.selectbox("dataset", names, index=names.index("dsprites-procedural"),
                             help="a dataset with ground-truth factors (dsprites-procedural, dsprites, 3dshapes) also "
                                  "gets MIG and DCI")
    text = right.text_input("β values", "1, 4, 16", key="beta-values",
                            help="one run each; β = 1 is the plain VAE to compare with")
    steps = left.number_input("training steps per run", 1, 10**7, 1000, key="beta-steps")
    latent = right.number_input("latent size", 1, 512, 10, key="beta-latent")
    factors = dataset in FACTOR_DATASETS
    points = left.number_input("disentanglement: training points", 100, 100_000, 1000, disabled=not factors,
                               key="beta-points", help="MIG and DCI of each run on this many factor samples (Locatello et al.'s "
                                    "10000: slower)")
    extra = right.text_area("other settings, one `section.key=value` a line", placeholder="model.hidden=[256, 256]",
                            key="beta-settings")
    auto = next(n for n in (f"beta-{dataset}-{i}" for i in range(1, 10**6)) if not (root / n).exists())
    name = st.text_input("study name", placeholder=auto, key="beta-name",
                         help=f"its folder: {root}/NAME (empty: the name shown)") or auto

    def start_study() -> None:
        """Check the name and every setting, then start ``vaelab sweep`` over β as a job of the study's folder."""
        out = confine(root, name)
        if (out / SPEC_FILE).exists() or jobs.status(out, "sweep").running:
            raise ConfigError(f"{out} already holds a study: choose another name")
        betas = ",".join(f"{b:g}" for b in beta_values(text))
        argv = ["sweep", "--model", "beta-vae", "--dataset", dataset, "--steps", str(steps),
                "--set", f"model.latent_dim={latent}",
                *[a for line in extra.splitlines() if line.strip() for a in ("--set", line.strip())],
                "--grid", f"{BETA}={betas}", "--out", str(out),
                *(["--disentangle", "--disentangle-train", str(points)] if factors else [])]
        sweep_spec(parser().parse_args(argv))  # a bad setting is reported here, before anything starts
        jobs.start(out, "sweep", argv, root=root)
        st.query_params["study"] = name
        st.success(f"started the study {name}: {betas.count(',') + 1} runs, one after another")

    if st.button("Start the study", type="primary"):
        with ui.errors_shown(stop=False):
            start_study()
            found = studies()

if not found and not st.query_params.get("study"):
    st.info("No β study yet: start one above (or `vaelab sweep --model beta-vae --grid kl.beta=1,4,16 ...`).")
    st.stop()
labels = [str(p.relative_to(root)) for p in found]
wanted = st.query_params.get("study")
if wanted and wanted not in labels:  # just started: the job writes its spec in a moment
    labels.append(wanted)
study = st.selectbox("study", labels, index=labels.index(wanted) if wanted in labels else 0)
st.query_params["study"] = study
out = root / study
tag = study.replace("/", "-")  # in the names of downloaded files


def run_states(spec) -> list[tuple[str, float, str]]:
    """(β label, fraction done, what it is doing) for each run of the study."""
    states = []
    for beta in spec.space_.grid[BETA]:
        for s in range(spec.seeds):
            path = run_path(out, {BETA: beta}, spec.base().train.seed + s)
            label = f"β = {beta:g}" + (f", seed {spec.base().train.seed + s}" if spec.seeds > 1 else "")
            progress = run_info(root, path).run.read_progress() if path.is_dir() else None
            evaluated = (path / "eval.json").exists() and (spec.disentangle is None or
                                                            (path / "disentanglement.json").exists())
            if evaluated:
                states.append((label, 1.0, "trained and evaluated"))
            elif progress:
                done = progress["step"] / max(progress["total_steps"], 1)
                doing = "evaluating" if done >= 1 else f"training, step {progress['step']} of {progress['total_steps']}"
                states.append((label, min(done, 1.0), doing))
            else:
                states.append((label, 0.0, "waiting"))
    return states


def progress_panel() -> None:
    """The study's job and each run's progress; the page redraws when another run is ready."""
    job = jobs.status(out, "sweep")
    if not (out / SPEC_FILE).exists():
        st.progress(0.0, text=f"{job.state}: loading the data and building the study")
        return
    spec = read_spec(out)
    states = run_states(spec)
    ready = sum(done == 1.0 and doing.startswith("trained") for _, done, doing in states)
    for label, done, doing in states:
        st.progress(done, text=f"{label}: {doing}")
    if job.running:
        if st.button("Stop the study", help="each run saves a checkpoint; start the same study again to continue"):
            jobs.stop(out, "sweep")
    elif job.state == "failed":
        st.error("the study failed:")
        st.code(job.log_tail(), language=None)
    if st.session_state.get(f"ready-{study}", ready) != ready or (not job.running and st.session_state.get(
            f"running-{study}")):
        st.rerun()  # a run more to show, or the job ended: the whole page


job = jobs.status(out, "sweep")
st.session_state[f"running-{study}"] = job.running
st.subheader("Runs")
st.fragment(run_every=1.0 if job.running else None)(progress_panel)()
if not (out / SPEC_FILE).exists():
    st.stop()
with ui.errors_shown():
    spec = read_spec(out)
    rows = sorted(sweep_table(out), key=lambda r: (r[BETA], r["seed"]))
st.session_state[f"ready-{study}"] = len(rows)
if not rows:
    st.info("No run has finished yet: they appear here one by one.")
    st.stop()

st.subheader("Side by side")
st.caption(f"one {spec.base().model.name} run per β on {spec.base().data.name}, evaluated on the {spec.split} split")
shown = [k for k in SHOWN if k in rows[0]]
columns = {k: st.column_config.NumberColumn(measure(k).heading, help=measure(k).help) for k in shown}
st.dataframe([{"β": r[BETA], "seed": r["seed"], **{k: r.get(k) for k in shown}, "run": r["run"]} for r in rows],
             hide_index=True, column_config={"β": st.column_config.NumberColumn("β", help="the KL weight"),
                                             **columns})
collapsed = [f"β = {r[BETA]:g}" for r in rows if r.get("collapse")]
if collapsed:
    st.warning(f"posterior collapse at {', '.join(collapsed)}: no latent dimension carries information there")

first = [r for r in rows if r["seed"] == rows[0]["seed"]]  # one run per β in the pictures
a, b, c = st.columns(3)
index = a.number_input("test image", 0, 9999, 0)
latent_dim = int(spec.base().model.latent_dim)
per_run = b.slider("dimensions per β (most KL first)", 1, latent_dim, min(3, latent_dim)) if latent_dim > 1 else 1
count = c.select_slider("values per dimension", [5, 7, 9, 11], 7)
blocks, row_labels = [], []
with ui.errors_shown():
    for r in first:
        info = run_info(root, out / r["run"])
        cfg, model = ui.load(info)
        test = ui.split(cfg)
        part = test.take(torch.tensor([min(index, len(test) - 1)]))
        evaluation = ui.evaluation(info)
        dims = dims_by_kl(evaluation, per_run)
        images, _ = traversal(model, part.x, None, dims, count, 3.0)  # [dims * count, C, H, W]
        original = part.images.expand(len(dims), *part.images.shape[1:])[:, None]
        blocks.append(torch.cat([original, images.unflatten(0, (len(dims), count))], 1))  # [dims, 1 + count, ...]
        kl = evaluation.get("kl_per_dim")
        row_labels += [f"β={r[BETA]:g}  z{d}" + (f" (KL {kl[d]:.2f})" if kl else "") for d in dims]
values = [f"{v:+.1f}" for v in torch.linspace(-3, 3, count).tolist()]
ui.show_images(torch.cat(blocks).flatten(0, 1), 1 + count, rows=row_labels, columns=["image", *values],
               name=f"{tag}-traversals", caption=f"traversals of test image {index}: each row sets one latent "
               "dimension (each β's dimensions of most KL) to the column's value, in prior standard deviations, the "
               "others at the image's posterior mean; the first column is the image")

left, right = st.columns(2)
points = {f"β = {r[BETA]:g}" + (f" seed {r['seed']}" if spec.seeds > 1 else ""): (r["kl"], r["recon"]) for r in rows
          if "kl" in r and "recon" in r}
if points:
    ui.show_figure(rate_distortion_figure(points, legend=True), f"{tag}-rate-distortion", width=400, where=left)
scores = [k for k in ("mig", "dci") if k in rows[0]]
if scores:
    ui.show_figure(tradeoff_figure(rows, "recon", scores, BETA), f"{tag}-disentanglement", width=400, where=right)
elif spec.base().data.name not in FACTOR_DATASETS:
    right.caption(f"{spec.base().data.name} has no ground-truth factors: MIG and DCI need a dataset that has them "
                  f"(dsprites-procedural, dsprites, 3dshapes)")

st.subheader("Each run")
for column, r in zip(st.columns(len(first)), first):
    with column:
        address = quote(str((out / r["run"]).relative_to(root)))
        st.markdown(f"**β = {r[BETA]:g}**: [Explore](explore?run={address})" + (
            f", [Disentanglement](disentanglement?run={address}) (latent x factor information)" if scores else ""))
        ui.compare_with_plain_vae(run_info(root, out / r["run"]), key=f"plain-{r['run']}")
