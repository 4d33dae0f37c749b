import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    # Point the loaders at the shared real datasets when this checkout sits beside them.
    if "VAELAB_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["VAELAB_DATA"] = str(SHARED_DATA)
    # A fresh process's first float32 exp/log after the first matmul can be off by ~1e-4 on this CPU: warm up.
    a = torch.randn(64, 64)
    (a @ a).exp().log1p().sum()


@pytest.fixture
def tiny_cfg():
    """A tiny MLP VAE on scikit-learn's 8x8 digits: trains in about a second."""
    from vaelab.config import RunConfig

    return RunConfig().set([
        "data.name=digits", "data.val_size=200", "model.hidden=[64]", "model.latent_dim=4",
        "train.batch_size=64", "train.epochs=2", "train.progress=false", "train.eval_batch_size=500",
    ])


@pytest.fixture
def linear_gaussian():
    """The reference every likelihood estimator is checked against: a linear-Gaussian VAE (probabilistic PCA,
    :func:`vaelab.models.linear.linear_vae`; z in 3-D, x in 16-D, sigma 0.5) and 2000 examples drawn from it.
    Its encoder gives the exact posterior mean with e^2 times the best diagonal variance: a wide proposal that
    leaves the estimators work to do. Returns (model, x [2000, 1, 1, 16], exact log p(x) [2000] float64)."""
    from vaelab.models.linear import exact_log_px, linear_vae

    g = torch.Generator().manual_seed(1)
    W, b = 0.8 * torch.randn(16, 3, generator=g), 0.3 * torch.randn(16, generator=g)
    model = linear_vae(W, b, 0.5)
    with torch.no_grad():
        model.q.head.bias[3:] += 2.0
    x = (b + torch.randn(2000, 3, generator=g) @ W.T + 0.5 * torch.randn(2000, 16, generator=g)).view(2000, 1, 1, 16)
    return model, x, exact_log_px(model, x)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An http.server on 127.0.0.1 serving tmp_path/served, for download tests; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="session")
def app_runs(tmp_path_factory):
    """A runs directory for the app's tests, made with the CLI: a VAE and a beta-VAE (both evaluated), a CVAE and
    a VQ-VAE on the 8x8 digits, a beta-VAE on procedural dSprites with its MIG and SAP computed, and a β study
    (``betas``: a sweep of beta-VAEs on the digits with β = 1 and 8)."""
    from vaelab.cli import main

    root = tmp_path_factory.mktemp("runs")
    small = ["--set", "model.hidden=[64]", "--set", "model.latent_dim=4", "--set", "train.batch_size=64",
             "--set", "train.progress=false"]
    for name, model in (("vae", "vae"), ("beta4", "beta-vae"), ("cvae", "cvae")):
        assert main(["train", "--model", model, "--dataset", "digits", "--epochs", "3", *small,
                     "--out", str(root / name)]) == 0
    for name in ("vae", "beta4"):
        assert main(["eval", str(root / name)]) == 0
    assert main(["train", "--model", "vqvae", "--dataset", "digits", "--steps", "40", "--set", "vq.hidden=16",
                 "--set", "vq.codebook_size=16", "--set", "vq.dim=4", "--set", "train.progress=false",
                 "--out", str(root / "vq")]) == 0
    assert main(["train", "--model", "beta-vae", "--dataset", "dsprites-procedural", "--steps", "5", *small,
                 "--set", "data.train_size=256", "--set", "data.val_size=64", "--set", "data.test_size=64",
                 "--out", str(root / "sprites")]) == 0
    assert main(["disentangle", str(root / "sprites"), "--num-train", "100", "--num-test", "50",
                 "--metrics", "mig", "sap"]) == 0
    assert main(["sweep", "--model", "beta-vae", "--dataset", "digits", "--steps", "10", *small,
                 "--grid", "kl.beta=1,8", "--out", str(root / "betas")]) == 0
    return root
