import json
import math

import pytest
import torch

from vaelab import noise
from vaelab.config import ConfigError
from vaelab.data import Dataset, Split
from vaelab.data import binarize


@pytest.fixture
def grey():
    """A grey-level dataset: [0, 1] pixels, mostly strictly between 0 and 1."""
    g = torch.Generator().manual_seed(0)
    split = lambda n: Split(torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 10)  # noqa: E731
    return Dataset("grey", split(50), split(20), split(20), num_classes=10, binary=False)


def is_binary(x):
    return bool(((x == 0) | (x == 1)).all())


def test_static_is_fixed_by_the_seed_and_binary(grey):
    a, b, other = (binarize.prepare(grey, "static", seed) for seed in (3, 3, 4))
    for name in ("train", "val", "test"):
        x = a.split(name).x
        assert is_binary(x) and x.shape == grey.split(name).x.shape
        assert torch.equal(x, b.split(name).x) and not torch.equal(x, other.split(name).x)
        assert torch.equal(a.split(name).y, grey.split(name).y)
    # a pixel's probability of becoming 1 is its grey level
    mean = torch.stack([binarize.prepare(grey, "static", s).train.x for s in range(200)]).mean(0)
    torch.testing.assert_close(mean, grey.train.x, atol=0.15, rtol=0)


def test_dynamic_draws_train_pixels_per_step_and_fixes_val_and_test(grey):
    d = binarize.prepare(grey, "dynamic", 3)
    assert torch.equal(d.train.x, grey.train.x)  # drawn at each step, not here
    for name in ("val", "test"):
        x = d.split(name).x
        assert is_binary(x) and torch.equal(x, binarize.prepare(grey, "dynamic", 3).split(name).x)

    def draw(step):
        with noise.batch_noise(noise.mix_seed(0, step)):
            return binarize.dynamic(grey.train.x)

    first, again, second = draw(1), draw(1), draw(2)
    assert is_binary(first) and is_binary(second)
    assert torch.equal(first, again) and not torch.equal(first, second)


def test_dynamic_evaluation_draws_the_train_split_once_with_its_own_seed(grey):
    """For evaluation a dynamic run's train split is one fixed draw (seed + 2); val and test are the draws
    training validates on; training itself keeps the grey train images."""
    train_time, evaluation = binarize.prepare(grey, "dynamic", 3), binarize.prepare(grey, "dynamic", 3, evaluation=True)
    assert torch.equal(evaluation.train.x, binarize.fixed(grey.train.x, 5)) and is_binary(evaluation.train.x)
    for name in ("val", "test"):
        assert torch.equal(evaluation.split(name).x, train_time.split(name).x)
    assert torch.equal(train_time.train.x, grey.train.x)
    assert binarize.prepare(grey, "static", 3, evaluation=True).train.x.equal(binarize.fixed(grey.train.x, 3))
    assert binarize.describe(grey, "dynamic", 3, "train") == "dynamic (evaluated on one fixed draw, seed 5)"
    assert binarize.describe(grey, "static", 3, "test") == "static (seed 5)"
    assert binarize.describe(grey, "none", 3, "test") == "none"


def test_eval_on_the_train_split_of_a_dynamic_run_scores_binary_pixels(tmp_path, monkeypatch):
    """Bug 8 of issue 12: `vaelab eval --split train` of a dynamically binarized run scored the grey training
    images (on this run: MSE 0.157 per pixel, against 0.228 on binary ones); now it scores one fixed draw of
    them, and eval.json says which."""
    import vaelab.api
    from vaelab.api import load_run
    from vaelab.cli import main
    from vaelab.eval import evaluate
    from vaelab.train import load_run_data

    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--steps", "20", "--set", "model.hidden=[32]", "--set",
                 "model.latent_dim=4", "--set", "train.progress=false", "--out", str(run)]) == 0
    evaluated = []
    monkeypatch.setattr(vaelab.api, "evaluate", lambda model, split, **kw: evaluated.append(split) or evaluate(
        model, split, **kw))
    assert main(["eval", str(run), "--split", "train"]) == 0
    assert is_binary(evaluated[0].x)
    result = json.loads((run / "eval.json").read_text())
    cfg, model = load_run(run)
    train = load_run_data(cfg).train  # as training sees it: grey, drawn afresh at each step
    drawn = Split(binarize.fixed(train.x, cfg.data.seed + 2), train.y)
    assert result["n"] == len(train) and result["nelbo"] == pytest.approx(evaluate(model, drawn)["nelbo"], rel=1e-12)
    assert result["binarization"] == "dynamic (evaluated on one fixed draw, seed 2)"


