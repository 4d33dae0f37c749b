import os
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
