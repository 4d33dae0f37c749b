"""vaelab: variational autoencoders, trained on real data, measured honestly, explored by eye."""
import os as _os
import sys as _sys


_interrupts: list[int] = []  # Ctrl-Cs received by the `vaelab` command


def interrupted() -> bool:
    """Whether the ``vaelab`` command received Ctrl-C: a KeyboardInterrupt inside a library's import can leave it
    half-initialized, and the next import then fails with any error (seen: a RecursionError in torch's, a ValueError
    in matplotlib's), which is the interrupt's doing, not a bug."""
    return bool(_interrupts)


def _on_sigint(signum, frame):
    _interrupts.append(signum)
    raise KeyboardInterrupt


def _quiet_interrupt(kind, value, tb, _show=_sys.excepthook):
    """Ctrl-C while the ``vaelab`` command is still importing (before its main can catch it): one line, exit 130."""
    if issubclass(kind, KeyboardInterrupt) or _interrupts:
        print("vaelab: interrupted during start-up; nothing was written", file=_sys.stderr, flush=True)
        _os._exit(130)
    _show(kind, value, tb)


# The command line: the `vaelab` script, or `python -m vaelab...` (argv[0] is "-m" while its package is imported).
if _sys.argv and (_sys.argv[0] == "-m" or _os.path.basename(_sys.argv[0]) == "vaelab"):
    import signal as _signal

    _sys.excepthook = _quiet_interrupt
    _signal.signal(_signal.SIGINT, _on_sigint)

import torch as _torch  # noqa: E402

# Adam's running averages turn denormal after a few hundred steps and slow CPU training by 30-60%.
# Flush them to zero, here at import: torch's worker threads inherit the mode only when it is set
# before they start. VAELAB_FLUSH_DENORMAL=0 leaves the CPU's default.
if _os.environ.get("VAELAB_FLUSH_DENORMAL", "1") != "0":
    _torch.set_flush_denormal(True)

__version__ = "0.1.0"
__all__ = ["load", "load_run", "RunConfig", "DATASETS", "load_dataset", "MODELS", "build_model", "__version__"]
_EXPORTS = {"load": "api", "load_run": "api", "RunConfig": "config", "DATASETS": "data", "load_dataset": "data",
            "MODELS": "models", "build_model": "models"}


def __getattr__(name: str):
    """``vaelab.load_run`` and the other exports, imported on first use (PEP 562): ``import vaelab.rundir`` (the
    app's Runs page) does not pay for the evaluators' imports."""
    import importlib
    import importlib.util

    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a subpackage, as before: vaelab.api.load_run
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
