"""Studies and applications built on trained runs: sweeps over the config (``vaelab sweep``: grids and Optuna
searches, run directories per trial and seed, resumable; its table and figures: rate-distortion, metrics against
the swept keys), latent arithmetic and concept vectors (``arithmetic``), anomaly detection (:mod:`.anomaly`) and
missing-data imputation (:mod:`.imputation`). Each returns data and figures for the command line and the app."""
from .report import sweep_figures, sweep_table, write_report
from .space import Space, parse_space
from .launch import run_sweep
from .sweep import SweepSpec, read_spec, sweep_values

__all__ = ["Space", "parse_space", "SweepSpec", "run_sweep", "read_spec", "sweep_values", "sweep_table",
           "sweep_figures", "write_report"]
