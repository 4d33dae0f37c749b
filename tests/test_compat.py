"""Run directories of vaelab 0.1.0 (config and checkpoint version 1, made by tests/fixtures/make_v1.sh) still load,
evaluate to the same eval.json and resume to the same weights as an uninterrupted run of this version."""
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from vaelab import checkpoint
from vaelab.api import evaluate_run, load_run
from vaelab.cli import main
from vaelab.config import CONFIG_VERSION, RunConfig
from vaelab.rundir import RunDir
from vaelab.train import Trainer

V1 = Path(__file__).parent / "fixtures" / "v1"


@pytest.fixture
def v1(tmp_path):
    """A copy of the version-1 runs (resuming rewrites a run directory)."""
    return Path(shutil.copytree(V1, tmp_path / "v1"))


def test_v1_configs_migrate_options_and_facts():
    run = RunDir(V1 / "btc")
    cfg = run.load_config()
    assert cfg.version == CONFIG_VERSION == 2
    assert cfg.objective.name == "beta-tc" and cfg.objective.btc.beta == 4.0 and cfg.objective.btc.alpha == 1.0
    assert set(cfg.objective.options) == {"btc"}  # FactorVAE's and DIP-VAE's v1 keys belonged to no option group
    assert run.facts() == {"shape": [1, 8, 8], "train_size": 1300}  # v1 kept num_classes for conditional models
    assert RunDir(V1 / "cvae").facts()["num_classes"] == 10
    assert RunDir(V1 / "vq" / "prior").facts()["shape"] == [2, 2]  # the prior's data: 2x2 code grids
    factor = RunDir(V1 / "factorvae").load_config()
    assert factor.objective.factor.disc_hidden == 16 and factor.objective.factor.gamma == 35.0


@pytest.mark.parametrize("name", ["vae", "factorvae", "btc", "cvae", "vq", "vq/prior"])
def test_v1_runs_load(name):
    cfg, model = load_run(V1 / name)
    assert not model.training and cfg.model.name in ("vae", "factorvae", "beta-tcvae", "cvae", "vqvae",
                                                      "pixelcnn-prior")


@pytest.mark.parametrize("name", ["vae", "vq"])
def test_v1_runs_evaluate_to_the_same_eval_json(v1, name):
    old = json.loads((V1 / name / "eval.json").read_text())
    new = evaluate_run(v1 / name)
    if new["image_metrics_on"] != "the images":  # issue 15: against the grey images the binary draws came from
        assert new["mse"] < old["mse"] and new["psnr"] > old["psnr"]  # the draws' speckle is no longer error
        old = {k: v for k, v in old.items() if k not in ("mse", "psnr", "ssim")}
    for key, value in old.items():
        if isinstance(value, float):  # float32 networks, float64 sums: the same up to kernels' summation order
            assert new[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        else:
            assert new[key] == value, key


@pytest.mark.parametrize("name, sets", [("vae", []), ("factorvae", []), ("btc", [])])
def test_v1_runs_resume_bit_exact(v1, tmp_path, name, sets):
    """The v1 run stopped at step 10; resumed to 20 it equals a run of this version trained 20 steps at once."""
    run = v1 / name
    assert main(["train", "--resume", str(run), "--steps", "20"]) == 0
    cfg = RunDir(run).load_config()
    assert (run / "config.yaml").read_text().startswith("data:") and "version: 2" in (run / "config.yaml").read_text()
    fresh = Trainer(cfg, tmp_path / "fresh")
    fresh.fit()
    resumed, _ = checkpoint.load(run / "checkpoints" / "last.safetensors")
    again, _ = checkpoint.load(tmp_path / "fresh" / "checkpoints" / "last.safetensors")
    assert resumed.keys() == again.keys()
    for key in again:
        torch.testing.assert_close(resumed[key], again[key], rtol=0, atol=0, msg=key)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20] and all(math.isfinite(r["val/loss"]) for r in records)


def test_v1_factorvae_checkpoint_keeps_its_discriminator_state():
    tensors, meta = checkpoint.load(V1 / "factorvae" / "checkpoints" / "last.safetensors")
    assert set(meta["optim_groups"]) == {"model", "disc"} and "objective.pending" in tensors
    assert any(k.startswith("optim.disc.") for k in tensors) and not any(k.startswith("objective.disc_opt")
                                                                         for k in tensors)
    cfg = RunDir(V1 / "factorvae").load_config()
    trainer = Trainer(cfg)
    trainer.load_state(V1 / "factorvae" / "checkpoints" / "last.safetensors")
    assert trainer.objective.pending.shape == (64, 2) and trainer.players[0].optimizer.state
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
