"""InfoVAE, WAE-MMD, WAE-GAN, the adversarial autoencoder and VAE-GAN: the MMD estimator, the discriminators, the
aggregate posterior on a 2-D toy problem, VAE-GAN's three parameter groups, resume with every optimizer, DDP, and
the combinations that do not apply."""
import json
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from vaelab import checkpoint, noise
from vaelab.cli import main
from vaelab.config import ConfigError, RunConfig
from vaelab.data.base import Dataset, Split
from vaelab.models import MODELS
from vaelab.objectives.mmd import KERNELS, WAE_SCALES, mmd_u
from vaelab.train import Trainer

SMALL = ["data.name=digits", "data.val_size=200", "model.hidden=[32]", "model.latent_dim=4", "train.batch_size=64",
         "train.progress=false", "train.eval_batch_size=500"]
DISCS = {"wae-gan": ["objective.wae_gan.disc_hidden=32", "objective.wae_gan.disc_layers=2"],
         "aae": ["objective.aae.disc_hidden=32", "objective.aae.disc_layers=2"]}


def config(name: str, *sets: str) -> RunConfig:
    """Model ``name`` with its presets, tiny, on the 8x8 digits."""
    return RunConfig().override(MODELS.get(name).presets).set([f"model.name={name}", *SMALL, *DISCS.get(name, []),
                                                               *sets])


@contextmanager
def one_thread():
    """Tiny networks run fastest on one thread (and much faster on a loaded machine); restored after."""
    was = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(was)


# ----------------------------------------------------------------------------------------------- the MMD estimator
def test_kernels_match_a_hand_computation():
    d2 = torch.tensor([[5.0]], dtype=torch.float64)  # ||(0, 0) - (1, 2)||^2 in d_z = 2
    assert KERNELS.get("imq")(d2, 2, 1.0).item() == pytest.approx(4 / 9, rel=1e-12)  # C = 2 * 2 * 1
    assert KERNELS.get("imq")(d2, 2, 0.5).item() == pytest.approx(2 / 7, rel=1e-12)
    assert KERNELS.get("rbf")(d2, 2, 1.0).item() == pytest.approx(torch.exp(torch.tensor(-2.5)).item(), rel=1e-6)


