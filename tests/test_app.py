"""The app's pages, run by Streamlit's AppTest on runs made by the CLI (see ``app_runs`` in conftest)."""
import io
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import vaelab.app  # noqa: E402
from vaelab.app import RUNS_ENV, jobs  # noqa: E402
from vaelab.app.upload import image_tensor  # noqa: E402
from vaelab.data import DataError  # noqa: E402
from vaelab.measures import measure  # noqa: E402

VIEWS = vaelab.app.__file__.replace("__init__.py", "views/")


def open_page(name: str, **query) -> AppTest:
    at = AppTest.from_file(VIEWS + f"{name}.py", default_timeout=180)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widget(widgets, label: str):
    return next(w for w in widgets if w.label.startswith(label))


def image_urls(at: AppTest) -> list[str]:
    return [url for image in at.image for url in image.value]


def captioned(at: AppTest) -> dict[str, str]:
    """{caption: image url} of the page's captioned images."""
    return {caption: url for image in at.image for caption, url in zip(image.captions, image.value) if caption}


@pytest.fixture
def runs(app_runs, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(app_runs))
    return app_runs


def png(size: tuple[int, int], mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), 200, np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------ shared pictures and metrics
def test_a_labelled_grid_draws_its_row_and_column_labels_beside_the_images():
    from vaelab.viz import grid_image, labelled_grid

    images = torch.ones(4, 1, 8, 8)  # white images on a white background: any dark pixel is a label
    plain = np.asarray(grid_image(images, 2, 4))
    grid = np.asarray(labelled_grid(images, 2, 4, rows=["original", "reconstruction"], columns=["-3", "3"]))
    assert grid.shape[1] > plain.shape[1] + 40 and grid.shape[0] > plain.shape[0] + 10  # room for the labels
    left, top = grid.shape[1] - plain.shape[1], grid.shape[0] - plain.shape[0]
    assert (grid[top:, :left] < 128).any() and (grid[:top, left:] < 128).any()  # text left of rows, above columns
    assert (grid[top:, left:] == plain).all()  # the images themselves untouched


def test_a_figure_for_the_app_is_drawn_at_its_shown_width_with_no_text_under_ten_pixels():
    from matplotlib.figure import Figure

    from vaelab.app import ui

    fig = Figure(figsize=(17.2, 3.6))  # as wide as four curve panels
    ax = fig.subplots()
    ax.set_title("tiny", fontsize=5)
    ax.set_xticks([0, 1], ["a", "b"], fontsize=6)
    image = Image.open(io.BytesIO(ui.figure_png(fig, 600)))
    assert image.width == 600  # shown 1:1, a point is FIGURE_DPI / 72 pixels
    assert image.height == ui.MIN_HEIGHT  # not 126 px (its aspect): room for the title and the labels
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize")) if t.get_text()]
    assert min(sizes) * ui.FIGURE_DPI / 72 >= 10


