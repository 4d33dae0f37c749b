from .trainer import NonFiniteLoss, Stopped, Trainer, load_run_data

__all__ = ["Trainer", "NonFiniteLoss", "Stopped", "load_run_data"]
