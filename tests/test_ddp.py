"""Real multi-process training: torchrun launches 2 CPU ranks (gloo) and must match one process."""
import json
import subprocess
import sys

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