def test_a_row_of_panels_narrowed_for_the_app_keeps_its_tight_layout():
    """Four curve panels drawn 400 px wide: tight layout still fits their titles and labels (it warned, and gave up,
    when the figure kept its aspect: 84 px high)."""
    import warnings

    from vaelab.app import ui
    from vaelab.viz.plots import curves_figure

    records = [{"epoch": e, **{f"{s}/{k}": 1.0 / e for s in ("train", "val") for k in ("loss", "recon", "kl", "mmd")}}
               for e in (1, 2, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = Image.open(io.BytesIO(ui.figure_png(curves_figure(records), 400)))
    assert image.size == (400, ui.MIN_HEIGHT)


def test_metrics_carry_their_measures_heading_and_explanation(runs):

    at = open_page("vq")
    shown = {m.label: m for m in at.metric}
    for key in ("perplexity", "codes_used", "dead_codes", "psnr", "ssim"):
        assert measure(key).heading in shown, key
        assert shown[measure(key).heading].help.startswith(measure(key).help), key
    assert "↑" in measure("psnr").heading  # which way is better, in the label


@pytest.fixture
def grids(monkeypatch):
    """Every grid the pages draw: (images, rows, columns) of each ``labelled_grid`` call."""
    from vaelab.app import ui

    drawn = []
    draw = ui.labelled_grid
    monkeypatch.setattr(ui, "labelled_grid", lambda images, nrow, scale, rows=None, columns=None:
                        drawn.append((images, rows, columns)) or draw(images, nrow, scale, rows, columns))
    return drawn


@pytest.mark.parametrize("page, query, labels", [
    ("explore", {"run": "vae", "view": "reconstructions"}, ["original", "reconstruction"]),
    ("explore", {"run": "vae", "view": "traversal"}, ["z"]),
    ("explore", {"run": "vae", "view": "interpolation"}, ["image 0", "image 1"]),
    ("vq", {"run": "vq"}, ["original", "reconstruction"]),
    ("anomaly", {"run": "vae"}, ["most", "least", "1", "16"]),
    ("impute", {"run": "vae"}, ["masked", "completion 1", "truth"]),
    ("arithmetic", {"run": "vae"}, ["image 0", "s=0", "a - b + c"])])
def test_grids_are_labelled_and_every_picture_has_a_download(runs, grids, page, query, labels):
    at = open_page(page, **query)
    drawn = " ".join(label for _, rows, columns in grids for label in (rows or []) + (columns or []))
    assert all(label in drawn for label in labels), drawn
    downloads = [b.proto.label for b in at.get("download_button")]
    assert sum(label.startswith("download the") for label in downloads) == len(image_urls(at))  # one per picture
    if page in ("explore", "vq") and query.get("view", "reconstructions") == "reconstructions":
        images, rows, _ = grids[0]
        originals = images.unflatten(0, (len(rows), -1))[0::2]  # the rows labelled "original"
        assert ((originals > 0.01) & (originals < 0.99)).any()  # grey images as the dataset holds them, not draws
    if page == "explore":
        assert "download eval.json" in downloads


def test_the_server_loads_what_the_pages_import_before_it_answers(tmp_path, monkeypatch):
    """`vaelab app` runs Streamlit from vaelab.app.serve, which imports torch, the pages' shared module and the
    tables' pyarrow first: the first visitor does not wait for them (README: first load)."""
    import subprocess
    import sys

    from vaelab import access
    from vaelab.cli import main

    argv = []
    monkeypatch.setattr(os, "execv", lambda exe, args: argv.extend(args))
    for name in (access.RUNS_ENV, access.HOSTS_ENV, access.TOKEN_ENV):  # what `vaelab app` sets, restored after
        monkeypatch.setenv(name, "")
    main(["app", "--runs", str(tmp_path)])
    assert argv[1:4] == ["-m", "vaelab.app.serve", "run"]
    probe = ("import sys, runpy, streamlit.web.cli as cli; cli.main = lambda: print(sys.argv[0], [m for m in "
             "('torch', 'vaelab.app.ui', 'pyarrow') if m in sys.modules]); runpy.run_module('vaelab.app.serve', "
             "run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", probe, "run", "app.py"], capture_output=True, text=True, timeout=120)
    assert out.stdout.split("\n")[0] == "streamlit ['torch', 'vaelab.app.ui', 'pyarrow']", out.stderr[-2000:]


# ------------------------------------------------------------------------------------------------ runs
def test_runs_page_lists_the_runs_and_names_one_from_an_older_version(app_runs, tmp_path, monkeypatch):
    shutil.copytree(app_runs / "vae", tmp_path / "vae")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.yaml").write_text("version: 0\nmodel: {name: vae}\n")
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("runs")
    table = at.dataframe[0].value
    assert set(table["run"]) == {"vae", "old"}
    row = table.set_index("run").loc["vae"]
    assert row["state"] == "trained" and row["epochs"] == 3
    # the table shows eval.json's own float64 number: nothing is summed again
    assert row["nelbo"] == pytest.approx(json.loads((app_runs / "vae" / "eval.json").read_text())["nelbo"])
    assert table.set_index("run").loc["old", "state"] == "unreadable"
    assert any("old" in e.value and "incompatible vaelab" in e.value for e in at.error)


def test_runs_page_shows_a_run_training_from_the_cli_as_training(app_runs, tmp_path, monkeypatch):
    import fcntl

    from vaelab.lock import lock_path
    shutil.copytree(app_runs / "vae", tmp_path / "cli")
    (tmp_path / "cli" / "progress.json").write_text(json.dumps({"step": 3, "total_steps": 100, "seconds": 1.0}))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    with open(lock_path(tmp_path / "cli"), "a") as held:  # as `vaelab train` holds it while it trains
        fcntl.flock(held, fcntl.LOCK_EX)
        at = open_page("runs")
        assert at.dataframe[0].value.set_index("run").loc["cli", "state"] == "training"
    widget(at.button, "Refresh").click().run()
    assert at.dataframe[0].value.set_index("run").loc["cli", "state"] == "incomplete"  # its lock let go: stopped


def test_runs_page_without_a_runs_directory_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "nowhere"))
    at = open_page("runs")
    assert "does not exist yet" in at.warning[0].value


# ----------------------------------------------------------------------------------------------- train
def test_train_page_trains_in_the_background_and_the_run_lands_in_the_runs_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("train")
    widget(at.selectbox, "dataset").set_value("digits")
    widget(at.number_input, "epochs").set_value(2)
    widget(at.number_input, "latent size").set_value(3)
    widget(at.text_area, "other settings").set_value("model.hidden=[32]\ntrain.batch_size=64")
    widget(at.text_input, "run name").set_value("first")
    widget(at.button, "Start training").click().run()
    assert not at.error and "started training first" in at.success[0].value
    deadline = time.time() + 240
    while jobs.status(tmp_path / "first", "train").running and time.time() < deadline:
        time.sleep(0.5)
    job = jobs.status(tmp_path / "first", "train")
    assert job.state == "finished", job.log_tail()
    cfg = yaml.safe_load((tmp_path / "first" / "config.yaml").read_text())
    assert cfg["model"]["name"] == "beta-vae" and cfg["kl"]["beta"] == 4.0 and cfg["model"]["latent_dim"] == 3
    assert cfg["model"]["hidden"] == [32] and (tmp_path / "first" / "checkpoints" / "best.safetensors").exists()
    assert len((tmp_path / "first" / "metrics.jsonl").read_text().splitlines()) == 2

    again = open_page("train")  # a reload: the page reads the job's state from the run directory
    assert any("finished: step" in p.proto.text for p in again.get("progress"))
    widget(again.text_input, "run name").set_value("first")
    widget(again.button, "Start training").click().run()
    assert "already holds a run" in again.error[0].value


