"""End to end: `vaelab app` serves the runs of ``app_runs`` and headless Chromium (Debian's, driven by Playwright)
opens every page, moves a traversal slider, and trains a run from the Train page.

Screenshots go to the test's folder (and to $VAELAB_SCREENSHOTS when set). Without Chromium the test is skipped,
except under CI (CI=true), where .ci/run installs it and its absence is a failure."""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM and os.environ.get("CI") != "true":
    pytest.skip("no chromium here (apt-get install chromium); CI installs it", allow_module_level=True)
pytest.importorskip("streamlit")
sync_api = pytest.importorskip("playwright.sync_api")

# As root in a container, with this machine's closed network: no sandbox, no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
PAGES = {"": "vaelab runs", "train": "Train", "explore?run=vae&view=reconstructions": "Explore",
         "explore?run=vae&view=traversal": "Explore",
         "compare": "Compare", "vq?run=vq": "VQ-VAE", "disentanglement?run=sprites": "Disentanglement",
         "arithmetic?run=vae": "Latent arithmetic",
         "beta?study=betas": "β study", "sweep": "Sweep", "anomaly?run=vae": "Anomaly detection",
         "imputation?run=vae": "Imputation"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(app_runs, tmp_path):
    """`vaelab app` on a free port, over a copy of the app runs (the Train page adds one); yields its URL."""
    runs = tmp_path / "runs"
    shutil.copytree(app_runs, runs, symlinks=True)
    port = free_port()
    log = open(tmp_path / "app.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "app", "--runs", str(runs), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the app did not start: {(tmp_path / 'app.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, runs
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shoot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("VAELAB_SCREENSHOTS"):
        Path(os.environ["VAELAB_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["VAELAB_SCREENSHOTS"]) / path.name)


def settle(page) -> None:
    """Wait until the page's script has finished running (Streamlit shows a stop control while it runs)."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget] button')", timeout=120_000)
    page.wait_for_timeout(500)


def test_every_page_opens_and_a_traversal_slider_changes_the_image(app, browser, tmp_path):
    url, _ = app
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    for path, title in PAGES.items():
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
        settle(page)
        assert page.locator("[data-testid=stException]").count() == 0, path
        assert page.get_by_text("Page not found").count() == 0, path
        if path.startswith("beta"):  # the study's runs side by side: the labelled traversal grid, rate-distortion
            page.get_by_role("heading", name="Side by side").wait_for(timeout=120_000)
            assert page.locator("[data-testid=stImage] img").count() >= 2
            assert page.get_by_text("trained and evaluated").count() == 2
            page.locator("[data-testid=stImage]").first.scroll_into_view_if_needed()
            shoot(page, tmp_path, "beta-grid")
        pictures_readable(page, path)
        shoot(page, tmp_path, re.sub(r"\W+", "-", path) or "runs")

    page.goto(f"{url}/explore?run=vae&view=traversal")
    decoded = page.locator("[data-testid=stImage]").filter(has_text="decoded from the sliders").locator("img")
    decoded.wait_for(timeout=120_000)
    settle(page)
    before = decoded.get_attribute("src")
    slider = page.get_by_role("slider").nth(1)  # the first latent dimension (0 is "dimensions")
    value = float(slider.get_attribute("aria-valuetext"))
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    deadline = time.time() + 60
    while decoded.get_attribute("src") == before and time.time() < deadline:
        page.wait_for_timeout(250)
    settle(page)
    assert float(slider.get_attribute("aria-valuetext")) == pytest.approx(value + 0.5)
    assert decoded.get_attribute("src") != before
    shoot(page, tmp_path, "explore-moved")
    image = decoded.bounding_box()  # large, and beside its sliders
    sliders = [page.get_by_role("slider").nth(i).bounding_box() for i in range(1, page.get_by_role("slider").count())]
    assert image["width"] >= 280 and image["height"] >= 280
    assert image["x"] >= max(s["x"] + s["width"] for s in sliders)  # to their right
    assert image["y"] < sliders[-1]["y"] and image["y"] + image["height"] > sliders[0]["y"]  # at their height


def pictures_readable(page, path: str) -> None:
    """Figures and grids are drawn at the width they are shown (figures at 100 dpi with text >= 8 pt, grid labels
    13 px: >= 10 px on screen), not scaled down by the browser, and each can be downloaded."""
    sizes = page.locator("[data-testid=stImage] img").evaluate_all(
        "imgs => imgs.filter(i => i.checkVisibility()).map(i => [i.naturalWidth, i.getBoundingClientRect().width])")
    for natural, shown in sizes:
        assert shown >= 0.9 * natural, (path, natural, shown)
    assert page.locator("[data-testid=stDownloadButton]").count() >= len(sizes), path


def panel_samples(page, name: str) -> list:
    """The Train page's jobs panel sampled every 50 ms for 5 s (several refreshes): whether the job's heading is
    the element first seen (not a new one), how many Stop buttons a visitor sees, whether the heading is faded."""
    page.get_by_role("heading", name=name).first.evaluate("h => h.dataset.seen = 'yes'")
    return page.evaluate("""name => new Promise(done => {
        const out = [];
        const timer = setInterval(() => {
            const h = [...document.querySelectorAll('h3')].find(e => e.textContent.trim().startsWith(name));
            const stops = [...document.querySelectorAll('button')].filter(b => b.textContent.trim() === 'Stop' &&
                b.checkVisibility({opacityProperty: true, visibilityProperty: true}));
            const faded = h && getComputedStyle(h.closest('[data-testid=stElementContainer]')).opacity !== '1';
            out.push([h ? (h.dataset.seen || 'new') : 'none', stops.length, faded ? 'faded' : 'clear']);
            if (out.length >= 100) { clearInterval(timer); done(out); }
        }, 50);
    })""", name)


def test_train_page_trains_and_stops_a_run_that_survives_a_reload(app, browser, tmp_path):
    url, runs = app
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/train")
    page.get_by_role("heading", name="Train").first.wait_for(timeout=120_000)
    settle(page)
    page.locator("[data-testid=stSelectbox]").filter(has_text="dataset").click()
    page.get_by_role("option", name="digits", exact=True).click()
    settle(page)
    epochs = page.get_by_role("spinbutton", name="epochs")
    epochs.fill("10000")
    epochs.press("Enter")
    name = page.get_by_role("textbox", name="run name")
    name.fill("from-the-browser")
    name.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("started training from-the-browser").wait_for(timeout=60_000)
    page.get_by_text("running: step").wait_for(timeout=120_000)
    samples = panel_samples(page, "from-the-browser")  # one Stop, the panel never blinks nor is replaced
    assert all(s == ["yes", 1, "clear"] for s in samples), [s for s in samples if s != ["yes", 1, "clear"]][:5]
    shoot(page, tmp_path, "train-running")
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped: step").wait_for(timeout=120_000)
    assert page.get_by_role("button", name="Stop").count() == 0 and page.get_by_role("button", name="Resume")

    page.reload()  # the job's state lives in the run directory, not in the page
    page.get_by_text("stopped: step").wait_for(timeout=120_000)
    assert (runs / "from-the-browser" / "checkpoints" / "best.safetensors").exists()
    assert (runs / "from-the-browser" / "jobs" / "train.json").exists()


def handshake(port: int, host: str) -> int:
    """The status of a WebSocket handshake on the app's stream with this Host header (and an Origin to match)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/_stcore/stream", headers={
        "Host": f"{host}:{port}", "Origin": f"http://{host}:{port}", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_host_name_not_on_the_allow_list_is_refused(app, tmp_path):
    """DNS rebinding: a page on evil.example, its name pointed at 127.0.0.1, sends Host and Origin evil.example."""
    url, _ = app
    port = int(url.rsplit(":", 1)[1])
    assert handshake(port, "localhost") == 101
    assert handshake(port, "evil.example") == 403
    assert "answers Host" in (tmp_path / "app.log").read_text()


def test_a_rebound_host_name_gets_no_page_in_the_browser(app, tmp_path):
    url, _ = app
    port = url.rsplit(":", 1)[1]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS,
                                                                "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        page = b.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"http://evil.example:{port}/")
        page.wait_for_timeout(5000)
        assert page.get_by_role("heading", name="vaelab runs").count() == 0
        shoot(page, tmp_path, "rebound-host-refused")
        page.goto(url)
        page.get_by_role("heading", name="vaelab runs").first.wait_for(timeout=120_000)
        b.close()


def test_the_explore_view_radio_takes_every_click(app, browser):
    url, _ = app
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{url}/explore?run=vae&view=samples")
    page.get_by_role("heading", name="Explore").first.wait_for(timeout=120_000)
    settle(page)
    views = page.locator("[data-testid=stRadio]").first
    for view in ("reconstructions", "samples", "interpolation", "reconstructions"):
        views.get_by_text(view, exact=True).click()
        settle(page)
        assert views.get_by_role("radio", name=view).is_checked(), view

