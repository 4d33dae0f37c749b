"""Real multi-process training: torchrun launches 2 CPU ranks (gloo) and must match one process."""
import json
import subprocess
import sys

import pytest
import torch

from vaelab import checkpoint

ARGS = ["train", "--dataset", "digits", "--steps", "30", "--set", "model.hidden=[64]", "--set", "model.latent_dim=4",
        "--set", "train.batch_size=64", "--set", "train.progress=false", "--set", "data.binarize=dynamic"]


def test_two_rank_ddp_matches_one_process_on_the_same_global_batch(tmp_path):
    single = subprocess.run([sys.executable, "-m", "vaelab.cli", *ARGS, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vaelab.cli", *ARGS, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("run saved in") == 1  # only rank 0 reports and writes

    a = checkpoint.load_weights(tmp_path / "one" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load_weights(tmp_path / "two" / "checkpoints" / "last.safetensors")[0]
    for k in a:  # the same steps up to float summation order (mean of half-batch means vs one mean)
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=k)

    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for r1, r2 in zip(one, two):  # train metrics are reduced over ranks; validation is sharded and reduced
        for key in ("train/nelbo", "train/kl", "val/nelbo"):
            assert abs(r1[key] - r2[key]) < 1e-3 * abs(r1[key]) + 0.05, (key, r1[key], r2[key])


def test_two_rank_vqvae_keeps_one_ema_codebook(tmp_path):
    """The EMA statistics are all-reduced: both ranks' codebooks equal the one-process codebook."""
    args = ["train", "--model", "vqvae", "--dataset", "digits", "--steps", "20", "--set", "vq.hidden=16",
            "--set", "vq.codebook_size=16", "--set", "vq.dim=4", "--set", "train.batch_size=64",
            "--set", "train.progress=false"]
    single = subprocess.run([sys.executable, "-m", "vaelab.cli", *args, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vaelab.cli", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = checkpoint.load_weights(tmp_path / "one" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load_weights(tmp_path / "two" / "checkpoints" / "last.safetensors")[0]
    for k in ("quantizer.codebook", "quantizer.cluster_size", "quantizer.embed_sum"):
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=k)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # three torchrun launches; the two-rank test above checks the same equality on one node
def test_two_nodes_by_c10d_rendezvous_match_one_process(tmp_path):
    """Two torchrun "nodes" on localhost (--nnodes 2, one process each, c10d rendezvous), as on two machines."""
    single = subprocess.run([sys.executable, "-m", "vaelab.cli", *ARGS, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
              "--rdzv_backend", "c10d", "--rdzv_endpoint", f"localhost:{free_port()}", "--rdzv_id", "vaelab-test",
              "-m", "vaelab.cli", *ARGS, "--out", str(tmp_path / "two")]
    nodes = [subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outs):
        assert node.returncode == 0, err[-3000:]
    assert sum(out.count("run saved in") for out, _ in outs) == 1  # only rank 0 reports and writes

    a = checkpoint.load_weights(tmp_path / "one" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load_weights(tmp_path / "two" / "checkpoints" / "last.safetensors")[0]
    for k in a:  # the same steps up to float summation order (mean of half-batch means vs one mean)
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=k)


def test_an_elastic_relaunch_continues_from_the_last_checkpoint(tmp_path, monkeypatch):
    """The fast variant of the elastic restart: a step fails (as when a peer rank dies), and the same command,
    relaunched by torchrun (TORCHELASTIC_RESTART_COUNT > 0), continues from the last checkpoint to the weights of
    an uninterrupted run, bit for bit."""
    from vaelab.cli import main
    from vaelab.train import Trainer

    args = [*ARGS, "--set", "train.checkpoint_every=7"]
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    real = Trainer._train_step

    def dies_at_step_17(self, batch):
        if self.step == 17:
            raise RuntimeError("the peer rank is gone")
        return real(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", dies_at_step_17)
    assert main([*args, "--out", str(tmp_path / "job")]) == 1
    monkeypatch.setattr(Trainer, "_train_step", real)
    assert main([*args, "--out", str(tmp_path / "job")]) == 2  # not a relaunch: the run is not started over
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert main([*args, "--out", str(tmp_path / "job")]) == 0

    a = checkpoint.load_weights(tmp_path / "whole" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load_weights(tmp_path / "job" / "checkpoints" / "last.safetensors")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda path: [{k: v for k, v in json.loads(x).items() if k != "time"}  # noqa: E731
                          for x in path.read_text().splitlines()]
    assert strip(tmp_path / "job" / "metrics.jsonl") == strip(tmp_path / "whole" / "metrics.jsonl")


def _worker(parent: int, rank: int) -> int | None:
    """The PID of torchrun ``parent``'s worker of global rank ``rank``, once it has started."""
    from pathlib import Path

    for proc in Path("/proc").iterdir():
        try:
            status = (proc / "status").read_text()
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"PPid:\t{parent}\n" in status and f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


@pytest.mark.slow
def test_a_killed_rank_is_relaunched_by_torchrun_and_the_run_ends_as_if_uninterrupted(tmp_path):
    """torchrun --max-restarts 1: rank 1 SIGKILLed mid-run, the job relaunched, resumed from its last checkpoint;
    the final weights equal an uninterrupted 2-rank run's, bit for bit."""
    import os
    import signal
    import time

    args = [*ARGS, "--steps", "400", "--set", "train.checkpoint_every=20"]  # the later --steps wins
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "--max-restarts", "1", "-m", "vaelab.cli", *args]
    whole = subprocess.run([*launch, "--out", str(tmp_path / "whole")], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    job = subprocess.Popen([*launch, "--out", str(tmp_path / "job")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    last = tmp_path / "job" / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 300
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    victim = _worker(job.pid, 1)
    assert victim is not None and job.poll() is None, "the run ended before a rank could be killed"
    os.kill(victim, signal.SIGKILL)
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err[-3000:]
    assert "resuming" in out  # the relaunch continued the run, not started it again
    a = checkpoint.load_weights(tmp_path / "whole" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load_weights(last)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
