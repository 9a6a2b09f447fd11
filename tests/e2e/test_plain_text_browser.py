"""What a person typed is shown as plain text: a cluster name written as a Markdown image makes no
browser fetch anything, and it shows literally (issue 25, item 5)."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli import main
from core.review import ReviewSession
from core.store import Store
from tests.e2e.conftest import served_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def beacon() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server that records every path asked of it."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()


def test_a_cluster_name_in_markdown_is_shown_literally_and_fetches_nothing(
        browser, beacon, tmp_path: Path) -> None:  # noqa: ANN001
    port, hits = beacon
    home = tmp_path / "home"
    assert main(["run", "--data", "digits", "--backbone", "pixels", "--reduce", "none", "--k", "10", "--map", "none",
                 "--workspace", str(home)]) == 0
    name = f"![b](http://127.0.0.1:{port}/beacon.png) :red[x] **y**"
    with Store(home) as store:
        run = store.runs()[-1]["id"]
        s = ReviewSession(store, run)
        s.rename(3, name, expected_version=s.version)

    with served_app(home) as url:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(90_000)
        try:
            page.goto(f"{url}/review?run={run}")
            page.get_by_role("tab", name="Undo and history").click()
            # The Undo button's label quotes the rename: the name, character for character.
            undo = page.get_by_role("button", name="Undo: renamed cluster_3")
            undo.wait_for()
            assert name in undo.inner_text()
            page.wait_for_timeout(1500)   # time for any image the page holds to be fetched
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert page.locator(f'img[src*="127.0.0.1:{port}"]').count() == 0
        finally:
            ctx.close()
    assert hits == []
