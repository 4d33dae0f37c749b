"""Studies over many runs: ``vaelab sweep`` (grids and Optuna searches of the config, run directories per trial
and seed, resumable), its table and figures (rate-distortion, metrics against the swept keys)."""
from .report import sweep_figures, sweep_table, write_report
from .space import Space, parse_space
from .launch import run_sweep
from .sweep import SweepSpec, read_spec, sweep_values

__all__ = ["Space", "parse_space", "SweepSpec", "run_sweep", "read_spec", "sweep_values", "sweep_table",
           "sweep_figures", "write_report"]