def test_none_and_already_binary_data_are_unchanged(grey):
    assert binarize.prepare(grey, "none", 3) is grey
    binary = Dataset("b", *(Split((s.x > 0.5).float(), s.y) for s in (grey.train, grey.val, grey.test)), 10, True)
    assert binarize.prepare(binary, "static", 3) is binary
    assert binarize.describe(binary, "dynamic", 3, "train") == "none (the data are binary)"


def test_unknown_mode_is_a_config_error(grey):
    with pytest.raises(ConfigError, match="unknown binarization 'foo'; choose one of none, static, dynamic"):
        binarize.prepare(grey, "foo", 3)


def test_dynamic_pixels_are_one_with_probability_their_grey_level():
    p = torch.linspace(0, 1, 65)  # includes exactly 0 and 1
    with noise.batch_noise(7):
        x = binarize.dynamic(p.expand(20000, 65))
    assert is_binary(x) and (x[:, 0] == 0).all() and (x[:, -1] == 1).all()
    torch.testing.assert_close(x.mean(0), p, atol=0.02, rtol=0)  # standard error <= 0.0036
    # four uniforms are cut from each 64-bit word: each of the four positions is unbiased
    with noise.batch_noise(8):
        half = binarize.dynamic(torch.full((400000,), 0.5))
    torch.testing.assert_close(half.view(-1, 4).mean(0), torch.full((4,), 0.5), atol=0.01, rtol=0)  # se 0.0016


