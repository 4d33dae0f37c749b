"""The vaelab explorer: a Streamlit app to train, explore and compare runs (``vaelab app``).

Streamlit is an optional extra (``pip install vaelab[app]``); :func:`launch` starts the app's server.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config import ConfigError

RUNS_ENV = "VAELAB_APP_RUNS"  # the runs directory, handed from `vaelab app` to the pages


def launch(runs: str | Path = "runs", host: str = "localhost", port: int = 8501) -> None:
    """Serve the app on http://HOST:PORT over the run directories in ``runs`` (replaces this process)."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ConfigError("the app needs Streamlit: pip install 'vaelab[app]'") from None
    os.environ[RUNS_ENV] = str(Path(runs).resolve())
    script = Path(__file__).with_name("main.py")
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", host,
                              "--server.port", str(port), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                              "--client.toolbarMode", "viewer"])
