import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import vaelab
from vaelab.api import load_run
from vaelab.cli import main, parser, train_config
from vaelab.eval import evaluate
from vaelab.rundir import RunDir
from vaelab.train import NonFiniteLoss, Trainer
from vaelab import checkpoint


def weights(path):
    return checkpoint.load_weights(path)[0]


def test_a_tiny_vae_learns(tiny_cfg):
    tiny_cfg.train.epochs = 6
    trainer = Trainer(tiny_cfg)
    before = evaluate(trainer.model, trainer.data.val)["nelbo"]
    record = trainer.fit()
    after = evaluate(trainer.model, trainer.data.val)["nelbo"]
    assert after < before - 5, (before, after)  # nats per example
    assert record["val/nelbo"] == pytest.approx(after, rel=0.02)
    # each batch's nelbo is the float32 sum of its own recon and kl: one rounding (1e-7), whatever their order
    assert record["train/nelbo"] == pytest.approx(record["train/recon"] + record["train/kl"])


def test_beta_vae_trades_kl_for_reconstruction(tiny_cfg):
    tiny_cfg.train.epochs = 6
    plain = Trainer(tiny_cfg).fit()
    beta = Trainer(tiny_cfg.set(["kl.beta=8"])).fit()
    assert beta["val/kl"] < plain["val/kl"] and beta["val/recon"] > plain["val/recon"]
    assert beta["beta"] == 8.0 and beta["train/loss"] > beta["train/nelbo"]


def test_run_directory_and_load_round_trip(tiny_cfg, tmp_path):
    trainer = Trainer(tiny_cfg, tmp_path / "run")
    trainer.fit()
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    trainer.run.plot()
    assert (run / "curves.png").stat().st_size > 1000
    model = vaelab.load(run, checkpoint="last")
    x = trainer.data.test.x[:16]  # the same weights through the same kernels: equal bit for bit on any CPU
    torch.testing.assert_close(model.encode(x), trainer.model.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(model.reconstruct(x), trainer.model.reconstruct(x), rtol=0, atol=0)
    cfg, _ = load_run(run)
    assert cfg == trainer.cfg and RunDir(run).facts() == {"shape": [1, 8, 8], "num_classes": 10, "train_size": 1300}


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path):
    tiny_cfg.train.checkpoint_every = 5
    trainer = Trainer(tiny_cfg, tmp_path / "run")
    step = trainer._train_step

    def poisoned(batch):
        if trainer.step == 12:
            with torch.no_grad():
                trainer.model.q.head.weight.fill_(float("nan"))
        return step(batch)

    trainer._train_step = poisoned
    with pytest.raises(NonFiniteLoss, match="at step 12"):
        trainer.fit()
    _, meta = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["step"] == 10
    assert all(torch.isfinite(w).all() for w in weights(tmp_path / "run" / "checkpoints" / "last.safetensors").values())


def test_early_stopping(tiny_cfg, tmp_path, capsys):
    tiny_cfg.train.epochs, tiny_cfg.train.patience, tiny_cfg.train.lr = 50, 1, 0.3  # diverging lr: no improvement
    tiny_cfg.train.grad_clip = 1.0
    trainer = Trainer(tiny_cfg, tmp_path / "run")
    record = trainer.fit()
    assert trainer.stopped_early and record["epoch"] < 50
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "60"]) == 0
    out = capsys.readouterr().out
    assert f"stopped early at step {trainer.step} (train.patience=1" in out and "does not extend" in out


