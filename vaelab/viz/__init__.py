from .explore import dims_by_kl, interpolation, reconstructions, samples, traversal, vq_samples
from .grid import make_grid, save_grid
from .plots import plot_code_maps, plot_code_usage, plot_curves, plot_kl_per_dim, plot_mi_matrix

__all__ = ["make_grid", "save_grid", "plot_curves", "samples", "reconstructions", "interpolation", "traversal",
           "dims_by_kl", "vq_samples", "plot_code_usage", "plot_code_maps", "plot_kl_per_dim", "plot_mi_matrix"]
