import json
import math

import pytest
import torch

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.data import DataError, DataFacts, load_dataset
from vaelab.eval import psnr, ssim
from vaelab.models import MODELS
from vaelab.train import Trainer

SMALL = ["vq.hidden=32", "vq.codebook_size=64", "vq.dim=16", "train.progress=false"]


def test_psnr_and_ssim_on_known_cases():
    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(ssim(x, x), torch.ones(3))  # exactly 1 at every position: numerator == denominator
    # mse 0.01 -> 20 dB; x + 0.1 - x is 0.1 to float32 rounding (1e-6 relative), whatever the order of the mean
    assert psnr(x, x + 0.1).sub(20).abs().max() < 1e-3
    a, b = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), 0.6)
    c1 = 0.01**2
    assert ssim(a, b).item() == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), rel=1e-4)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(x, noisy) < 0.9).all() and (ssim(x, noisy) > ssim(x, torch.rand_like(x))).all()


def test_ssim_does_not_depend_on_blas_summation_order():
    """Issue 12: the local variances E[x^2] - E[x]^2 cancelled in float32 matmuls whose summation order differs
    between CPUs (MKL_CBWR=COMPATIBLE moved constant 0.5 vs 0.4 images from 0.9756156 to 0.9756480, and some
    sizes were off by 4e-4). Constant images have zero variance and the closed form (2ab + c1) / (a^2 + b^2 + c1)."""
    c1 = 0.01**2
    for a, b in ((0.5, 0.4), (0.2, 0.6), (0.9, 0.85), (1.0, 0.0)):
        expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
        for n, size in ((1, 8), (1, 16), (3, 28), (1, 32), (2, 64)):
            x, y = torch.full((n, 1, size, size), a), torch.full((n, 1, size, size), b)
            # moments in float64, then one float32 rounding (6e-8 relative): no summation order can move 1e-6
            torch.testing.assert_close(ssim(x, y).double(), torch.full((n,), expected, dtype=torch.float64),
                                       rtol=1e-6, atol=0)


def test_ssim_equals_the_2d_gaussian_window_on_colour_rectangles():
    """Wang et al.'s SSIM with the 11x11 window as one 2-D depthwise convolution, the definition written out."""
    x = torch.rand(4, 3, 20, 27)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    x, y = x.double(), y.double()  # the reference in float64, where summation order does not show at 1e-6
    t = torch.arange(11.0, dtype=torch.float64) - 5
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)
    f = lambda a: torch.nn.functional.conv2d(a, window, groups=3)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    torch.testing.assert_close(ssim(x.float(), y.float()).double(), expected.flatten(1).mean(1), rtol=1e-6, atol=0)


def vq_run(dataset: str, extra: list[str]) -> RunConfig:
    cfg = RunConfig().override(MODELS.get("vqvae").presets)
    return cfg.set(["model.name=vqvae", f"data.name={dataset}", *SMALL, *extra])


def test_vq_losses_move_what_they_should():
    cfg = vq_run("digits", ["vq.ema=false", "train.steps=1", "vq.dead_after=1"])
    trainer = Trainer(cfg)
    x = trainer.data.train.x[:16]
    loss, logs = trainer.objective(trainer.model, x, None, 0)
    logs = {k: float(v) for k, v in logs.items()}
    # the loss adds the same three float32 terms: two roundings (1e-7), no sum whose order could move 1e-5
    assert logs["codebook"] > 0 and logs["loss"] == pytest.approx(
        logs["recon"] + logs["codebook"] + 0.25 * logs["commitment"], rel=1e-5)
    assert 0 < logs["dead_codes"] == round(64 * (1 - logs["codes_used"]))  # unused for dead_after = 1 step
    t = trainer.model(x)
    (t.vq.codebook_loss).backward()
    assert trainer.model.quantizer.codebook.grad.abs().sum() > 0
    assert all(p.grad is None for p in trainer.model.encoder.parameters())


