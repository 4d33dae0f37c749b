"""What every page passes first, kept light (no torch): the Host allow-list, the token, and the runs directory."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from .. import access

log = logging.getLogger("vaelab.app")


def runs_root() -> Path:
    return Path(os.environ.get(access.RUNS_ENV, "runs")).resolve()


def guard() -> None:
    """Serve the page only to a Host on the allow-list (DNS rebinding) and, when the app has a token, to a
    visitor whose address carried it once (``?token=...``); anyone else gets one line and nothing more."""
    hosts, token = access.configured()
    host = st.context.headers.get("Host")
    if hosts is not None and not access.host_allowed(host, hosts):
        log.warning("refused a request for Host %r (allowed: %s)", host, ", ".join(hosts))
        st.error(f"This app does not answer for the host name {access.host_name(host or '')!r}: open it at "
                 f"http://localhost (or a name given to `vaelab app --allow-host`).")
        st.stop()
    if token and not st.session_state.get("vaelab-token"):
        if not access.token_ok(st.query_params.get("token"), token):
            st.error("This app needs its token: open the address `vaelab app` printed (…/?token=...).")
            st.stop()
        st.session_state["vaelab-token"] = True
