"""Real-browser fixtures: the app as a subprocess on a free port, Debian's chromium via Playwright.

Never `playwright install` (no download here; see OFFLINE.md): Playwright drives /usr/bin/chromium.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served app's workspace (and allowed root): tests may read its database directly."""
    return tmp_path_factory.mktemp("clusterlens-home")


@contextmanager
def served_app(home: Path, *, as_shipped: bool = False) -> Iterator[str]:
    """`streamlit run app.py` as a fresh server process on a free port, workspace ``home``;
    ``as_shipped``: with no address flag, so the repository's .streamlit/config.toml decides."""
    port = _free_port()
    env = {**os.environ, "CLUSTERLENS_HOME": str(home), "CLUSTERLENS_ALLOWED_ROOTS": str(home),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         *([] if as_shipped else ["--server.address", "127.0.0.1"]), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; log:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def app_url(app_home: Path) -> Iterator[str]:
    with served_app(app_home) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install it with `sudo apt-get install -y chromium` "
                    "(never `playwright install`; see shared/OFFLINE.md)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url: str):  # noqa: ANN001, ANN201 - playwright types are optional here
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    yield pg
    try:   # what the page showed when the test ended (kept with the other artifacts)
        pg.screenshot(path=str(ARTIFACTS / "last-page.png"), full_page=True)
    finally:
        ctx.close()