def test_vq_losses_do_not_scale_with_lookup_dim():
    """Codebook and commitment terms: the sum over each example's latent grid of ||z - e||^2 in the lookup space,
    averaged over examples, whatever vq.lookup_dim is."""
    from vaelab.models import build_model
    from vaelab.objectives import VQObjective

    def model(lookup: list[str]):
        cfg = vq_run("digits", ["vq.ema=false", *lookup])  # 16 codes of D = 16
        torch.manual_seed(0)
        return cfg, build_model(cfg, DataFacts((1, 8, 8)))

    x = torch.rand(8, 1, 8, 8)
    cfg, plain = model([])
    losses = {k: float(v) for k, v in VQObjective(cfg, DataFacts((1, 8, 8)), 1)(plain, x, None, 0)[1].items()}
    cfg, same = model(["vq.lookup_dim=16"])
    with torch.no_grad():  # identity projections: the lookup space is the code space
        for proj in (same.quantizer.project_in, same.quantizer.project_out):
            proj.weight.copy_(torch.eye(16))
            proj.bias.zero_()
    same.load_state_dict(plain.state_dict(), strict=False)
    logs = VQObjective(cfg, DataFacts((1, 8, 8)), 1)(same, x, None, 0)[1]
    for k in ("loss", "codebook", "commitment"):  # products with 1 and sums with 0: the same float32 values
        assert float(logs[k]) == pytest.approx(losses[k], rel=1e-6), k
    cfg, small = model(["vq.lookup_dim=4"])
    logs = VQObjective(cfg, DataFacts((1, 8, 8)), 1)(small, x, None, 0)[1]
    q = small.quantizer
    with torch.no_grad():
        z = q.project_in(small.encoder(x).movedim(1, -1)).double()  # [B, 2, 2, 4]: the lookup space
    d2 = ((z[..., None, :] - q.codebook.detach().double()) ** 2).sum(-1)  # [B, 2, 2, K]
    by_hand = d2.min(-1).values.sum((1, 2)).mean().item()  # squared distance to the nearest code, summed per example
    assert by_hand > 0
    for k in ("codebook", "commitment"):
        assert float(logs[k]) == pytest.approx(by_hand, rel=1e-4), k


def test_kmeans_init_and_restarts_each_use_more_codes_on_fashion_mnist():
    try:
        load_dataset("fashion-mnist", download=False)
    except DataError:
        pytest.skip("Fashion-MNIST is not installed")
    used = {}
    for name, extra in (("plain", []), ("kmeans", ["vq.kmeans_init=true"]), ("restarts", ["vq.dead_after=20"])):
        trainer = Trainer(vq_run("fashion-mnist", ["train.steps=60", "train.batch_size=64", "data.val_size=1000",
                                                   *extra]))
        used[name] = trainer.fit()["val/codes_used"]
    # 60 steps measured: plain 0.06, k-means init 0.22, restarts 0.94 of the 64 codes
    assert used["kmeans"] > used["plain"] + 0.1 and used["restarts"] > used["plain"] + 0.5, used


def test_vqvae_cli_end_to_end(tmp_path, capsys):
    run = str(tmp_path / "vq")
    sets = [a for s in SMALL + ["vq.kmeans_init=true"] for a in ("--set", s)]
    assert main(["train", "--model", "vqvae", "--dataset", "digits", "--epochs", "2", "--out", run, *sets]) == 0
    assert main(["eval", run]) == 0
    result = json.loads((tmp_path / "vq" / "eval.json").read_text())
    for key in ("mse", "psnr", "ssim", "perplexity", "codes_used", "dead_codes"):
        assert math.isfinite(result[key])
    assert result["psnr"] == pytest.approx(-10 * math.log10(result["mse"]), abs=3)  # mean of per-image PSNRs
    assert 1 <= result["perplexity"] <= 64 and sum(result["code_counts"]) == 297 * 4  # 8x8 -> 2x2 codes
    assert main(["sample", run]) == 2
    assert "train-prior" in capsys.readouterr().err
    assert main(["train-prior", run, "--epochs", "2", "--set", "code_prior.layers=2", "--set", "code_prior.dim=16"]) == 0
    assert main(["sample", run, "--n", "8", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["eval", run]) == 0
    assert json.loads((tmp_path / "vq" / "eval.json").read_text())["prior_bits_per_code"] > 0
    assert main(["codes", run]) == 0
    assert (tmp_path / "vq" / "codebook_usage.png").exists() and (tmp_path / "vq" / "code_maps.png").exists()
    assert main(["traverse", run]) == 2
    assert "`vaelab traverse` needs a model that can traverse latent dimensions" in capsys.readouterr().err


@pytest.mark.parametrize("arch,shape,grid", [("vq-conv", (1, 28, 28), (7, 7)), ("vq-residual", (3, 32, 32), (8, 8)),
                                             ("vq-residual", (3, 64, 64), (16, 16))])
def test_vq_architectures_shapes(arch, shape, grid):
    from vaelab.models import build_model

    cfg = RunConfig().override(MODELS.get("vqvae").presets).set(
        ["model.name=vqvae", f"model.arch={arch}", *SMALL])
    model = build_model(cfg, DataFacts(shape))
    x = torch.rand(2, *shape)
    assert model.encode(x).shape == (2, *grid)
    assert model(x).out.shape == (2, *shape) and model.reconstruct(x).shape == (2, *shape)
