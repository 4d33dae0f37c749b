"""vaelab: variational autoencoders, trained on real data, measured honestly, explored by eye."""
import os as _os

import torch as _torch

# Adam's running averages turn denormal after a few hundred steps and slow CPU training by 30-60%.
# Flush them to zero, here at import: torch's worker threads inherit the mode only when it is set
# before they start. VAELAB_FLUSH_DENORMAL=0 leaves the CPU's default.
if _os.environ.get("VAELAB_FLUSH_DENORMAL", "1") != "0":
    _torch.set_flush_denormal(True)

from .api import load, load_run
from .config import RunConfig
from .data import DATASETS, load_dataset
from .models import MODELS, build_model

__version__ = "0.1.0"
__all__ = ["load", "load_run", "RunConfig", "DATASETS", "load_dataset", "MODELS", "build_model", "__version__"]