def strip_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_a_stop_at_an_epoch_boundary_resumes_with_that_epoch_end_done_once(tiny_cfg, tmp_path):
    tiny_cfg.train.epochs, tiny_cfg.train.patience = 3, 5
    ref = Trainer(tiny_cfg, tmp_path / "ref")
    ref.fit()

    trainer = Trainer(tiny_cfg, tmp_path / "run")
    boundary = 2 * trainer.steps_per_epoch
    step = trainer._train_step

    def signalled(batch):
        if trainer.step == boundary - 1:
            os.kill(os.getpid(), signal.SIGTERM)  # noted by the trainer during the epoch's last step
        return step(batch)

    trainer._train_step = signalled
    with pytest.raises(KeyboardInterrupt, match=f"at step {boundary}$"):
        trainer.fit()
    run = RunDir(tmp_path / "run")
    assert [r["epoch"] for r in run.records()] == [1, 2]  # epoch 2 was validated and logged before stopping
    assert checkpoint.load(run.last)[1]["step"] == boundary

    resumed = Trainer(tiny_cfg, run.path)
    resumed.load_state(run.last)
    resumed.fit()
    assert strip_time(run.records()) == strip_time(ref.run.records())
    assert (resumed.best, resumed.bad_epochs) == (ref.best, ref.bad_epochs)
    for which in ("last", "best"):
        a, b = weights(run.checkpoint(which)), weights(ref.run.checkpoint(which))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{which} {k}")


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vaelab.cli", *args], capture_output=True, text=True, **kw)


TINY = ["--dataset", "digits", "--set", "model.hidden=[64]", "--set", "model.latent_dim=4",
        "--set", "train.batch_size=32", "--set", "train.progress=false"]


