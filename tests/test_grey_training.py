"""Grey likelihoods in use: the dequantized Gaussian's NLL against an exact 8-bit likelihood (importance sampling and
AIS), bit-exact resumption with dequantization noise, what training refuses, the datasets' presets, and a discretized
logistic VAE that learns and reports bits per dimension."""
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA

from vaelab.cli import main, parser, train_config
from vaelab.config import ConfigError, ModelConfig, RunConfig
from vaelab.data import DataFacts, Dataset, Split, load_dataset
from vaelab.eval import ais_log_likelihood, log_likelihood
from vaelab.models import build_model
from vaelab.train import Trainer

W, B, SIGMA = 0.05, 0.5, 0.002  # decoder z -> W z + B; the Gaussian's sigma, half a bin of 1/256


def one_pixel_model():
    """A dequantized-Gaussian VAE on one 8-bit pixel: y = (k + u) / 256 ~ N(W z + B, SIGMA^2), z ~ N(0, 1), so
    y ~ N(B, W^2 + SIGMA^2) and the 8-bit probability is exact: P(k) = Phi(((k+1)/256 - B) / tau) - Phi((k/256 - B)
    / tau). p(y|z) is narrower than a bin, so which u a term is scored at matters. The encoder is near the posterior
    given the bin's middle, widened to cover the whole bin."""
    model = build_model(ModelConfig(hidden=[], latent_dim=1, likelihood="dequantized-gaussian", sigma=SIGMA),
                        DataFacts((1, 1, 1))).double()
    tau2 = W**2 + SIGMA**2
    with torch.no_grad():
        model.decoder.net[-1].weight.fill_(W)
        model.decoder.net[-1].bias.fill_(B)
        model.q.head.weight.copy_(torch.tensor([[W / tau2 * 255 / 256], [0.0]], dtype=torch.float64))
        model.q.head.bias.copy_(torch.tensor([W / tau2 * (0.5 / 256 - B), math.log(4 * SIGMA**2 / tau2)],
                                             dtype=torch.float64))
    return model.eval(), math.sqrt(tau2)


def exact_log_p(k: torch.Tensor, tau: float) -> torch.Tensor:
    normal = torch.distributions.Normal(torch.tensor(B, dtype=torch.float64), torch.tensor(tau, dtype=torch.float64))
    return torch.log(normal.cdf((k + 1) / 256) - normal.cdf(k / 256))


def test_dequantized_gaussian_nll_converges_to_the_exact_8bit_likelihood():
    """One u per importance sample: the estimate converges to -log E_u p((k + u)/256) = -log P(k) - ln 256, so bits
    per dimension under ``dequantized-8bit`` are -log2 P(k). AIS holds each chain's u fixed: its estimate agrees."""
    model, tau = one_pixel_model()
    k = torch.arange(100, 160, 3, dtype=torch.float64)
    x = (k / 255).reshape(-1, 1, 1, 1)
    exact = exact_log_p(k, tau)  # log P(k)
    est = log_likelihood(model, x, k=16000)
    err = (-est["log_px"] + math.log(256)) - (-exact)  # -log P(k) = nll + ln 256
    assert err.abs().max() < 0.02 and abs(err.mean()) < 0.004, err  # the spread of K = 16000 samples: 0.005
    assert est["bpd_convention"] == "dequantized-8bit"
    assert est["bpd"] == pytest.approx(-exact.mean().item() / math.log(2), abs=0.01)
    ais = ais_log_likelihood(model, x, steps=400, chains=16, leapfrog=5)  # at 100 steps: errors up to 0.13
    err = (-ais["log_px"] + math.log(256)) - (-exact)
    assert abs(err.mean()) < 0.02 and err.abs().max() < 0.1, err
    assert ais["acceptance"] > 0.5


def test_ais_scores_each_chain_at_one_dequantized_value():
    """Evaluations of a chain's log p(x, z) at the same z give the same value, though the likelihood draws its u."""
    from vaelab.eval.ais import _start

    model, _ = one_pixel_model()
    x = torch.full((3, 1, 1, 1), 120 / 255, dtype=torch.float64)
    z, log_ratio, _ = _start(model, x, None, 5, target=7)
    first = log_ratio(z)
    torch.testing.assert_close(log_ratio(z), first, rtol=0, atol=0)
    assert first.std(0).min() > 0  # chains differ: each has its own z and u
    _, other, _ = _start(model, x, None, 5, target=8)
    assert not torch.equal(other(z), first)  # another target seed, other u


def eight_bit_digits() -> Dataset:
    """scikit-learn's digits on the 8-bit grid (k / 255): small, real, and no file needed."""
    d = load_dataset("digits", val_size=200)
    grid = lambda s: Split((s.x * 255).round() / 255, s.y)  # noqa: E731
    return Dataset("digits-8bit", grid(d.train), grid(d.val), grid(d.test), d.num_classes, False)


def small(likelihood: str, *extra: str) -> RunConfig:
    return RunConfig().set(["data.name=digits", "data.binarize=none", f"model.likelihood={likelihood}",
                            "model.hidden=[32]", "model.latent_dim=4", "train.batch_size=64",
                            "train.progress=false", "train.checkpoint_every=7", *extra])