def test_train_page_reports_a_bad_setting_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("train")
    widget(at.text_area, "other settings").set_value("model.no_such_key=3")
    widget(at.text_input, "run name").set_value("bad")
    widget(at.button, "Start training").click().run()
    assert "unknown config key" in at.error[0].value
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", [".", "..", "../escaped", "/tmp/abs", "link"])
def test_train_page_refuses_a_run_name_outside_the_runs_directory(tmp_path, monkeypatch, name):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to(tmp_path)
    monkeypatch.setenv(RUNS_ENV, str(runs))
    at = open_page("train")
    widget(at.text_input, "run name").set_value(name)
    widget(at.button, "Start training").click().run()
    assert any(why in at.error[0].value for why in ("'.' and '..'", "absolute path", "leads out of the runs"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and not (runs / "config.yaml").exists()
    assert not (runs / "jobs").exists() and not (tmp_path / "jobs").exists()


def test_train_page_checks_the_architecture_against_the_dataset_and_keeps_the_jobs_in_view(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("train")
    widget(at.selectbox, "dataset").set_value("digits")
    widget(at.selectbox, "architecture").set_value("conv64").run()
    widget(at.text_input, "run name").set_value("big")
    widget(at.button, "Start training").click().run()
    assert at.error[0].value == ("the conv64 architecture takes 64x64 images, got (1, 8, 8): choose an architecture "
                                 "for digits's images") and not at.exception
    assert "Training jobs" in [h.value for h in at.header]  # the refusal does not end the page
    assert not (tmp_path / "big").exists()


def test_train_page_creates_no_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "runs"))
    at = open_page("train")
    widget(at.text_input, "data directory").set_value(str(tmp_path / "made" / "up"))
    widget(at.text_input, "run name").set_value("d")
    widget(at.button, "Start training").click().run()
    assert "does not exist" in at.error[0].value and not (tmp_path / "made").exists()


def test_train_page_says_when_the_job_limit_is_reached(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "1")
    busy = jobs.job_file(tmp_path / "busy", "train")  # a running job: this test's own process
    busy.parent.mkdir(parents=True)
    busy.write_text(json.dumps({"state": "running", "pid": os.getpid()}))
    at = open_page("train")
    widget(at.selectbox, "dataset").set_value("digits")
    widget(at.text_input, "run name").set_value("second")
    widget(at.button, "Start training").click().run()
    assert any("the most this app runs at once (1" in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "second").exists() and not at.success


def test_the_token_is_asked_once_and_a_bug_shows_one_line(monkeypatch):
    def page():
        import streamlit as st

        from vaelab.app import gate, ui
        gate.guard()
        st.write("inside")
        with ui.errors_shown(stop=False):
            raise ValueError("deep\ntraceback")

    monkeypatch.setenv("VAELAB_APP_TOKEN", "s3cret")
    at = AppTest.from_function(page, default_timeout=60).run()
    assert "needs its token" in at.error[0].value and not at.markdown
    at.query_params["token"] = "wrong"
    assert "needs its token" in at.run().error[0].value
    at.query_params["token"] = "s3cret"
    at.run()
    assert at.markdown[0].value == "inside"
    assert at.error[0].value == "ValueError: deep (details in the server's log)" and not at.exception
    monkeypatch.setenv("VAELAB_APP_HOSTS", "localhost")  # AppTest sends no Host header: refused
    assert "does not answer for the host name" in at.run().error[0].value


def test_jobs_record_failure_and_stop(tmp_path):
    failed = jobs.start(tmp_path / "f", "train", ["train", "--dataset", "no-such-data", "--out", str(tmp_path / "f")])
    while jobs.status(tmp_path / "f", "train").running:
        time.sleep(0.2)
    job = jobs.status(tmp_path / "f", "train")
    assert failed.running and job.state == "failed" and job.info["returncode"] == 2
    assert "data.name must be one of" in job.log_tail() and "got 'no-such-data'" in job.log_tail()

    jobs.start(tmp_path / "s", "train", ["train", "--dataset", "digits", "--epochs", "500", "--set",
                                         "model.hidden=[16]", "--out", str(tmp_path / "s")])
    deadline = time.time() + 120
    while not (tmp_path / "s" / "progress.json").exists() and time.time() < deadline:  # training has begun
        time.sleep(0.2)
    jobs.stop(tmp_path / "s", "train")
    while jobs.status(tmp_path / "s", "train").running:
        time.sleep(0.2)
    job = jobs.status(tmp_path / "s", "train")
    assert job.state == "stopped" and job.info["returncode"] == 130  # saved a checkpoint, then stopped
    assert (tmp_path / "s" / "checkpoints" / "last.safetensors").exists()


# --------------------------------------------------------------------------------------------- explore
def test_explore_traversal_slider_changes_only_the_decoded_image(runs):
    at = open_page("explore", run="vae", view="traversal")
    sliders = [s for s in at.slider if s.label.startswith("z")]
    assert len(sliders) == 4 and all("KL" in s.label for s in sliders)
    before = captioned(at)
    sliders[0].set_value(2.5).run()
    after = captioned(at)
    assert after["the image"] == before["the image"]  # the image stays; the decoded one changes
    assert after["decoded from the sliders"] != before["decoded from the sliders"]


@pytest.mark.parametrize("view", ["samples", "reconstructions", "interpolation", "latent space"])
def test_explore_views_draw(runs, view):
    at = open_page("explore", run="vae", view=view)
    if view == "latent space":
        assert at.get("vega_lite_chart")
    else:
        assert len(image_urls(at)) == 1


def test_explore_view_radio_takes_every_click(runs):
    """The ?view= of the address opens the page; clicks after that each switch the view (the second one too)."""
    at = open_page("explore", run="vae", view="samples")
    for view in ("reconstructions", "samples", "interpolation", "samples"):
        at.radio(key="explore-view").set_value(view).run()
        assert at.radio(key="explore-view").value == view and not at.exception
    assert at.query_params["view"] == "samples"


def test_explore_latent_space_plots_the_two_dimensions_of_most_kl(runs):
    from vaelab.viz import dims_by_kl

    at = open_page("explore", run="vae", view="latent space")
    widget(at.radio, "axes").set_value("the two dimensions of most KL").run()
    top = dims_by_kl(json.loads((runs / "vae" / "eval.json").read_text()), 2)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert {spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]} == {f"z{d}" for d in top}


