"""Bits per dimension only where they mean something, under the convention the likelihood declares."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from vaelab.cli import main
from vaelab.config import ModelConfig
from vaelab.data import DataFacts
from vaelab.eval import ais_log_likelihood, log_likelihood
from vaelab.eval.bpd import CONVENTIONS, bits_per_dim, bpd_convention
from vaelab.models import LIKELIHOODS, build_model

SMALL = ["--dataset", "digits", "--steps", "20", "--set", "model.hidden=[32]", "--set", "model.latent_dim=4",
         "--set", "train.progress=false"]


def test_bpd_of_a_continuous_gaussian_likelihood_is_not_reported(linear_gaussian):
    """Bug 5 of issue 12: nll / (D ln 2) of a Gaussian density is no code length (it was 1.55 bits per
    dimension for this model); importance sampling and AIS report no bpd and no convention."""
    model, x, _ = linear_gaussian
    for est in (log_likelihood(model, x[:50], k=10), ais_log_likelihood(model, x[:50], steps=5, chains=2, leapfrog=1)):
        assert est["bpd"] is None and est["bpd_convention"] is None, est["bpd"]


def test_each_likelihood_declares_its_convention():
    declared = {name: LIKELIHOODS.get(name).bpd_convention for name in LIKELIHOODS}
    assert declared == {"bernoulli": "binary", "gaussian": None, "continuous-bernoulli": None,
                        "discretized-logistic": "discrete-8bit", "dequantized-gaussian": "dequantized-8bit"}
    pixel_vae = build_model(ModelConfig(latent_dim=2, decoder="pixelcnn", pixelcnn_layers=1), DataFacts((1, 4, 4)))
    assert pixel_vae.likelihood.bpd_convention == "binary"
    for name in ("binary", "discrete-8bit", "dequantized-8bit"):
        assert name in CONVENTIONS
    assert bits_per_dim(784 * 8 * math.log(2), 784, "discrete-8bit") == pytest.approx(8.0, rel=1e-15)  # a pmf: no offset


def test_binary_convention_applies_to_binary_data_only():
    """A Bernoulli likelihood's -log p(x) is a code length for x in {0, 1}^D: bpd = nll / (D ln 2). Against grey
    pixels it is a cross-entropy: no bpd."""
    model = build_model(ModelConfig(hidden=[8], latent_dim=2), DataFacts((1, 4, 4)))
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(20, 1, 4, 4, generator=g)
    binary = (grey > 0.5).float()
    est = log_likelihood(model, binary, k=10)
    assert est["bpd_convention"] == "binary"
    assert est["bpd"] == pytest.approx(est["nll"] / (16 * math.log(2)), rel=1e-12)
    est = log_likelihood(model, grey, k=10)
    assert est["bpd"] is None and est["bpd_convention"] is None


def test_dequantized_8bit_convention_adds_ln_256_per_dimension():
    """A density on [0, 1]^D of uniformly dequantized 8-bit data, (k + u) / 256: bpd = (nll + D ln 256) / (D ln 2).
    The uniform density (nll = 0) codes each 8-bit value in exactly 8 bits."""
    assert bits_per_dim(0.0, 784, "dequantized-8bit") == pytest.approx(8.0, rel=1e-15)
    assert bits_per_dim(-784 * math.log(2), 784, "dequantized-8bit") == pytest.approx(7.0, rel=1e-15)
    assert bits_per_dim(100.0, 784, None) is None
    model = SimpleNamespace(likelihood=SimpleNamespace(bpd_convention="dequantized-8bit"))
    eight_bit = torch.randint(0, 256, (10, 1, 28, 28)).float() / 255
    assert bpd_convention(model, eight_bit) == "dequantized-8bit"
    assert bpd_convention(model, eight_bit + 0.5 / 255) is None  # off the 8-bit grid


def test_cli_eval_names_its_bpd_convention(tmp_path, capsys):
    """eval.json says which convention its bpd follow; the CLI prints bpd only where they mean something."""
    for name, extra, convention in (("dynamic", [], "binary"), ("grey", ["--set", "data.binarize=none"], None)):
        run = tmp_path / name
        assert main(["train", *SMALL, *extra, "--out", str(run)]) == 0
        capsys.readouterr()  # training's lines (a collapse warning speaks of nats per dimension)
        assert main(["eval", str(run), "--nll-samples", "20"]) == 0
        out = capsys.readouterr().out
        result = json.loads((run / "eval.json").read_text())
        assert result["bpd_convention"] == convention and ("bits per dim, IS (binary)" in out) == (convention is not None)
        assert ("per dim" in out) == (convention is not None)  # neither the NLL's nor the negative ELBO's bpd
        assert (result["nelbo_bpd"] is None) == (convention is None)
        if convention:
            assert result["bpd"] == pytest.approx(result["nll"] / (64 * math.log(2)), rel=1e-12)
        else:
            assert result["bpd"] is None
