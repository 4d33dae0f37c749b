from .trainer import NonFiniteLoss, Trainer, load_run_data

__all__ = ["Trainer", "NonFiniteLoss", "load_run_data"]