def test_explore_samples_follow_the_temperature(runs):
    at = open_page("explore", run="vae", view="samples")
    before = image_urls(at)
    widget(at.slider, "temperature").set_value(0.0).run()
    assert image_urls(at) != before


def test_explore_cvae_generates_by_class(runs):
    at = open_page("explore", run="cvae", view="by class")
    first = image_urls(at)
    widget(at.selectbox, "class").set_value(7).run()
    assert image_urls(at) != first and "class 7" in at.image[0].captions[0]


def test_explore_upload_errors_are_clear(runs):
    at = open_page("explore", run="vae", view="traversal")
    widget(at.radio, "start from").set_value("uploaded image").run()
    at.file_uploader[0].upload("big.png", png((64, 48)), "image/png").run()
    assert "big.png is 64x48 pixels; this model takes 8x8" in at.error[0].value
    at = open_page("explore", run="vae", view="traversal")
    widget(at.radio, "start from").set_value("uploaded image").run()
    at.file_uploader[0].upload("notes.png", b"not an image at all", "image/png").run()
    assert "notes.png is not an image file" in at.error[0].value and "BytesIO" not in at.error[0].value
    at = open_page("explore", run="vae", view="traversal")
    widget(at.radio, "start from").set_value("uploaded image").run()
    at.file_uploader[0].upload("digit.png", png((8, 8), "RGB"), "image/png").run()
    assert not at.error and "the image" in captioned(at)


