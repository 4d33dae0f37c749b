"""The explorer's page-load time over a runs folder of N runs: `vaelab app` started afresh, then headless Chromium
(Debian's, via Playwright) opens the Runs page until its table is drawn and the script has finished.

    .venv/bin/python benchmarks/app_first_load.py [--runs 20] [--visits 5]

Prints JSON: ``first_load_s`` (the first visit after the server started: imports and run scanning included) and
``later_loads_s`` (fresh browser contexts on the warm server). The target is under 3 s for 20 runs."""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import emit, machine

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def make_runs(root: Path, n: int) -> None:
    """One tiny evaluated VAE on the 8x8 digits, copied to n run directories."""
    from vaelab.cli import main

    first = root / "run-00"
    assert main(["train", "--model", "vae", "--dataset", "digits", "--steps", "20", "--set", "model.hidden=[16]",
                 "--set", "train.progress=false", "--out", str(first)]) == 0
    assert main(["eval", str(first)]) == 0
    for i in range(1, n):
        shutil.copytree(first, root / f"run-{i:02d}")


def serve(root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "app", "--runs", str(root), "--port", str(port)],
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return server, url
        except OSError:
            if server.poll() is not None:
                raise SystemExit(log.read_text()[-2000:])
            time.sleep(0.2)


def visit(browser, url: str) -> float:
    """Seconds from navigation until the Runs table is drawn and the page's script has finished."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.locator("[data-testid=stDataFrame]").first.wait_for(timeout=300_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget] button')", timeout=300_000)
    seconds = time.perf_counter() - start
    context.close()
    return seconds


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--visits", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        make_runs(root, args.runs)
        server, url = serve(root, Path(tmp) / "app.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                first = visit(browser, url)
                later = [visit(browser, url) for _ in range(args.visits)]
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    emit({"benchmark": "app_first_load", "runs": args.runs, "first_load_s": round(first, 2),
          "later_loads_s": [round(t, 2) for t in later], "target_s": 3.0, **machine()})


if __name__ == "__main__":
    main()
