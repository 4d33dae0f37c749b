import pytest
import torch

from vaelab.config import ConfigError, RunConfig, read_patch


def test_set_parses_values_as_yaml():
    cfg = RunConfig().set(["train.lr=3e-4", "model.hidden=[256, 128]", "train.grad_clip=null", "kl.beta=4"])
    assert cfg.train.lr == 3e-4 and cfg.model.hidden == [256, 128] and cfg.train.grad_clip is None
    assert cfg.kl.beta == 4.0 and isinstance(cfg.kl.beta, float)


def test_bad_keys_and_types_are_named():
    with pytest.raises(ConfigError, match="unknown config key.*train.lrate"):
        RunConfig().set(["train.lrate=1"])
    with pytest.raises(ConfigError, match="train.batch_size must be int"):
        RunConfig().set(["train.batch_size=big"])
    with pytest.raises(ConfigError, match="section.key=value"):
        RunConfig().set(["beta=4"])


@pytest.mark.parametrize("assignments, message", [
    (["train.batch_size=0"], "train.batch_size must be >= 1; got 0"),
    (["train.steps=0"], "train.steps must be >= 1"),
    (["train.eval_batch_size=0"], "train.eval_batch_size must be >= 1"),
    (["train.epochs=0"], "train.epochs must be >= 1 when train.steps is null"),
    (["train.epochs=null"], "train.epochs must be >= 1 when train.steps is null; got None"),
    (["train.checkpoint_every=0"], "train.checkpoint_every must be >= 1"),
    (["kl.schedule=cyclical", "kl.ratio=0"], r"kl.ratio must be in \(0, 1\]; got 0.0"),
    (["kl.ratio=1.5"], r"kl.ratio must be in \(0, 1\]"),
    (["kl.cycles=0"], "kl.cycles must be >= 1"),
    (["kl.warmup_steps=-1"], "kl.warmup_steps must be >= 0"),
    (["kl.capacity_steps=-5"], "kl.capacity_steps must be >= 0"),
    (["data.binarize=foo"], "data.binarize must be one of none, static, dynamic; got 'foo'"),
    (["kl.schedule=cosine"], "kl.schedule must be one of constant, cyclical, linear"),
    (["model.likelihood=poisson"], "model.likelihood must be one of bernoulli, continuous-bernoulli, "
                                   "dequantized-gaussian, discretized-logistic, gaussian; got 'poisson'"),
    (["model.mixtures=0"], "model.mixtures must be >= 1; got 0"),
    (["data.limit=0"], r"data.limit must be >= 1 \(or null\); got 0"),
    (["model.sigma_min=-0.1"], r"model.sigma_min must be >= 0 \(or null\); got -0.1"),
    (["model.sigma_mode=per-row"], "model.sigma_mode must be one of per-pixel, per-channel, isotropic"),
    (["model.activation=foo"], "model.activation must be one of elu, gelu, relu, silu, tanh, gated; got 'foo'"),
])
def test_bad_values_are_named(assignments, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().set(assignments)


def test_values_at_the_limits_are_accepted():
    cfg = RunConfig().set(["train.batch_size=1", "train.epochs=null", "train.steps=1", "kl.ratio=1", "kl.cycles=1",
                           "kl.warmup_steps=0", "kl.capacity_steps=0", "model.activation=gated"])
    assert cfg.train.steps == 1 and cfg.kl.ratio == 1.0


def test_yaml_round_trip_and_partial_files(tmp_path):
    cfg = RunConfig().set(["model.arch=conv", "kl.schedule=cyclical"])
    cfg.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == cfg
    (tmp_path / "p.yaml").write_text("kl:\n  beta: 8\n")
    assert read_patch(tmp_path / "p.yaml") == {"kl": {"beta": 8}}
    (tmp_path / "bad.yaml").write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_patch(tmp_path / "bad.yaml")
    (tmp_path / "zero.yaml").write_text("train:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match="train.batch_size must be >= 1"):
        read_patch(tmp_path / "zero.yaml")
    (tmp_path / "old.yaml").write_text("version: 0\n")
    with pytest.raises(ConfigError, match="config version 0"):
        read_patch(tmp_path / "old.yaml")


def test_shipped_config_files_are_valid():
    from pathlib import Path

    files = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert files
    for f in files:
        RunConfig().override(read_patch(f))


def test_run_config_layers_presets_as_the_cli_does():
    """Dataset presets, then the model's, then assignments: Fashion-MNIST's grey pixels take the discretized
    logistic, beta-vae sets beta 4, and an assignment overrides both."""
    from vaelab.api import run_config

    cfg = run_config("beta-vae", "fashion-mnist", ["model.latent_dim=8"])
    assert (cfg.model.name, cfg.data.name, cfg.kl.beta, cfg.model.latent_dim) == ("beta-vae", "fashion-mnist", 4.0, 8)
    assert (cfg.model.likelihood, cfg.data.binarize) == ("discretized-logistic", "none")
    assert run_config("beta-vae", "mnist", ["kl.beta=2"]).kl.beta == 2.0
    assert run_config("vae", "mnist").model.likelihood == "bernoulli"


def test_data_limit_keeps_the_first_examples_of_each_split(tiny_cfg):
    from vaelab.train import load_run_data

    full = load_run_data(tiny_cfg)
    small = load_run_data(tiny_cfg.set(["data.limit=50"]))
    for name in ("train", "val", "test"):
        assert len(small.split(name)) == 50
        assert torch.equal(small.split(name).x, full.split(name).x[:50])
    assert small.facts.train_size == 50