def test_killed_run_resumes_to_the_same_weights(tmp_path, capsys):
    total = 1000  # ~2-3 s of training: long enough to kill it mid-way
    ref = cli("train", *TINY, "--steps", str(total), "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "train", *TINY, "--steps", str(total),
                             "--set", "train.checkpoint_every=100", "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.safetensors"
    deadline = time.time() + 60
    while time.time() < deadline and not last.exists():
        time.sleep(0.005)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, meta = checkpoint.load(last)
    assert 0 < meta["step"] < total, "the run must be killed part-way"

    resumed = cli("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at step {meta['step']}" in resumed.stdout
    a, b = weights(last), weights(tmp_path / "ref" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert strip_time(RunDir(run).records()) == strip_time(RunDir(tmp_path / "ref").records())

    assert main(["train", "--resume", str(run)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--steps", str(total + 50)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-2])["step"] == total + 50


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    ref, run = tmp_path / "ref", tmp_path / "early"
    assert main(["train", *TINY, "--steps", "30", "--out", str(ref)]) == 0
    run.mkdir()
    shutil.copy(ref / "config.yaml", run / "config.yaml")  # all that fit() has written before its first checkpoint
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert f"resuming {run} at step 0 of 30" in capsys.readouterr().out
    a, b = weights(run / "checkpoints" / "last.safetensors"), weights(ref / "checkpoints" / "last.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_model_name_comes_from_the_flag_else_the_config_file(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  name: cvae\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), *TINY, "--steps", "2", "--out", str(run)]) == 0
    cfg = RunDir(run).load_config()
    assert cfg.model.name == "cvae" and cfg.model.conditional and RunDir(run).facts()["num_classes"] == 10
    assert vaelab.load(run).conditional
    flag = train_config(parser().parse_args(["train", "--model", "beta-vae", "--config", str(tmp_path / "c.yaml")]))
    assert flag.model.name == "beta-vae" and flag.kl.beta == 4.0 and not flag.model.conditional
    assert train_config(parser().parse_args(["train"])).model.name == "vae"


def test_cli_train_eval_and_pictures(tmp_path, capsys):
    run = tmp_path / "cvae"
    assert main(["train", "--model", "cvae", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["eval", str(run), "--nll-samples", "50", "--ais-steps", "10"]) == 0
    assert "active units" in capsys.readouterr().out
    result = json.loads((run / "eval.json").read_text())
    for key in ("nelbo", "recon", "kl", "mse", "active_units", "kl_per_dim"):
        assert key in result
    assert result["nelbo"] == pytest.approx(result["recon"] + result["kl"]) and len(result["kl_per_dim"]) == 4
    assert result["n"] == 297 and math.isfinite(result["nelbo"])
    assert result["nll"] <= result["nelbo"] and result["gap"] == pytest.approx(result["nelbo"] - result["nll"])
    assert result["bpd"] == pytest.approx(result["nll"] / (64 * math.log(2))) and result["ais"]["steps"] == 10
    from PIL import Image

    for cmd, extra in (("sample", ["--n", "5"]), ("reconstruct", []), ("interpolate", []), ("traverse", [])):
        out = tmp_path / f"{cmd}.png"
        assert main([cmd, str(run), "-o", str(out), *extra]) == 0
        assert Image.open(out).size[0] > 40
    assert Image.open(tmp_path / "sample.png").size[1] == 2 * (10 * (8 + 2) + 2)  # one row per class, scale 2


def test_cli_errors_are_clear(tmp_path, capsys):
    r = cli("train", "--model", "nope", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr and "Traceback" not in r.stderr
    for args, message in ((["--dataset", "nope"], "data.name must be one of 3dshapes, binarized-mnist"),
                          (["--model", "cvae", "--dataset", "dsprites-procedural"], "conditional, but the data have no labels"),
                          (["--set", "train.lr=fast"], "train.lr must be float"),
                          (["--set", "data.binarize=foo"], "data.binarize must be one of none, static, dynamic"),
                          (["--set", "model.activation=foo"], "model.activation must be one of elu, gelu, relu"),
                          (["--set", "train.batch_size=0"], "train.batch_size must be >= 1"),
                          (["--set", "kl.schedule=cyclical", "--set", "kl.ratio=0"], "kl.ratio must be in (0, 1]"),
                          (["--model", "vqvae", "--dataset", "digits", "--objective", "iwae"],
                           "objective 'iwae' trains a VAE (continuous latents); 'vqvae' is a VQ-VAE (a codebook), "
                           "trained by: vq")):
        assert main(["train", *args, "--steps", "1", "--out", str(tmp_path / "y")]) == 2
        assert message in capsys.readouterr().err
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a vaelab run directory" in capsys.readouterr().err
    assert main(["train", *TINY, "--steps", "2", "--out", str(tmp_path / "z")]) == 0
    assert main(["train", *TINY, "--steps", "2", "--out", str(tmp_path / "z")]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    for flag in (["--seed", "1"], ["--model", "cvae"], ["--set", "kl.beta=2"]):
        assert main(["train", "--resume", str(tmp_path / "z"), *flag]) == 2
        assert f"so {flag[0]} cannot change; only --epochs, --steps and --device may" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "z"), "--steps", "4", "--device", "cpu:0"]) == 0
    assert "resuming" in capsys.readouterr().out and RunDir(tmp_path / "z").load_config().train.device == "cpu:0"


def test_sigterm_saves_a_consistent_checkpoint_at_a_step_boundary(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "train", *TINY, "--steps", "100000",
                             "--set", "train.checkpoint_every=100000", "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.01)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "the last checkpoint is kept" in err
    _, meta = checkpoint.load(run / "checkpoints" / "last.safetensors")
    assert 0 < meta["step"] < 100000



def test_ddp_ranks_stop_together_when_one_rank_is_signalled(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tmp_path / "run"
    ranks = [subprocess.Popen([sys.executable, "-m", "vaelab.cli", "train", *TINY, "--steps", "100000",
                               "--set", "train.checkpoint_every=100000", "--out", str(run)],
                              env={**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(r),
                                   "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    deadline = time.time() + 120
    while time.time() < deadline and not RunDir(run).records():
        time.sleep(0.05)
    ranks[1].send_signal(signal.SIGTERM)  # rank 0 gets no signal: it learns of the stop from the all-reduce
    for rank in ranks:
        _, err = rank.communicate(timeout=120)
        assert rank.returncode == 130 and "the last checkpoint is kept" in err, err[-3000:]
    _, meta = checkpoint.load(run / "checkpoints" / "last.safetensors")
    assert RunDir(run).records()[-1]["step"] <= meta["step"] < 100000
