"""Train: choose a model, dataset, latent size, beta and its schedule, epochs; training runs in a background
process (``vaelab train``), so it goes on through page reloads and lands in the runs directory like any CLI run."""
from pathlib import Path

import streamlit as st

from vaelab.app import jobs, ui
from vaelab.app.paths import PathError, confine
from vaelab.app.runs import find_runs
from vaelab.cli import parser, train_config
from vaelab.config import ConfigError
from vaelab.data import DATASETS
from vaelab.models import MODELS, build_model
from vaelab.registry import Registry

st.title("Train")
root = ui.runs_root()

models = [m for m in MODELS if MODELS.get(m).family.user_trained]
left, right = st.columns(2)
model = left.selectbox("model", models, index=models.index("beta-vae"),
                       help="\n".join(f"- **{m}**: {MODELS.get(m).about}" for m in models))
spec = MODELS.get(model)
datasets = list(DATASETS)
dataset = right.selectbox("dataset", datasets, index=datasets.index("fashion-mnist"))
data_dir = right.text_input("data directory (optional)", help="the folder holding the dataset's files; empty: "
                            "$VAELAB_DATA, ~/.cache/vaelab and the standard places")
archs = Registry.of_kind(spec.family.archs).names()
arch = left.selectbox("architecture", archs, index=archs.index(spec.presets.get("model", {}).get("arch", "mlp")))
sets = {"model.arch": arch}
if spec.family.can("codes"):
    sets["vq.codebook_size"] = left.number_input("codebook size K", 2, 8192, 512)
    sets["vq.dim"] = left.number_input("code dimension D", 1, 1024, 64)
    sets["vq.beta"] = right.number_input("commitment weight β", 0.0, 10.0, 0.25)
    sets["vq.kmeans_init"] = right.checkbox("k-means initialisation", value=True)
    sets["vq.dead_after"] = right.number_input("restart codes unused for (steps; 0: never)", 0, 100000, 100)
else:
    sets["model.latent_dim"] = left.number_input("latent size", 1, 512, 10)
    preset_beta = spec.presets.get("kl", {}).get("beta", 1.0)
    sets["kl.beta"] = right.number_input("β (KL weight)", 0.0, 1000.0, float(preset_beta), step=0.5)
    sets["kl.schedule"] = right.selectbox("β schedule", ["constant", "linear", "cyclical"],
                                         help="linear: warm-up from 0; cyclical: Fu et al. 2019")
    if sets["kl.schedule"] != "constant":
        sets["kl.warmup_steps"] = right.number_input("warm-up steps", 1, 10**7, 2000)
epochs = left.number_input("epochs", 1, 10000, 5)
with st.expander("more settings"):
    sets["train.batch_size"] = st.number_input("batch size", 1, 65536, 128)
    sets["train.lr"] = st.number_input("learning rate", 0.0, 1.0, 1e-3, step=1e-4, format="%.5f")
    extra = st.text_area("other settings, one `section.key=value` a line", placeholder="model.hidden=[256, 256]")
auto = next(n for n in (f"{model}-{dataset}-{i}" for i in range(1, 10**6)) if not (root / n).exists())
name = st.text_input("run name", placeholder=auto, key="run-name",
                     help=f"the run directory: {root}/NAME (empty: the name shown)") or auto

def start_training() -> None:
    """Check the name, the settings and that the architecture fits the dataset, then start ``vaelab train``;
    what is wrong is raised as one line, before any process starts."""
    out = confine(root, name)  # no '.', '..', absolute path or symlink out of the runs directory
    if data_dir and not Path(data_dir).expanduser().is_dir():  # the app creates no folder outside the runs
        raise PathError(f"the data directory {data_dir} does not exist: give a folder that holds the files")
    argv = ["train", "--model", model, "--dataset", dataset, "--epochs", str(epochs), "--out", str(out),
            *(["--data-dir", data_dir] if data_dir else []),
            *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")],
            *[a for line in extra.splitlines() if line.strip() for a in ("--set", line.strip())]]
    cfg = train_config(parser().parse_args(argv))  # a bad setting is reported here
    try:
        build_model(cfg, ui.dataset(cfg).facts)  # the architecture against the dataset's images
    except ValueError as e:
        raise ConfigError(f"{e}: choose an architecture for {dataset}'s images") from None
    if (out / "config.yaml").exists() or jobs.status(out, "train").running:
        raise ConfigError(f"{out} already holds a run: choose another name")
    jobs.start(out, "train", argv, root=root)
    st.query_params["run"] = name
    st.success(f"started training {name}")


if st.button("Start training", type="primary"):
    with ui.errors_shown(stop=False):  # a refusal leaves the jobs below in view
        start_training()


def job_panel(r) -> None:
    """One run's training job: state, step progress, last losses, curves, and a stop or resume button."""
    st.subheader(r.name)
    progress = r.run.read_progress()
    a, b = st.columns([3, 1])
    if progress:
        done = progress["step"] / max(progress["total_steps"], 1)
        logs = "  ".join(f"{k} {v:.4g}" for k, v in progress.get("logs", {}).items())
        a.progress(min(done, 1.0), text=f"{r.job.state}: step {progress['step']} of {progress['total_steps']}  "
                                         f"({progress['seconds']:.0f} s)  {logs}")
    else:
        a.progress(0.0, text=f"{r.job.state}: loading data and building the model")
    if r.job.running:
        if b.button("Stop", key=f"stop-{r.name}", help="saves a checkpoint at the next step, then stops"):
            jobs.stop(r.path, "train")
    elif r.job.state in ("stopped", "failed") and r.run.last.exists():
        if b.button("Resume", key=f"resume-{r.name}", help="continues from the last checkpoint"):
            if ui.start_job(r.path, "train", ["train", "--resume", str(r.path)]):
                st.rerun()
    if r.job.state == "failed":
        st.error("training failed:")
        st.code(r.job.log_tail(), language=None)
    curves = ui.curves_png(r)
    if curves:
        st.image(curves)
        ui.download(curves, f"{r.name}-curves.png")


@st.fragment(run_every=1.0)
def jobs_view() -> None:
    runs = [r for r in find_runs(root) if r.job.state != "none"][:4]
    with st.container(key="jobs-panel"):
        if not runs:
            st.caption("No training started from the app yet.")
        for r in runs:
            job_panel(r)


st.divider()
st.header("Training jobs")
# The panel refreshes every second: Streamlit fades what a rerun is redrawing and shows its own running indicator
# (with a "Stop" of the script, a second Stop beside the job's); neither means anything to a visitor here.
st.html("<style>.st-key-jobs-panel [data-stale=true] {opacity: 1 !important; transition: none !important}"
        " [data-testid=stStatusWidget] {visibility: hidden}</style>")
jobs_view()
