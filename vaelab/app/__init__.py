"""The vaelab explorer: a Streamlit app to train, explore and compare runs (``vaelab app``, which starts it:
:func:`vaelab.cli.cmd_app`). Streamlit is an optional extra (``pip install vaelab[app]``)."""
from ..access import RUNS_ENV

__all__ = ["RUNS_ENV"]
