"""Kill soak (slow, out of CI): SIGKILL at random moments across `vaelab train --overwrite`, `train --resume`,
`train-prior` (and `--resume`) and `eval` of a VQ-VAE on the 8x8 digits, with `vaelab check` after every kill.
Afterwards nothing is damaged, the weights (model and code prior, last and best) equal an uninterrupted run's, and
metrics.jsonl holds one record per epoch, the same as the uninterrupted run's.

    .venv/bin/python -m pytest -m slow tests/test_kill_soak.py -s     # VAELAB_SOAK_SEED=N for other kill times
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaelab import checkpoint
from vaelab.rundir import RunDir

VQ = ["--model", "vqvae", "--dataset", "digits", "--set", "vq.hidden=16", "--set", "vq.codebook_size=16",
      "--set", "vq.dim=4", "--set", "train.batch_size=64", "--set", "train.progress=false",
      "--set", "train.checkpoint_every=7"]  # 20 steps an epoch
EPOCHS = ["--epochs", "8"]
PRIOR = ["--epochs", "4", "--set", "code_prior.layers=2", "--set", "code_prior.dim=8",
         "--set", "train.checkpoint_every=4"]  # 10 steps an epoch
TARGET = 22  # SIGKILLs in all


def vaelab(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaelab.cli", *map(str, args)], capture_output=True, text=True, **kw)


def timed(*args) -> float:
    t = time.perf_counter()
    done = vaelab(*args)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - t


def killed(args: list, at: float) -> bool:
    """Run ``vaelab ARGS``, SIGKILLed ``at`` seconds in; whether the kill came before it finished."""
    proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=at)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    return False


def same(a: Path, b: Path, msg: str) -> None:
    wa, wb = checkpoint.load(a)[0], checkpoint.load(b)[0]
    assert wa.keys() == wb.keys(), msg
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=f"{msg} {k}")


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in RunDir(run).records()]


@pytest.mark.slow
def test_kill_soak(tmp_path):
    rng = random.Random(int(os.environ.get("VAELAB_SOAK_SEED", "0")))
    ref, run = tmp_path / "ref", tmp_path / "run"
    took = {"overwrite": timed("train", *VQ, *EPOCHS, "--out", ref),
            "train-prior": timed("train-prior", ref, *PRIOR),
            "eval": timed("eval", ref)}
    took["resume"] = took["overwrite"]
    kills = {stage: 0 for stage in took}
    finished = {stage: 0 for stage in took}

    def attempt(stage: str, *args) -> bool:
        """Run the command, SIGKILLed at a random moment while kills are wanted; whether it was killed (then
        `vaelab check` must find nothing damaged)."""
        if sum(kills.values()) < TARGET and rng.random() < 0.9:
            at = rng.uniform(0.1, 1.0) * took[stage]
            if killed(args, at):
                kills[stage] += 1
                print(f"kill {sum(kills.values())}: {stage} at {at:.1f} s", flush=True)
                check = vaelab("check", run)
                assert check.returncode == 0, f"kill {sum(kills.values())} ({stage}):\n{check.stdout}{check.stderr}"
                return True
        else:
            done = vaelab(*args)
            assert done.returncode == 0, done.stderr
        finished[stage] += 1
        return False

    def began() -> bool:
        """The overwrite's new run (seed 0) has begun (else the old run, seed 1, is there or comes back)."""
        return RunDir(run).config.exists() and RunDir(run).load_config().train.seed == 0

    while True:  # rounds: an old run (with an evaluation) replaced, resumed, its prior trained, evaluated
        assert vaelab("train", *VQ, "--seed", "1", "--epochs", "1", "--out", run, "--overwrite").returncode == 0
        assert vaelab("eval", run).returncode == 0
        while attempt("overwrite", "train", *VQ, *EPOCHS, "--out", run, "--overwrite"):
            if began():
                while attempt("resume", "train", "--resume", run):
                    pass
                break
        while attempt("train-prior", "train-prior", run, *PRIOR,
                      *(["--resume"] if (run / "prior" / "config.yaml").exists() else [])):
            pass
        while attempt("eval", "eval", run):
            pass
        if sum(kills.values()) >= TARGET:
            break

    check = vaelab("check", run)
    assert check.returncode == 0 and "nothing damaged" in check.stdout, check.stdout
    for sub in ("", "prior"):
        for name in ("last", "best"):
            same(run / sub / "checkpoints" / f"{name}.safetensors", ref / sub / "checkpoints" / f"{name}.safetensors",
                 f"{sub or 'vq'} {name}")
        assert records(run / sub) == records(ref / sub)
        assert [r["epoch"] for r in records(run / sub)] == list(range(1, 9 if not sub else 5))
    ours, theirs = json.loads((run / "eval.json").read_text()), json.loads((ref / "eval.json").read_text())
    assert ours.keys() == theirs.keys()
    for k, v in theirs.items():  # float64 sums of the same float32 passes: equal, up to a reordered sum
        assert ours[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-6)), k
    print(f"\nkill soak: {sum(kills.values())} SIGKILLs {kills}; commands run to completion {finished}; `vaelab "
          f"check` after each kill and at the end: nothing damaged; weights (VQ-VAE and prior, last and best), "
          f"metrics.jsonl and eval.json equal the uninterrupted run's")
