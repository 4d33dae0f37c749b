"""Who may use the explorer app: the Host names it answers (against DNS rebinding) and the token it asks for when
it is served beyond this machine. `vaelab app` sets them (:func:`vaelab.cli.cmd_app`), Streamlit refuses the
WebSocket of another Host (``server.allowedHosts``) and :func:`vaelab.app.ui.guard` checks both on each page.

A DNS-rebinding page on ``evil.example`` points its name at 127.0.0.1: the browser then sends
``Host: evil.example:8501`` (and an ``Origin`` to match), so only the Host name tells it from a real visit."""
from __future__ import annotations

import hmac
import os
import socket

RUNS_ENV = "VAELAB_APP_RUNS"  # the runs directory, handed from `vaelab app` to the app's pages
MAX_JOBS_ENV = "VAELAB_APP_MAX_JOBS"  # at most this many app jobs at once (default: half the cores)
HOSTS_ENV = "VAELAB_APP_HOSTS"  # comma-separated Host names the app answers, handed from `vaelab app`
TOKEN_ENV = "VAELAB_APP_TOKEN"  # the token a visitor's URL must carry (?token=...), when set
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def host_name(header: str) -> str:
    """The name of a Host header, without its port: ``[::1]:8501`` -> ``::1``, ``Example.org:80`` ->
    ``example.org``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(bind: str, extra: list[str] = ()) -> list[str]:
    """The Host names to answer when serving on address ``bind``: the loopback names, ``bind`` itself, this
    machine's names when bound to every interface, and ``extra`` (``--allow-host``)."""
    names = [*LOOPBACK, *extra]
    if bind in ("0.0.0.0", "::", ""):
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(bind)
    return sorted({host_name(n) for n in names if n})


def host_allowed(header: str | None, allowed: list[str]) -> bool:
    return header is not None and host_name(header) in allowed


def token_ok(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def configured() -> tuple[list[str] | None, str]:
    """The allow-list (None: not served by `vaelab app`, e.g. under AppTest) and the token ("" for none)."""
    hosts = os.environ.get(HOSTS_ENV)
    return (hosts.split(",") if hosts else None), os.environ.get(TOKEN_ENV, "")
