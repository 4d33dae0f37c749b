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