def test_upload_converts_colour_to_the_models_channels():
    x = image_tensor(png((8, 8), "RGB"), "c.png", (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and x.max().item() == pytest.approx(200 / 255)  # one float32 division, no sum
    with pytest.raises(DataError, match="takes 8x8"):
        image_tensor(png((8, 9)), "tall.png", (1, 8, 8))


def test_explore_names_a_missing_run_directory_and_a_run_of_another_kind(runs, tmp_path):
    at = AppTest.from_file(VIEWS + "explore.py", default_timeout=120)
    at.run()
    at.sidebar.text_input[0].set_value(str(runs / "gone")).run()
    assert f"{runs / 'gone'} does not exist" in at.error[0].value
    at.sidebar.text_input[0].set_value(str(tmp_path)).run()  # a run directory outside the runs folder
    assert "is outside the runs directory" in at.error[0].value
    at.sidebar.text_input[0].set_value(str(runs / "vq")).run()
    assert "this page shows models that can explore a continuous latent space" in at.error[0].value
    assert "'vqvae' model" in at.error[0].value
    at.sidebar.text_input[0].set_value(str(runs / "vae")).run()
    assert not at.error and at.image


# --------------------------------------------------------------------------------------------- compare
def test_compare_page_tables_two_runs_and_places_them_on_rate_distortion(runs):
    at = open_page("compare")
    widget(at.multiselect, "runs").set_value(["vae", "beta4"]).run()
    assert not at.exception
    rows = {row[""]: row for row in at.table[0].value.to_dict("records")}
    assert rows["beta"]["beta4"] == "4 (constant)" and rows["beta"]["vae"] == "1 (constant)"
    kl = json.loads((runs / "beta4" / "eval.json").read_text())["kl"]
    assert rows["KL (nats)"]["beta4"] == f"{kl:.4g}"
    captions = [c for image in at.image for c in image.captions]
    assert len(captions) == 4 and captions[2].startswith("vae: each row") and captions[3].startswith("beta4: each row")


def test_compare_page_groups_runs_by_dataset_and_likelihood_and_warns(runs):
    at = open_page("compare")
    widget(at.multiselect, "runs").set_value(["vae", "sprites", "beta4"]).run()
    (warning,) = [w.value for w in at.warning if "not comparable" in w.value]
    assert "**digits (dynamic, bernoulli likelihood)**: vae, beta4" in warning
    assert "**dsprites-procedural (" in warning and ": sprites" in warning
    assert list(at.table[0].value.columns) == ["", "vae", "beta4", "sprites"]  # grouped
    widget(at.multiselect, "runs").set_value(["vae", "beta4"]).run()
    assert not [w for w in at.warning if "not comparable" in w.value]


def test_compare_page_shows_sample_quality_with_arrows_explanations_and_the_feature_network(runs):
    """eval.json's sample-quality figures (as `vaelab eval --sample-quality` writes them) appear in the table under
    their arrowed headings, with the feature network they were made with and each figure's one-line explanation."""
    from vaelab.measures import MEASURES

    path = runs / "beta4" / "eval.json"
    before = path.read_text()
    features = {"name": "digits-cnn", "sha256": "ab" * 32, "test_accuracy": 0.99}
    path.write_text(json.dumps({**json.loads(before), "fid": 12.5, "kid": 0.25, "kid_std": 0.01, "precision": 0.75,
                                "recall": 0.5, "density": 0.8, "coverage": 0.6,
                                "sample_quality": {"features": features}}))
    try:
        at = open_page("compare")
        widget(at.multiselect, "runs").set_value(["vae", "beta4"]).run()
        rows = {row[""]: row for row in at.table[0].value.to_dict("records")}
        assert rows["FID ↓"]["beta4"] == "12.5" and rows["FID ↓"]["vae"] == ""
        assert rows["precision (fraction) ↑"]["beta4"] == "0.75"
        assert rows["sample-quality features"]["beta4"] == "digits-cnn (abababababab)"
        caption = " ".join(c.value for c in at.caption)
        assert all(MEASURES[k].help in caption for k in ("fid", "kid", "precision", "recall", "density", "coverage"))
    finally:
        path.write_text(before)


def legend_names(fig) -> list[list[str]]:
    return [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes if ax.get_legend()]


def test_compare_page_overlays_the_runs_curves_and_names_the_points_in_a_legend(runs, monkeypatch):
    import vaelab.viz
    import vaelab.viz.plots

    figures = {}
    for module, name in ((vaelab.viz, "rate_distortion_figure"), (vaelab.viz.plots, "runs_curves_figure")):
        draw = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _draw=draw, _name=name, **k: figures.setdefault(
            _name, []).append(_draw(*a, **k)) or figures[_name][-1])
    at = open_page("compare")
    widget(at.multiselect, "runs").set_value(["vae", "beta4"]).run()
    assert not at.exception
    (curves,) = figures["runs_curves_figure"][-1:]  # one figure for both runs: a panel per quantity, a line per run
    assert [ax.get_title() for ax in curves.axes] == ["training loss ↓", "reconstruction (nats) ↓", "KL (nats)"]
    assert legend_names(curves) == [["vae", "beta4"]] * 3
    for ax in curves.axes:
        assert {line.get_color() for line in ax.get_lines() if line.get_label() == "vae"} != \
            {line.get_color() for line in ax.get_lines() if line.get_label() == "beta4"}
    points = figures["rate_distortion_figure"][-1]
    assert legend_names(points) == [["vae", "beta4"]]  # named in the legend, so no two names can overprint
    assert not [t for t in points.axes[0].texts if t.get_text() in ("vae", "beta4")]
    assert any("every chosen run on one plot" in c.value for c in at.caption)


def test_compare_opens_with_the_runs_of_its_address_and_shows_one_still_training(runs, tmp_path, monkeypatch):
    at = open_page("compare", runs=["beta4", "vae"])
    assert widget(at.multiselect, "runs").value == ["beta4", "vae"]
    for name in ("vae", "beta4"):
        shutil.copytree(runs / name, tmp_path / name)
    (tmp_path / "new" / "jobs").mkdir(parents=True)  # a run that a job of this process is training
    (tmp_path / "new" / "jobs" / "train.json").write_text(json.dumps({"state": "running", "pid": os.getpid()}))
    (tmp_path / "new" / "progress.json").write_text(json.dumps({"step": 3, "total_steps": 100, "seconds": 1.0}))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("compare", runs=["beta4", "new"])
    assert any("new: running, step 3 of 100; it joins the comparison" in p.proto.text for p in at.get("progress"))
    assert widget(at.multiselect, "runs").value == ["beta4"] and at.query_params["runs"] == ["beta4", "new"]


def test_compare_with_plain_vae_finds_the_vae_of_a_beta_vae_or_starts_one(runs, tmp_path, monkeypatch):
    """One click on a beta-VAE run's Explore page: Compare opens with it and the run of the same config with
    beta = 1 and model vae, found among the runs, else started as a training job beside it."""
    from vaelab.app.plain import plain_config
    from vaelab.cli import parser, train_config
    from vaelab.rundir import RunDir

    for name in ("vae", "beta4"):
        shutil.copytree(runs / name, tmp_path / name)
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))

    def click() -> AppTest:
        at = AppTest.from_file(VIEWS.replace("views/", "main.py"), default_timeout=180)
        at.switch_page("views/explore.py")
        at.query_params["run"] = "beta4"
        at.run()
        widget(at.button, "Compare with plain VAE").click().run()
        assert not at.exception and at.title[0].value == "Compare", [e.value for e in at.error]
        return at

    at = click()  # the fixture's vae is beta4 with beta 1 and model vae: found, nothing trains
    assert widget(at.multiselect, "runs").value == ["beta4", "vae"] and not (tmp_path / "plain-vae-for-beta4").exists()

    shutil.rmtree(tmp_path / "vae")
    at = click()  # none left: a plain VAE starts training beside it, and Compare waits for it
    new = tmp_path / "plain-vae-for-beta4"
    try:
        argv = json.loads(jobs.job_file(new, "train").read_text())["argv"]
        assert at.query_params["runs"] == ["beta4", "plain-vae-for-beta4"]
        beta4 = RunDir(tmp_path / "beta4").load_config()
        assert train_config(parser().parse_args(argv)).to_dict() == plain_config(beta4).to_dict()
        assert plain_config(beta4).model.name == "vae" and plain_config(beta4).kl.beta == 1.0
        assert plain_config(beta4).set(["model.name=beta-vae", "kl.beta=4.0"]).to_dict() == beta4.to_dict()
    finally:
        jobs.stop(new, "train")
        deadline = time.time() + 60
        while jobs.status(new, "train").running and time.time() < deadline:
            time.sleep(0.2)
    monkeypatch.setenv(RUNS_ENV, str(runs))
    assert not [b for b in open_page("explore", run="vae").button if b.label == "Compare with plain VAE"]  # plain