def test_unbiased_mmd_matches_a_hand_computation_and_leaves_out_the_diagonal():
    """x = {0, 1}, y = {0, 3} in 1-D, one IMQ kernel with C = 2: the pairs i != j only, so it can fall below 0."""
    x, y = torch.tensor([[0.0], [1.0]], dtype=torch.float64), torch.tensor([[0.0], [3.0]], dtype=torch.float64)
    # k_xx(0, 1) = 2/3; k_yy(0, 3) = 2/11; k_xy mean = (1 + 2/11 + 2/3 + 1/3) / 4 = 6/11
    assert mmd_u(x, y, "imq", [1.0]).item() == pytest.approx(2 / 3 + 2 / 11 - 12 / 11, rel=1e-12)  # -8/33
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k = lambda u, v: sum(2 * 3 * s / (2 * 3 * s + ((u - v) ** 2).sum()) for s in WAE_SCALES)  # noqa: E731
    xx = sum(k(a[i], a[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(a[i], b[j]) for i in range(6) for j in range(5)) / 30
    assert mmd_u(a, b).item() == pytest.approx((xx + yy - 2 * xy).item(), rel=1e-10)


def test_mmd_is_zero_in_expectation_for_one_distribution_and_positive_for_a_shift():
    """200 estimates from pairs of samples (n = 100, d_z = 8) of N(0, I): their mean is 0 by a two-sided test at a
    false-alarm rate of 0.1% (|t| < 3.29); with one sample shifted by 0.5 in each dimension every estimate is > 0."""
    g = torch.Generator().manual_seed(1)
    draw = lambda: torch.randn(100, 8, generator=g, dtype=torch.float64)  # noqa: E731
    same = torch.stack([mmd_u(draw(), draw()) for _ in range(200)])
    t = same.mean() / (same.std() / 200**0.5)
    assert abs(t.item()) < 3.29, t
    assert (same < 0).any()  # unbiased: below 0 as well as above
    shifted = torch.stack([mmd_u(draw(), draw() + 0.5) for _ in range(200)])
    assert (shifted > 0).all() and shifted.mean() > 20 * same.std()


# ------------------------------------------------------------------------------------------------- discriminators
@pytest.mark.parametrize("name", ["wae-gan", "aae"])
def test_latent_discriminator_tells_fixed_codes_from_prior_draws(name):
    g = torch.Generator().manual_seed(0)
    tr = Trainer(config(name, "train.steps=1"))
    obj = tr.objective
    obj.pending_z, obj.pending_p = torch.randn(256, 4, generator=g) + 1.0, torch.randn(256, 4, generator=g)
    first = tr._step_players()["disc_loss"]
    for _ in range(150):
        last = tr._step_players()["disc_loss"]
    with torch.no_grad():
        says_prior = obj.disc(torch.cat([obj.pending_p, obj.pending_z])).argmax(-1) == 0
    accuracy = torch.cat([says_prior[:256], ~says_prior[256:]]).float().mean().item()
    assert accuracy > 0.8 and last < first - 0.2, (accuracy, first, last)


def test_image_discriminator_tells_digits_from_noise():
    tr = Trainer(config("vae-gan", "train.steps=1"))
    obj, x = tr.objective, tr.data.train.x[:128]
    g = torch.Generator().manual_seed(0)
    noise_images = torch.rand(2, *x.shape, generator=g)
    obj.pending_x, obj.pending_rec, obj.pending_gen = x, noise_images[0], noise_images[1]
    first = tr._step_players()["disc_loss"]
    for _ in range(60):
        last = tr._step_players()["disc_loss"]
    with torch.no_grad():
        logits, _ = obj.disc(torch.cat([obj.pending_x, obj.pending_rec, obj.pending_gen]))
    right = torch.cat([logits[:128] > 0, logits[128:] < 0]).float().mean().item()
    assert right > 0.9 and last < first / 2, (right, first, last)


# ------------------------------------------------------------------------------------------- the 2-D toy problem
def toy(n: int, seed: int) -> torch.Tensor:
    """A correlated 2-D Gaussian away from the origin: x = L e + (3, -1), as [n, 1, 1, 2] 'images'."""
    g = torch.Generator().manual_seed(seed)
    L = torch.tensor([[1.5, 0.0], [1.0, 0.5]])
    return (torch.randn(n, 2, generator=g) @ L.T + torch.tensor([3.0, -1.0])).view(n, 1, 1, 2)


@pytest.mark.parametrize("name, sets, close", [
    ("aae", ["objective.aae.disc_lr=2e-3"], True),
    pytest.param("wae-gan", ["objective.wae_gan.lam=1", "objective.wae_gan.disc_lr=2e-3"], True,
                 marks=pytest.mark.slow),  # at lambda 1 the AAE's loss: only its option group differs
    ("wae-mmd", ["objective.wae.lam=0", "train.steps=500"], False)])
def test_aggregate_posterior_on_a_2d_toy_problem(name, sets, close):
    """After 2000 steps the codes of 1000 test points have mean within 0.3 of 0 and covariance entries within 0.6 of
    I's for the AAE and WAE-GAN; a plain autoencoder's (WAE with lambda = 0; 500 steps, it has no game to settle)
    do not (mean off by 2.2, covariance by 1.5 after 600 steps). The 1000 codes' own sampling error is ~0.03
    (mean) and ~0.045 (covariance); the rest of the bound is the adversarial game's: over train.seed 0-7 its final
    codes were off by up to 0.20 (mean) and 0.47 (covariance). The discriminator learns 10x faster than the model
    (lr 2e-3 against 2e-4): at the paper's 5e-4 against 1e-3 it fell to chance while the codes drifted (2 of 4
    seeds off by 0.5-1.2 in the mean); and lambda is 1, as the 2-D reconstruction cost is tiny next to MNIST's."""
    data = Dataset("toy", Split(toy(2000, 0), None), Split(toy(200, 1), None), Split(toy(1000, 2), None), 0, False)
    cfg = config(name, "model.hidden=[32, 32]", "model.latent_dim=2", "model.likelihood=gaussian",
                 "train.batch_size=200", "train.steps=2000", "train.lr=2e-4", "train.adam_beta1=0.5",
                 *[s.replace("=32", "=64") for s in DISCS.get(name, [])], *sets)
    with one_thread():
        tr = Trainer(cfg, data=data)
        tr.fit()
    z = tr.model.encode(data.test.x).double()
    mean_off, cov_off = z.mean(0).abs().max().item(), (torch.cov(z.T) - torch.eye(2)).abs().max().item()
    assert (mean_off < 0.3 and cov_off < 0.6) == close, (mean_off, cov_off)


# ---------------------------------------------------------------------------------------------------- VAE-GAN
def test_vaegan_gives_each_parameter_group_its_own_gradient():
    """Encoder: grad (KL + L_llike); decoder: grad (gamma L_llike + L_GAN), L_GAN non-saturating on the
    reconstructions and the samples; from the one loss the trainer's optimizer steps (float64)."""
    torch.set_default_dtype(torch.float64)
    try:
        tr = Trainer(config("vae-gan", "train.steps=1", "objective.vaegan.gamma=0.3"))
        model, obj, x = tr.model, tr.objective, tr.data.train.x[:16].double()
        enc = [*model.encoder.parameters(), *model.q.parameters()]
        dec = list(model.decoder.parameters())
        with noise.batch_noise(7):
            loss, _ = obj(model, x, None, 0)
        got = torch.autograd.grad(loss, enc + dec)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        with noise.batch_noise(7):  # the paper's losses, each group by its own, from the same draws
            t = model(x)
            x_p = model.decoder_mean(model.prior.sample(16))
        (_, f_real), (_, f_rec) = obj.disc(x), obj.disc(t.x_hat)
        llike = 0.5 * ((f_rec - f_real) ** 2).sum(-1).mean()
        l_rec, l_gen = obj.disc(t.x_hat)[0], obj.disc(x_p)[0]
        gan = bce(l_rec, torch.ones_like(l_rec)) + bce(l_gen, torch.ones_like(l_gen))
        want = (torch.autograd.grad(t.kl.mean() + llike, enc, retain_graph=True)
                + torch.autograd.grad(0.3 * llike + gan, dec))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


# ------------------------------------------------------------------------------------ resume, DDP, conditional
@pytest.mark.parametrize("name", ["wae-gan", "vae-gan", "wae-mmd"])
def test_resume_is_bit_exact_with_every_optimizer(name, tmp_path):
    """The model's and the discriminator's Adam/RMSProp states, the pending batch and the weights: a run cut at
    step 20 and resumed ends where the uninterrupted one does, bit for bit."""
    cfg = config(name, "train.steps=35", "train.checkpoint_every=10")
    with one_thread():
        Trainer(cfg, tmp_path / "ref").fit()
        Trainer(cfg.set(["train.steps=20"]), tmp_path / "cut").fit()
        resumed = Trainer(cfg, tmp_path / "cut")
        resumed.resume()
        assert resumed.step == 20
        resumed.fit()
    a = checkpoint.load(tmp_path / "ref" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.safetensors")[0]
    assert a.keys() == b.keys()
    optimizers = {k.split(".")[1] for k in a if k.startswith("optim.")}
    assert optimizers == ({"model"} if name == "wae-mmd" else {"model", "disc"})
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("name", ["wae-mmd", "vae-gan", pytest.param("wae-gan", marks=pytest.mark.slow),
                                  pytest.param("infovae", marks=pytest.mark.slow)])
def test_two_rank_ddp_matches_one_process_on_the_same_global_batch(name, tmp_path):
    """The MMD is of the global batch (codes gathered over ranks, with gradient; with each rank's half-batch MMD
    instead this test fails), the discriminators learn from the global batch: 2 ranks take the steps one process
    takes. WAE-GAN and InfoVAE share those paths with VAE-GAN and WAE-MMD: slow."""
    args = ["train", "--model", name, "--dataset", "digits", "--steps", "20", "--set", "model.hidden=[32]",
            "--set", "model.latent_dim=4", "--set", "train.batch_size=64", "--set", "train.progress=false",
            *[a for s in DISCS.get(name, []) for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 4 processes of tiny networks on 2 cores
    one = subprocess.run([sys.executable, "-m", "vaelab.cli", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vaelab.cli", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    a = checkpoint.load(tmp_path / "one" / "checkpoints" / "last.safetensors")[0]
    b = checkpoint.load(tmp_path / "two" / "checkpoints" / "last.safetensors")[0]
    for k in a:  # the same steps up to float summation order
        if not k.startswith("trainer."):
            torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=k)
    r1, r2 = [json.loads((tmp_path / d / "metrics.jsonl").read_text().splitlines()[-1]) for d in ("one", "two")]
    assert abs(r1["train/loss"] - r2["train/loss"]) < 1e-3 * abs(r1["train/loss"]) + 1e-3


def test_supervised_aae_gives_the_label_to_the_decoder_only():
    tr = Trainer(config("aae", "model.conditional=true", "train.steps=60"))
    with one_thread():
        tr.fit()
    m, x = tr.model, tr.data.test.x[:32]
    y0, y1 = torch.zeros(32, dtype=torch.long), torch.ones(32, dtype=torch.long)
    assert torch.equal(m.encode(x, y0), m.encode(x, y1))  # the code is the style alone
    z = m.encode(x, y0)
    assert (m.decode(z, y0) - m.decode(z, y1)).abs().mean() > 0.01  # the class comes from the label
    assert m.sample(4, y=y0[:4]).shape == (4, 1, 8, 8)


# ------------------------------------------------------------------------------------------------- objectives
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("name", ["infovae", "mmd-vae", "wae-mmd", "wae-gan", "aae", "vae-gan"])
def test_every_model_trains_with_mlp_and_conv_networks(name, arch):
    with one_thread():
        record = Trainer(config(name, f"model.arch={arch}", "model.channels=[4, 8]", "train.steps=4")).fit()
    assert torch.isfinite(torch.tensor(record["train/loss"])) and record["val/mmd"] > -0.1
    assert ("val/nelbo" in record) == (name in ("infovae", "mmd-vae"))  # an ELBO only where there is a density


def test_infovae_weights_and_the_mmd_vae_preset():
    cfg = config("mmd-vae", "train.steps=1")
    assert (cfg.objective.info.alpha, cfg.objective.info.lam) == (1.0, 1000.0)
    tr = Trainer(cfg)
    assert (tr.objective.kl_weight, tr.objective.mmd_weight) == (0.0, 1000.0)
    with noise.batch_noise(3):
        loss, logs = tr.objective(tr.model, tr.data.train.x[:64], None, 0)
    assert loss.item() == pytest.approx((logs["recon"] + 1000 * logs["mmd"]).item(), rel=1e-5)


@pytest.mark.parametrize("sets, match", [
    (["objective.info.alpha=0.5", "objective.info.lam=0.03"], r"MMD weight alpha \+ lambda - 1 = 0.5 \+ 0.03 - 1 = "
                                                                r"-0.47 is negative"),
    (["objective.info.alpha=2", "objective.info.lam=1"], "KL weight 1 - alpha = -1 is negative"),
    (["model.layers=[4, 2]"], "objective 'infovae' compares one layer")])
def test_infovae_refuses_negative_weights(sets, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(config("infovae", *sets))


@pytest.mark.parametrize("model, sets, match", [
    ("vae", ["objective.name=iwae", "model.posterior=deterministic"],
     "deterministic encoder with no density q\\(z\\|x\\), which IWAE's importance weights"),
    ("vae", ["model.posterior=deterministic"], "which a VAE's ELBO needs"),
    ("vae-gan", ["model.posterior=deterministic"], "objective 'vae-gan' is a VAE"),
    ("wae-mmd", ["model.posterior=iaf"], "got model.posterior iaf"),
    ("wae-mmd", ["objective.name=elbo"], "objective 'elbo' trains a VAE"),
    ("wae-mmd", ["objective.wae.kernel=cauchy"], "objective.wae.kernel must be one of imq, rbf"),
    ("wae-mmd", ["objective.wae.scales=[]"], "objective.wae.scales must be a list of numbers > 0"),
    ("wae-gan", ["objective.wae_gan.lam=-1"], "objective.wae_gan.lam must be >= 0"),
])
def test_combinations_that_do_not_apply_are_refused(model, sets, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(config(model, *sets))


def test_an_autoencoder_has_no_likelihood_to_estimate(tmp_path, capsys):
    """eval.json lists the metrics that apply (no ELBO); asking for an NLL is one clear line, not a number."""
    run = str(tmp_path / "wae")
    assert main(["train", "--model", "wae-mmd", "--dataset", "digits", "--steps", "10", "--set", "model.hidden=[32]",
                 "--set", "train.progress=false", "--out", run]) == 0
    assert main(["eval", run]) == 0
    result = json.loads((tmp_path / "wae" / "eval.json").read_text())
    assert set(result["metrics"]) == {"loss", "sse", "mse", "psnr", "ssim", "mmd", "active_units", "nmi", "ari",
                                     "probe_accuracy"}  # labelled data: clustering and a probe of the codes
    assert "nelbo" not in result and "nll" not in result
    for view in ("sample", "reconstruct", "interpolate", "traverse"):
        assert main([view, run]) == 0, view
    capsys.readouterr()
    assert main(["eval", run, "--nll-samples", "10"]) == 2
    err = capsys.readouterr().err
    assert "needs a model that can estimate log p(x)" in err and "an autoencoder without a likelihood" in err
    assert err.count("\n") == 1, err
