from .explore import (code_traversal, decode_edited, dims_by_kl, interpolation, latent_map, reconstructions, samples,
                      traversal, vq_samples)
from .grid import grid_image, labelled_grid, make_grid, save_grid
from .plots import (code_maps_figure, code_usage_figure, curves_figure, kl_per_dim_figure, mi_matrix_figure,
                    rate_distortion_figure, roc_figure, save_figure, score_histograms_figure)

__all__ = ["make_grid", "grid_image", "labelled_grid", "save_grid", "samples", "reconstructions", "interpolation", "traversal",
           "code_traversal", "decode_edited", "dims_by_kl", "latent_map", "vq_samples", "save_figure",
           "curves_figure", "code_usage_figure", "code_maps_figure", "kl_per_dim_figure", "mi_matrix_figure",
           "rate_distortion_figure", "roc_figure", "score_histograms_figure"]