def test_compare_evaluates_runs_that_have_no_eval_json(runs):
    at = open_page("compare")
    widget(at.multiselect, "runs").set_value(["vae", "cvae"]).run()
    assert "Not evaluated yet: cvae" in at.warning[0].value
    widget(at.button, "Evaluate them").click().run()
    try:
        assert json.loads((runs / "cvae" / "eval.json").read_text())["model"] == "cvae"
        assert not at.warning
    finally:
        (runs / "cvae" / "eval.json").unlink()


# -------------------------------------------------------------------------------------------------- vq
def test_vq_page_shows_codebook_use_and_offers_a_prior(runs):
    from vaelab.api import load_run
    from vaelab.eval import evaluate
    from vaelab.train import load_run_data

    at = open_page("vq")
    cfg, model = load_run(runs / "vq")
    test = load_run_data(cfg).test
    expected = evaluate(model, test.take(torch.arange(min(1000, len(test)))))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["codebook perplexity ↑"] == f"{expected['perplexity']:.1f}"
    assert metrics["codes used (fraction) ↑"] == f"{expected['codes_used']:.0%}"
    assert len(image_urls(at)) == 3  # usage histogram, code maps, reconstructions
    assert "no code prior yet" in at.info[0].value and widget(at.button, "Train a code prior")


def test_vq_page_draws_prior_samples_on_request_once_and_says_the_prior_is_unfinished(runs, tmp_path, monkeypatch):
    import vaelab.viz
    from vaelab.cli import main

    shutil.copytree(runs / "vq", tmp_path / "vq")
    assert main(["train-prior", str(tmp_path / "vq"), "--epochs", "1", "--set", "code_prior.layers=1", "--set",
                 "code_prior.dim=8", "--set", "train.progress=false"]) == 0
    progress = tmp_path / "vq" / "prior" / "progress.json"
    progress.write_text(json.dumps({**json.loads(progress.read_text()), "total_steps": 1000}))  # stopped early
    drawn = []
    draw = vaelab.viz.vq_samples
    monkeypatch.setattr(vaelab.viz, "vq_samples", lambda *a: drawn.append(a[3:5]) or draw(*a))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("vq", run="vq")
    assert any("The code prior is unfinished" in w.value and "of 1000 steps" in w.value for w in at.warning)
    assert len(image_urls(at)) == 3 and not drawn  # nothing drawn before it is asked for
    widget(at.button, "Draw samples").click().run()
    assert len(image_urls(at)) == 4 and drawn == [(16, 1.0)]
    widget(at.number_input, "first test image").set_value(1).run()  # another interaction: no new draw
    assert len(image_urls(at)) == 4 and drawn == [(16, 1.0)]


# ------------------------------------------------------------------------------------------ disentangle
def test_disentanglement_page_tables_the_metrics(runs):
    at = open_page("disentangle", run="sprites")
    table = at.dataframe[0].value
    result = json.loads((runs / "sprites" / "disentanglement.json").read_text())
    scores = {(m, k): v for m, k, v in zip(table["metric"], table["score"], table["value"])}
    assert set(scores) == {("MIG", "mig"), ("SAP", "sap")}
    assert float(scores["MIG", "mig"]) == pytest.approx(result["mig"]["mig"], abs=1e-4)
    assert len(image_urls(at)) == 2  # mutual information, KL per dimension