def test_a_resumed_dequantized_run_draws_the_same_noise(tmp_path):
    """u comes from vaelab.noise (seed, step, example): stopped after 13 steps and resumed, the run ends with the
    weights of one that ran its 30 steps at once."""
    data = eight_bit_digits()
    cfg = small("dequantized-gaussian", "model.learn_sigma=true", "model.sigma_mode=per-channel", "train.steps=30")
    ref = Trainer(cfg, tmp_path / "ref", data=data)
    ref.fit()
    first = Trainer(cfg.set(["train.steps=13"]), tmp_path / "run", data=data)
    first.fit()
    resumed = Trainer(cfg, tmp_path / "run", data=data)
    resumed.load_state(first.run.last)
    resumed.fit()
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert ref.model.likelihood.log_sigma.shape == (1, 1, 1)


def test_training_refuses_8bit_likelihoods_on_other_data_and_binarized_grey_likelihoods():
    with pytest.raises(ConfigError, match=r"models 8-bit pixels, values k / 255, and the digits training images are "
                                          r"not on that grid"):
        Trainer(small("discretized-logistic"))  # digits have 17 grey levels, k / 16
    with pytest.raises(ConfigError, match=r"data.binarize=dynamic draws binary pixels for a Bernoulli likelihood; "
                                          r"model.likelihood=continuous-bernoulli models grey values"):
        Trainer(small("continuous-bernoulli", "data.binarize=dynamic"))
    Trainer(small("continuous-bernoulli"))  # a density on [0, 1]: any grey levels


def config(*argv: str) -> RunConfig:
    return train_config(parser().parse_args(["train", *argv]))


def test_grey_datasets_default_to_the_discretized_logistic_and_binary_ones_to_bernoulli():
    for dataset in ("fashion-mnist", "cifar10", "celeba", "image-folder", "frey-faces"):
        cfg = config("--dataset", dataset)
        assert (cfg.model.likelihood, cfg.data.binarize) == ("discretized-logistic", "none"), dataset
    assert (config().data.name, config().model.likelihood) == ("fashion-mnist", "discretized-logistic")  # the default
    for dataset in ("mnist", "omniglot", "binarized-mnist", "digits", "dsprites"):
        cfg = config("--dataset", dataset)
        assert (cfg.model.likelihood, cfg.data.binarize) == ("bernoulli", "dynamic"), dataset
    cfg = config("--dataset", "fashion-mnist", "--set", "model.likelihood=bernoulli", "--set", "data.binarize=dynamic")
    assert (cfg.model.likelihood, cfg.data.binarize) == ("bernoulli", "dynamic")  # presets sit under --set
    assert config("--set", "data.name=cifar10").model.likelihood == "discretized-logistic"  # whichever layer names it
    vq = config("--model", "vqvae", "--dataset", "fashion-mnist")
    assert (vq.model.likelihood, vq.data.binarize) == ("gaussian", "none")  # the model's presets win
    assert config("--model", "pixel-vae", "--dataset", "fashion-mnist").data.binarize == "dynamic"


FREY = SHARED_DATA / "frey_faces" / "frey_faces_uint8.npy"


@pytest.mark.skipif(not FREY.is_file(), reason="the Frey Faces file is not present")
def test_a_discretized_logistic_vae_learns_frey_faces_and_reports_bits_per_dim(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(FREY.parents[1]))
    run = tmp_path / "frey"
    assert main(["train", "--dataset", "frey-faces", "--epochs", "4", "--set", "model.hidden=[64]",
                 "--set", "model.latent_dim=4", "--set", "train.batch_size=32", "--set", "train.progress=false",
                 "--out", str(run)]) == 0
    assert main(["eval", str(run), "--nll-samples", "20"]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "eval.json").read_text())
    assert (result["likelihood"], result["bpd_convention"]) == ("discretized-logistic", "discrete-8bit")
    assert result["nelbo_bpd"] == pytest.approx(result["nelbo"] / (560 * math.log(2)), rel=1e-12)
    assert result["bpd"] == pytest.approx(result["nll"] / (560 * math.log(2)), rel=1e-12)
    assert result["nelbo_bpd"] < 7.0  # uniform over 256 values: 8 bits (6.44 after these 4 epochs)
    assert result["bpd"] < result["nelbo_bpd"] + 0.01
    assert "likelihood                       discretized-logistic (bpd convention: discrete-8bit)" in out
    assert "bits per dim, IS (discrete-8bit)" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["val/nelbo"] < records[0]["val/nelbo"] - 50  # 2599 -> 2503 nats


@pytest.mark.skipif(not FREY.is_file(), reason="the Frey Faces file is not present")
def test_the_frey_faces_config_trains_a_dequantized_gaussian(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(FREY.parents[1]))
    config_file = Path(__file__).parents[1] / "configs" / "frey-faces.yaml"
    run = tmp_path / "frey"
    assert main(["train", "--config", str(config_file), "--steps", "30", "--set", "train.progress=false",
                 "--out", str(run)]) == 0
    assert main(["eval", str(run)]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert (result["likelihood"], result["bpd_convention"]) == ("dequantized-gaussian", "dequantized-8bit")
    assert result["nelbo_bpd"] == pytest.approx((result["nelbo"] + 560 * math.log(256)) / (560 * math.log(2)))
