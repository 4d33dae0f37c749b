"""`vaelab sweep` end to end on the 8x8 digits, a sweep killed mid-run that continues to the same results, and the
posterior-collapse diagnostics of training."""
import csv
import json
import re
import signal
import subprocess
import sys
import time
import types
import warnings

import pytest
import torch
from safetensors.torch import load_file

from vaelab.checkpoint import load as load_checkpoint
from vaelab.cli import main
from vaelab.durable import VaelabWarning
from vaelab.rundir import RunDir
from vaelab.studies import parse_space, read_spec, sweep_figures, sweep_table
from vaelab.train import Trainer
from vaelab.train.collapse import COLLAPSED_SHARE, KL_DIM_THRESHOLD, collapse

TINY = ["--model", "beta-vae", "--dataset", "digits", "--set", "model.hidden=[64]", "--set", "train.batch_size=32",
        "--set", "data.val_size=200", "--set", "model.latent_dim=3"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_grid_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "beta"
    assert main(["sweep", *TINY, "--steps", "10", "--grid", "kl.beta=0.5,4", "--grid", "model.latent_dim=2,3",
                 "--seeds", "2", "--out", str(out)]) == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 8  # 2 x 2 grid points x 2 seeds, each a run directory
    assert {(r["kl.beta"], r["model.latent_dim"], r["seed"]) for r in rows} == {
        (b, d, s) for b in ("0.5", "4") for d in ("2", "3") for s in ("0", "1")}
    for r in rows:  # each row holds its run's eval.json figures, on the validation split
        evaluation = json.loads((out / r["run"] / "eval.json").read_text())
        assert evaluation["split"] == "val"
        assert float(r["nelbo"]) == evaluation["nelbo"] and float(r["kl"]) == evaluation["kl"]
        assert RunDir(out / r["run"]).load_config().kl.beta == float(r["kl.beta"])
    for trial in {r["trial"] for r in rows}:  # a trial's value: the mean of its seeds' objective
        nelbo = [float(r["nelbo"]) for r in rows if r["trial"] == trial]
        assert float(next(r["objective"] for r in rows if r["trial"] == trial)) == pytest.approx(sum(nelbo) / 2)
    report = json.loads((out / "sweep.json").read_text())
    assert len(report["rows"]) == 8 and report["keys"] == ["kl.beta", "model.latent_dim"]
    assert report["best"]["objective"] == min(float(r["objective"]) for r in rows)
    for name in ("rate_distortion.png", "metrics_vs_kl.beta.png", "metrics_vs_model.latent_dim.png"):
        assert (out / name).stat().st_size > 0

    figs = sweep_figures(sweep_table(out), read_spec(out).space_.keys)
    dots = figs["rate_distortion.png"].axes[0].collections[0].get_offsets()
    assert len(dots) == 8  # one point per run
    assert sorted(map(tuple, dots.tolist())) == sorted((float(r["kl"]), float(r["recon"])) for r in rows)
    nelbo_panel = figs["metrics_vs_kl.beta.png"].axes[0]  # a line per latent size, a point per beta: seeds' mean
    assert len(nelbo_panel.containers) == 2
    for c, d in zip(nelbo_panel.containers, ("2", "3")):
        assert list(c.lines[0].get_xdata()) == [0.5, 4.0]
        assert list(c.lines[0].get_ydata()) == pytest.approx(
            [sum(float(r["nelbo"]) for r in rows if r["kl.beta"] == b and r["model.latent_dim"] == d) / 2
             for b in ("0.5", "4")])

    # Run again: nothing is left to do, nothing retrains
    mtimes = {r["run"]: (out / r["run"] / "checkpoints" / "last.safetensors").stat().st_mtime_ns for r in rows}
    capsys.readouterr()
    assert main(["sweep", *TINY, "--steps", "10", "--grid", "kl.beta=0.5,4", "--grid", "model.latent_dim=2,3",
                 "--seeds", "2", "--out", str(out)]) == 0
    assert not re.search(r"^trial \d+:", capsys.readouterr().out, re.M)  # no trial ran
    assert read_csv(out / "sweep.csv") == rows
    assert mtimes == {r["run"]: (out / r["run"] / "checkpoints" / "last.safetensors").stat().st_mtime_ns
                      for r in rows}
    # and another sweep in the same folder is refused
    assert main(["sweep", *TINY, "--steps", "10", "--grid", "kl.beta=1,2", "--out", str(out)]) == 2
    assert "holds another sweep" in capsys.readouterr().err


def test_bad_sweep_options_are_one_line_errors(tmp_path, capsys):
    for extra, message in [(["--grid", "kl.beta"], "--grid expects"),
                           (["--range", "train.lr=1e-2:1e-4"], "LOW < HIGH"),
                           (["--range", "train.lr=1e-4:1e-2:log"], "--range needs --search optuna"),
                           (["--search", "optuna", "--range", "train.lr=1e-4:1e-2:log"], "needs --trials"),
                           (["--grid", "kl.beta=1", "--objective", "kl"], "better direction"),
                           (["--grid", "model.latent_dim=0,2"], "model.latent_dim"),
                           ([], "at least one --grid")]:
        assert main(["sweep", *TINY, "--steps", "2", *extra, "--out", str(tmp_path / "s")]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_parse_space_types():
    from vaelab.config import ConfigError, RunConfig
    space = parse_space(["kl.beta=0.25,1,4", "kl.schedule=constant,linear"], [], RunConfig())
    assert space.grid == {"kl.beta": [0.25, 1, 4], "kl.schedule": ["constant", "linear"]} and space.size() == 6
    with pytest.raises(ConfigError, match="a value is a list"):  # Optuna's categorical values are scalars
        parse_space(["model.hidden=[64],[64, 64]"], [], RunConfig())
    space = parse_space([], ["train.lr=1e-4:1e-2:log", "model.latent_dim=2:16"], RunConfig())
    assert space.ranges["train.lr"].log and not space.ranges["train.lr"].integer
    assert space.ranges["model.latent_dim"].integer and not space.ranges["model.latent_dim"].log


def sweep_cmd(out):
    return [sys.executable, "-m", "vaelab.cli", "sweep", *TINY, "--steps", "200", "--set", "train.checkpoint_every=20",
            "--grid", "kl.beta=0.5,2", "--out", str(out)]


def weights(path):
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model.")}


@pytest.mark.slow  # two sweeps of two trials each, one killed: half a minute on 2 cores
def test_killed_sweep_continues_to_the_same_results(tmp_path):
    ref = subprocess.run(sweep_cmd(tmp_path / "ref"), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen(sweep_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    interrupted = None
    while time.time() < deadline and interrupted is None and proc.poll() is None:
        runs = sorted((out / "runs").glob("*")) if (out / "runs").exists() else []
        done = [r for r in runs if (r / "eval.json").exists()]
        going = [r for r in runs if (r / "checkpoints" / "last.safetensors").exists()
                 and not (r / "eval.json").exists()]
        if done and going:
            interrupted = going[0]
        time.sleep(0.005)
    assert interrupted is not None, "the sweep must be killed in its second trial"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, meta = load_checkpoint(interrupted / "checkpoints" / "last.safetensors")
    assert 0 < meta["step"] < 200, "the second trial must be killed part-way"
    finished = next(r for r in (out / "runs").glob("*") if r != interrupted)
    finished_mtime = (finished / "checkpoints" / "last.safetensors").stat().st_mtime_ns

    again = subprocess.run(sweep_cmd(out), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "were interrupted; they run again" in again.stderr
    assert (finished / "checkpoints" / "last.safetensors").stat().st_mtime_ns == finished_mtime  # kept, not rerun
    assert strip(read_csv(out / "sweep.csv")) == strip(read_csv(tmp_path / "ref" / "sweep.csv"))
    for run in (out / "runs").glob("*"):  # bit-exact: the interrupted run resumed from its checkpoint
        a, b = weights(run / "checkpoints" / "last.safetensors"), weights(
            tmp_path / "ref" / "runs" / run.name / "checkpoints" / "last.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{run.name} {k}")


def strip(rows):
    """Rows keyed by run, without the trial numbers (the killed trial's retry has a new number)."""
    return {r["run"]: {k: v for k, v in r.items() if k != "trial"} for r in rows}


# ------------------------------------------------------------------------------------------- collapse
def test_collapse_rule():
    d = 10
    healthy = {"active_units": 3, "var_mu": [1.0] * d, "kl_per_dim": [1.0] * 3 + [0.0] * 7}
    assert collapse(healthy) is None
    most = int(COLLAPSED_SHARE * d)
    low = {"active_units": 1, "var_mu": [1.0] * d, "kl_per_dim": [1.0] * (d - most) + [KL_DIM_THRESHOLD / 2] * most}
    assert f"{most} of {d} latent dimensions" in collapse(low)
    assert "no active units" in collapse({"active_units": 0, "var_mu": [0.0] * d, "kl_per_dim": None})
    assert collapse({"loss": 1.0, "perplexity": 3.0}) is None  # a VQ-VAE: nothing to collapse
    for remedy in ("kl.free_bits", "kl.schedule=linear", "kl.schedule=cyclical"):
        assert remedy in collapse(low)


def train_records(cfg, path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VaelabWarning)
        Trainer(cfg.check(), path).fit()
    return RunDir(path).records(), [str(w.message) for w in caught if issubclass(w.category, VaelabWarning)]


def test_collapse_warning_fires_on_a_collapsed_model_and_not_on_a_healthy_one(tiny_cfg, tmp_path):
    records, warned = train_records(tiny_cfg.set(["kl.beta=50", "train.epochs=3"]), tmp_path / "collapsed")
    assert [r["val/active_units"] for r in records] == [0, 0, 0]
    assert all(len(r["val/kl_per_dim"]) == 4 and r["val/collapsed_dims"] == 4 for r in records)
    assert all("posterior collapse" in r["collapse"] for r in records)
    assert [r["collapse_epochs"] for r in records] == [1, 2, 3]
    assert len([w for w in warned if "posterior collapse" in w]) == 1  # once, when it persists
    assert warned[0].startswith("epochs 1-2: posterior collapse") and "kl.free_bits" in warned[0]

    records, warned = train_records(tiny_cfg.set(["kl.beta=0.5", "train.epochs=3"]), tmp_path / "healthy")
    assert records[-1]["val/active_units"] == 4 and records[-1]["val/collapsed_dims"] == 0
    assert all("collapse" not in r for r in records[1:]) and not any("collapse" in w for w in warned)
    kl = records[-1]["val/kl_per_dim"]
    assert sum(kl) == pytest.approx(records[-1]["val/kl"], rel=1e-5)  # the dimensions' KL add up to the KL


def test_optuna_search_in_two_worker_processes(tmp_path, monkeypatch):
    # spawned workers re-run __main__'s file first; an app test (streamlit's AppTest) run earlier in this process
    # leaves a page script there, which would run in them: a bare __main__, as under the `vaelab` command
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    out = tmp_path / "lr"
    assert main(["sweep", *TINY, "--steps", "5", "--search", "optuna", "--trials", "3", "--objective", "recon",
                 "--range", "train.lr=1e-4:1e-2:log", "--jobs", "2", "--out", str(out)]) == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 3 and len({r["train.lr"] for r in rows}) == 3
    assert all(1e-4 <= float(r["train.lr"]) <= 1e-2 for r in rows)
    for r in rows:  # each run trained with its trial's learning rate; the objective is its reconstruction
        assert RunDir(out / r["run"]).load_config().train.lr == float(r["train.lr"])
        assert float(r["objective"]) == float(r["recon"])


def test_sweep_on_a_factor_dataset_scores_each_run(tmp_path):
    out = tmp_path / "sprites"
    assert main(["sweep", "--model", "beta-vae", "--dataset", "dsprites-procedural", "--steps", "5",
                 "--set", "model.hidden=[64]", "--set", "model.latent_dim=4", "--set", "train.batch_size=64",
                 "--set", "data.train_size=256", "--set", "data.val_size=64", "--set", "data.test_size=64",
                 "--grid", "kl.beta=1,4", "--disentangle", "--disentangle-train", "100", "--out", str(out)]) == 0
    rows = read_csv(out / "sweep.csv")
    for r in rows:  # each row carries its run's disentanglement.json scores
        scores = json.loads((out / r["run"] / "disentanglement.json").read_text())
        assert float(r["mig"]) == scores["mig"]["mig"] and float(r["dci"]) == scores["dci"]["disentanglement"]
    fig = sweep_figures(sweep_table(out), ["kl.beta"])["disentanglement.png"]
    assert [len(ax.containers) for ax in fig.axes] == [2, 2]  # MIG and DCI panels, a point per beta