def test_an_undefined_factorvae_score_shows_a_dash_and_why(runs, tmp_path, monkeypatch):
    shutil.copytree(runs / "sprites", tmp_path / "sprites")
    path = tmp_path / "sprites" / "disentanglement.json"
    result = json.loads(path.read_text())
    result["factor_vae"] = {**result["sap"], "num_active_dims": 0, "train_accuracy": 0.0, "eval_accuracy": 0.0}
    del result["factor_vae"]["sap"]
    path.write_text(json.dumps(result))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    table = open_page("disentangle", run="sprites").dataframe[0].value.set_index("score")
    assert list(table.loc[["train_accuracy", "eval_accuracy"], "value"]) == ["—", "—"]
    assert "no latent dimension is active" in table.loc["eval_accuracy", "note"]
    assert table.loc["mig", "value"] != "—" and table.loc["mig", "note"] == ""


def test_disentanglement_page_without_results_says_how_to_get_them(runs):
    at = open_page("disentangle", run="vae")
    assert "has no disentanglement.json yet" in at.info[0].value
    assert not [b for b in at.button if b.label.startswith("Compute")]  # digits has no ground-truth factors


# ------------------------------------------------------------------------------------------- arithmetic
def test_arithmetic_page_moves_images_along_an_attribute(runs):
    at = open_page("arithmetic", run="vae")
    assert widget(at.selectbox, "attribute").options == [str(c) for c in range(10)]
    before = image_urls(at)
    assert len(before) == 2  # the moved images and the analogy
    widget(at.selectbox, "attribute").set_value("7").run()
    assert not at.exception and image_urls(at)[0] != before[0]
    widget(at.text_input, "minus b").set_value("img:9999").run()
    assert any("img:N with N from 0 to 296" in e.value for e in at.error)


def test_arithmetic_page_refuses_a_conditional_run(runs):
    at = open_page("arithmetic", run="cvae")
    assert any("conditional model" in e.value for e in at.error)


# ----------------------------------------------------------------------------------------------- sweep
def test_sweep_page_shows_the_table_the_plots_and_a_run(tmp_path, monkeypatch):
    from vaelab.cli import main

    assert main(["sweep", "--model", "beta-vae", "--dataset", "digits", "--steps", "10", "--set", "model.hidden=[64]",
                 "--set", "model.latent_dim=3", "--set", "train.batch_size=64", "--grid", "kl.beta=0.5,50",
                 "--out", str(tmp_path / "beta")]) == 0
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("sweep")
    table = at.dataframe[0].value
    assert sorted(table["kl.beta"]) == [0.5, 50] and list(table.columns[:3]) == ["trial", "seed", "kl.beta"]
    rows = {r["run"]: r for r in json.loads((tmp_path / "beta" / "sweep.json").read_text())["rows"]}
    assert sorted(table["nelbo"]) == sorted(r["nelbo"] for r in rows.values())
    assert len(at.image) >= 4  # rate-distortion, metrics against beta; the run's curves and samples
    if any(r["collapse"] for r in rows.values()):  # 10 steps: no unit is active yet, and the page says so
        assert any("posterior collapse" in w.value for w in at.warning)
    widget(at.selectbox, "run").set_value(next(r for r in rows if "kl.beta=50" in r)).run()
    assert not at.exception
    assert any("explore?run=beta/runs/kl.beta%3D50_seed%3D0" in m.value for m in at.markdown)
# ------------------------------------------------------------------------------------------- beta study
def test_beta_study_page_shows_each_run_and_their_traversals_in_one_labelled_grid(runs, grids):
    at = open_page("beta", study="betas")
    assert [p.proto.text for p in at.get("progress")] == [f"β = {b}: trained and evaluated" for b in (1, 8)]
    table = at.dataframe[0].value
    assert list(table["β"]) == [1, 8] and list(table["run"]) == ["runs/kl.beta=1_seed=0", "runs/kl.beta=8_seed=0"]
    rows = {r["run"]: r for r in json.loads((runs / "betas" / "sweep.json").read_text())["rows"]}
    assert list(table["nelbo"]) == [rows[r]["nelbo"] for r in table["run"]]
    ((images, labels, columns),) = grids  # one grid for every run: 3 dimensions each, the image + 7 values
    assert images.shape == (6 * 8, 1, 8, 8)
    assert [label.split("  ")[0] for label in labels] == ["β=1"] * 3 + ["β=8"] * 3
    assert all(label.split("  ")[1].startswith("z") and "(KL " in label for label in labels)
    assert columns == ["image", "-3.0", "-2.0", "-1.0", "+0.0", "+1.0", "+2.0", "+3.0"]
    assert len(at.image) == 2  # the grid and the rate-distortion points
    assert len(at.get("download_button")) >= 2  # each downloadable
    assert any("no ground-truth factors" in c.value for c in at.caption)  # digits: no MIG or DCI
    (button,) = [b for b in at.button if b.label == "Compare with plain VAE"]  # beta 8 has one; beta 1 is plain
    button.click().run()  # the plain VAE of beta 8 is the study's beta-1 run: found, nothing trains
    assert any("compare?runs=betas%2Fruns%2Fkl.beta%3D8_seed%3D0&runs=betas%2Fruns%2Fkl.beta%3D1_seed%3D0" in m.value
               for m in at.markdown)
    assert not list((runs / "betas" / "runs").glob("plain-vae*"))


