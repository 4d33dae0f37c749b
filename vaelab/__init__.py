"""vaelab: variational autoencoders, trained on real data, measured honestly, explored by eye."""
from .api import load, load_run
from .config import RunConfig
from .data import DATASETS, load_dataset
from .models import MODELS, build_model

__version__ = "0.1.0"
__all__ = ["load", "load_run", "RunConfig", "DATASETS", "load_dataset", "MODELS", "build_model", "__version__"]
