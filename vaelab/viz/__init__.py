from .explore import dims_by_kl, interpolation, reconstructions, samples, traversal
from .grid import make_grid, save_grid
from .plots import plot_curves

__all__ = ["make_grid", "save_grid", "plot_curves", "samples", "reconstructions", "interpolation", "traversal",
           "dims_by_kl"]
