"""VQ-VAE: how the codebook is used (histogram, perplexity, dead codes), the code map of each image,
originals beside reconstructions, and new images drawn from the PixelCNN prior over codes."""
from pathlib import Path

import streamlit as st
import torch

from vaelab.app import jobs, ui
from vaelab.app.runs import run_info
from vaelab.viz import code_maps_figure, code_usage_figure, reconstructions, vq_samples



@st.cache_data(max_entries=16, show_spinner="drawing codes position by position")
def _prior_samples(path: str, stamp: float, count: int, temperature: float, seed: int) -> tuple[torch.Tensor, int]:
    """Images decoded from codes the run's prior draws: once per (run, prior checkpoint, count, temperature, seed)."""
    info = run_info(path, Path(path) / "prior")
    _, pixelcnn = ui.load(info)
    _, model = ui.load(run_info(Path(path).parent, path))
    return vq_samples(model, pixelcnn, info.facts.shape, count, temperature, torch.Generator().manual_seed(seed))


st.title("VQ-VAE")
info, cfg, model = ui.open_run("codes")
with ui.errors_shown():
    test = ui.split(cfg)
K = model.quantizer.num_codes
n_eval = st.sidebar.select_slider("test images for the codebook statistics", [500, 1000, 2000, 5000], 1000)
ev = ui.evaluation(info, n_eval)
a, b, c = st.columns(3)  # three abreast: a label keeps its unit and arrow in view
ui.metric(a, "perplexity", ev["perplexity"], "{:.1f}", f"At most K = {K}.")
ui.metric(b, "codes_used", ev["codes_used"], "{:.0%}", f"Of the {K} codes, on {ev['n']} test images.")
ui.metric(c, "dead_codes", ev["dead_codes"], "{}")
ui.metric(a, "psnr", ev["psnr"], "{:.2f}")
ui.metric(b, "ssim", ev["ssim"], "{:.3f}")
ui.eval_download(info)
ui.show_figure(code_usage_figure(ev["code_counts"]), f"{info.name}-codebook-usage")

start = st.number_input("first test image", 0, max(0, len(test) - 8), 0)
part = test.take(torch.arange(start, min(start + 8, len(test))))  # these rows only, never the whole split as floats
left, right = st.columns(2)
with left:
    st.subheader("code maps")
    ui.show_figure(code_maps_figure(part.images, model.encode(part.x), K), f"{info.name}-code-maps", width=400)
with right:
    st.subheader("reconstructions")
    images, nrow = reconstructions(model, part.x, nrow=8, images=part.images)
    ui.show_images(images, nrow, caption="the test images as the dataset holds them, above their reconstructions",
                   rows=["original", "reconstruction"] * (len(images) // (2 * nrow)), name=f"{info.name}-recon",
                   width=400)

st.subheader("samples from the code prior")
prior = run_info(info.path, info.path / "prior")
if prior.trained:
    t, n, s = st.columns(3)
    temperature = t.slider("temperature", 0.1, 2.0, 1.0, 0.05)
    count = n.select_slider("samples", [8, 16, 32, 64], 16)
    seed = s.number_input("seed", 0, 2**31 - 1, 0)
    progress = prior.run.read_progress()
    if progress and progress["step"] < progress["total_steps"]:
        st.warning(f"The code prior is unfinished ({jobs.status(info.path, 'train-prior').state}): it trained "
                   f"{progress['step']} of {progress['total_steps']} steps, so these samples come from a partly "
                   f"trained prior.")
    stamp = prior.run.checkpoint("best").stat().st_mtime
    args = (str(info.path), stamp, int(count), float(temperature), int(seed))
    if args in st.session_state.setdefault("vq-drawn", set()) or st.button(
            "Draw samples", help="the PixelCNN draws the codes position by position: this takes a while"):
        st.session_state["vq-drawn"].add(args)
        ui.show_images(*_prior_samples(*args), caption=f"{count} samples at temperature {temperature:g}, seed {seed}",
                       name=f"{info.name}-prior-samples")
else:
    job = jobs.status(info.path, "train-prior")
    st.info("This run has no code prior yet: a gated PixelCNN over its code grids (`vaelab train-prior DIR`).")
    if not job.running and st.button("Train a code prior", help="10 epochs in the background"):
        if ui.start_job(info.path, "train-prior", ["train-prior", str(info.path)]):
            st.rerun()

    @st.fragment(run_every=2.0)
    def prior_job() -> None:
        job = jobs.status(info.path, "train-prior")
        if job.state == "none":
            return
        progress = prior.run.read_progress()
        done = progress["step"] / max(progress["total_steps"], 1) if progress else 0.0
        steps = f": step {progress['step']} of {progress['total_steps']}" if progress else ""
        eta = (f", about {progress['seconds'] * (1 - done) / done:.0f} s left" if progress and 0 < done < 1
               and job.running else "")
        bar, stop = st.columns([4, 1])
        bar.progress(min(done, 1.0), text=f"code prior: {job.state}{steps}{eta}")
        if job.running and stop.button("Stop", key="stop-prior", help="saves a checkpoint at the next step, then "
                                                                       "stops"):
            jobs.stop(info.path, "train-prior")
        if job.state == "failed":
            st.code(job.log_tail(), language=None)
        if job.state == "finished":
            st.rerun()

    prior_job()