def test_eight_bit_pixels_draw_as_their_float_values_do():
    """The trainer binarizes uint8 batches without converting them: every one of the 256 levels, against each of the
    2^15 uniform levels, must draw as its float32 k / 255 does (exact: the draws are compared bit for bit)."""
    k = torch.arange(256, dtype=torch.uint8).repeat(2**15 // 2)  # [4M]: every level at many uniforms
    with noise.batch_noise(3):
        from_bytes = binarize.dynamic(k)
    with noise.batch_noise(3):
        from_floats = binarize.dynamic(k / 255)
    assert from_bytes.dtype == torch.float32 and torch.equal(from_bytes, from_floats)
    uniforms = torch.arange(2**15, dtype=torch.int16)[:, None]  # the threshold decides the same for every uniform
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(uniforms < levels / (255 / 2**15), uniforms < (levels / 255) * 2**15)


def test_below_is_the_comparison_for_every_uniform_and_threshold():
    """noise.below computes u < t arithmetically: for every uniform level u, at every 8-bit threshold, at integer
    thresholds (where u == t must give 0) and at thresholds just above and below them."""
    u = torch.arange(2**15, dtype=torch.int16)[:, None].expand(-1, 256 + 5)
    edges = torch.tensor([0.0, 1.0, 2.0**15 - 1, 2.0**15, 0.5]).expand(2**15, -1)
    t = torch.cat([(torch.arange(256, dtype=torch.uint8) / (255 / 2**15)).expand(2**15, -1), edges], 1)
    for thresholds in (t, t.nextafter(torch.tensor(-1.0)), t.nextafter(torch.tensor(2.0**16)), t.double()):
        expected = (u < thresholds).to(thresholds.dtype)
        assert torch.equal(noise.below(u, thresholds.clone()), expected)


def test_dynamic_draws_of_a_ranks_slice_are_that_slice_of_the_global_batch():
    x = torch.rand(12, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    with noise.batch_noise(5):
        whole = binarize.dynamic(x)
    with noise.batch_noise(5, start=4, total=12):
        part = binarize.dynamic(x[4:8])
    assert torch.equal(part, whole[4:8])


def test_binarized_splits_keep_their_grey_images(grey):
    """The fixed draws keep the images they came from as ``source`` (``images``), through take(); training's grey
    train split and unbinarized data are their own images."""
    d = binarize.prepare(grey, "dynamic", 3, evaluation=True)
    for name in ("train", "val", "test"):
        split = d.split(name)
        assert is_binary(split.x) and torch.equal(split.images, grey.split(name).x)
    part = d.test.take(torch.tensor([4, 1]))
    assert torch.equal(part.images, grey.test.x[[4, 1]]) and torch.equal(part.x, d.test.x[[4, 1]])
    assert binarize.prepare(grey, "dynamic", 3).train.source is None
    assert binarize.prepare(grey, "none", 3).test.images is grey.test.x


@pytest.fixture(scope="module")
def dynamic_run(tmp_path_factory):
    from vaelab.cli import main

    run = tmp_path_factory.mktemp("dynamic") / "run"
    assert main(["train", "--dataset", "digits", "--epochs", "3", "--set", "model.hidden=[32]", "--set",
                 "model.latent_dim=4", "--set", "train.progress=false", "--out", str(run)]) == 0
    return run


def test_image_metrics_compare_with_the_grey_images_and_the_likelihood_scores_the_draws(dynamic_run):
    """Issue 15: MSE, PSNR and SSIM were computed against the binary draws (on Fashion-MNIST, PSNR 10.6 dB and SSIM
    0.30 against the speckle of the draws). Now against the grey images: the decoder's mean at the posterior mean of
    each draw, compared with the image it was drawn from. The negative ELBO still scores the draws."""
    from vaelab.api import evaluate_run, load_run
    from vaelab.eval.image import psnr, ssim
    from vaelab.train import load_run_data

    result = evaluate_run(dynamic_run)
    cfg, model = load_run(dynamic_run)
    test = load_run_data(cfg, evaluation=True).test
    with torch.no_grad():
        x_hat = model.decode(model.encode(test.x))  # posterior means of the binary draws
    grey_mse = ((x_hat - test.images) ** 2).flatten(1).mean(1)
    draw_mse = ((x_hat - test.x) ** 2).flatten(1).mean(1)
    assert result["mse"] == pytest.approx(grey_mse.double().mean().item(), rel=1e-5)
    assert result["psnr"] == pytest.approx(psnr(test.images, x_hat).double().mean().item(), rel=1e-5)
    assert result["ssim"] == pytest.approx(ssim(test.images, x_hat).double().mean().item(), rel=1e-5)
    assert draw_mse.mean() > grey_mse.mean() + 0.04  # the draws' speckle, E[g (1 - g)] = 0.07 here, is no error
    with torch.no_grad(), noise.batch_noise(noise.mix_seed(0, 0)):
        t = model(test.x)  # the draws (one evaluation batch holds them all)
    nelbo = (t.kl - t.log_px_z).double().mean().item()
    assert result["nelbo"] == pytest.approx(nelbo, rel=1e-5)
    assert (result["likelihood"], result["bpd_convention"]) == ("bernoulli", "binary")
    assert result["likelihood_on"] == "binary draws of the images (binarization)"
    assert result["image_metrics_on"] == "the grey images the draws came from"
    assert result["nelbo_bpd"] == pytest.approx(result["nelbo"] / (64 * math.log(2)), rel=1e-12)


def test_reconstructions_show_the_grey_images_above_the_reconstructions_of_their_draws(dynamic_run, monkeypatch):
    import vaelab.cli
    from vaelab.api import load_run
    from vaelab.train import load_run_data

    saved = []
    monkeypatch.setattr(vaelab.cli, "save_grid", lambda images, path, nrow: saved.append((images, nrow)) or path)
    assert vaelab.cli.main(["reconstruct", str(dynamic_run), "--n", "16"]) == 0
    grid, nrow = saved[0]
    cfg, model = load_run(dynamic_run)
    test = load_run_data(cfg, evaluation=True).test
    rows = grid.unflatten(0, (-1, 2, nrow))  # [R, originals | reconstructions, nrow, C, H, W]
    torch.testing.assert_close(rows[:, 0].flatten(0, 1), test.images[:16], rtol=0, atol=0)
    torch.testing.assert_close(rows[:, 1].flatten(0, 1), model.reconstruct(test.x[:16]), rtol=0, atol=0)