def test_beta_study_page_shows_each_runs_progress(runs, tmp_path, monkeypatch):
    study = tmp_path / "betas"
    shutil.copytree(runs / "betas", study)
    spec = json.loads((study / "sweep.spec.json").read_text())
    spec["space"]["grid"]["kl.beta"] += [16, 32]  # two runs more: one training, one waiting for its turn
    (study / "sweep.spec.json").write_text(json.dumps(spec))
    (study / "runs" / "kl.beta=16_seed=0").mkdir()
    (study / "runs" / "kl.beta=16_seed=0" / "progress.json").write_text(json.dumps(
        {"step": 3, "total_steps": 10, "seconds": 1.0}))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("beta")
    assert [p.proto.text for p in at.get("progress")] == ["β = 1: trained and evaluated", "β = 8: trained and evaluated",
                                                          "β = 16: training, step 3 of 10", "β = 32: waiting"]
    assert list(at.dataframe[0].value["β"]) == [1, 8]  # the finished ones, side by side already


def test_beta_study_page_starts_a_sweep_over_beta_as_a_job(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("beta")
    assert "No β study yet" in at.info[0].value
    widget(at.selectbox, "dataset").set_value("digits")
    widget(at.text_input, "β values").set_value("0.5, x")
    widget(at.text_input, "study name").set_value("quick")
    widget(at.button, "Start the study").click().run()
    assert "give numbers >= 0 separated by commas" in at.error[0].value and not (tmp_path / "quick").exists()
    widget(at.text_input, "β values").set_value("0.5, 4")
    widget(at.number_input, "training steps").set_value(5)
    widget(at.number_input, "latent size").set_value(2)
    widget(at.text_area, "other settings").set_value("model.hidden=[32]\ntrain.batch_size=64")
    widget(at.button, "Start the study").click().run()
    out = tmp_path / "quick"
    try:
        assert not at.error and "started the study quick: 2 runs" in at.success[0].value
        argv = json.loads(jobs.job_file(out, "sweep").read_text())["argv"]
        assert argv == ["sweep", "--model", "beta-vae", "--dataset", "digits", "--steps", "5", "--set",
                        "model.latent_dim=2", "--set", "model.hidden=[32]", "--set", "train.batch_size=64", "--grid",
                        "kl.beta=0.5,4", "--out", str(out)]
        assert at.query_params["study"] == "quick"
    finally:
        jobs.stop(out, "sweep")
        deadline = time.time() + 60
        while jobs.status(out, "sweep").running and time.time() < deadline:
            time.sleep(0.2)


@pytest.mark.slow
def test_beta_study_page_trains_the_runs_it_started_and_shows_them(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = open_page("beta")
    widget(at.selectbox, "dataset").set_value("dsprites-procedural")
    widget(at.text_input, "β values").set_value("1, 8")
    widget(at.number_input, "training steps").set_value(20)
    widget(at.number_input, "latent size").set_value(3)
    widget(at.number_input, "disentanglement").set_value(100)
    widget(at.text_area, "other settings").set_value("model.hidden=[32]\ntrain.batch_size=64\ndata.train_size=256\n"
                                                      "data.val_size=64\ndata.test_size=64")
    widget(at.text_input, "study name").set_value("sprites")
    widget(at.button, "Start the study").click().run()
    deadline = time.time() + 600
    while jobs.status(tmp_path / "sprites", "sweep").running and time.time() < deadline:
        time.sleep(1)
    assert jobs.status(tmp_path / "sprites", "sweep").state == "finished", jobs.status(tmp_path / "sprites",
                                                                                        "sweep").log_tail()
    at = open_page("beta", study="sprites")
    table = at.dataframe[0].value
    assert list(table["β"]) == [1, 8] and table["mig"].between(0, 1).all() and table["dci"].between(0, 1).all()
    assert len(at.image) == 3  # the traversal grid, rate-distortion, reconstruction against MIG and DCI


# ------------------------------------------------------------------------------------ anomaly, imputation
def test_anomaly_page_tables_the_scores_of_held_out_classes(runs):
    at = open_page("anomaly", run="vae")
    table = at.dataframe[0].value
    assert list(table["score"])[:3] == ["reconstruction error (per pixel)", "negative ELBO (nats)",
                                        "NLL, importance sampled (nats)"]
    assert table["roc_auc"].between(0, 1).all()
    columns = json.loads(at.dataframe[0].proto.columns)  # each metric column headed by its measure, explained
    assert columns["roc_auc"]["label"] == "ROC-AUC ↑" and columns["roc_auc"]["help"] == measure("roc_auc").help
    assert "classes [9]" in at.caption[0].value
    assert len(image_urls(at)) == 3  # histograms, ROC, the most and the least anomalous in one grid


def test_imputation_page_compares_with_mean_imputation(runs):
    at = open_page("impute", run="vae")
    table = at.dataframe[0].value
    assert list(table["imputation"]) == ["model", "mean"]
    assert table["impute_accuracy"].between(0, 1).all()
    assert len(image_urls(at)) == 1
