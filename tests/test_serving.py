"""How the shipped app is exposed: loopback only, foreign Host headers refused, no Deploy button.

The server is started with the repository's own .streamlit/config.toml and no address flag, as
`streamlit run app.py` would be by a person, so these tests check what is shipped.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
import websockets
from websockets.sync.client import connect

from tests.e2e.conftest import served_app

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".streamlit" / "config.toml"


def test_shipped_config_binds_loopback_and_hides_the_deploy_button():
    cfg = tomllib.loads(CONFIG.read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert set(cfg["server"]["allowedHosts"]) == {"localhost", "127.0.0.1"}
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["client"]["toolbarMode"] == "viewer"


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with served_app(tmp_path_factory.mktemp("serving"), as_shipped=True) as url:
        yield int(url.rsplit(":", 1)[1])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of sockets listening on ``port``."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, state = fields[1], fields[3]
            if state == "0A" and int(addr.rsplit(":", 1)[1], 16) == port:   # 0A: LISTEN
                out.add(addr.rsplit(":", 1)[0])
    return out


def test_the_app_listens_on_loopback_only(shipped_server: int):
    # 0100007F is 127.0.0.1; 0.0.0.0 would be 00000000, every IPv6 interface 32 zeros.
    assert _listening_addresses(shipped_server) == {"0100007F"}


def _websocket(port: int, host: str) -> str:
    """Open the app's WebSocket as a browser on ``host`` would (its Host and Origin headers); the
    sync client, because a test before this one may have left an event loop running."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with connect(f"ws://{host}:{port}/_stcore/stream", sock=sock, origin=f"http://{host}:{port}",
                     subprotocols=["streamlit"], open_timeout=10):
            return "accepted"
    except websockets.InvalidStatus as e:
        return f"refused {e.response.status_code}"
    finally:
        sock.close()


def test_a_websocket_naming_another_host_is_refused(shipped_server: int):
    # The DNS-rebinding shape: the browser thinks it talks to evil.example, and sends its Origin.
    assert _websocket(shipped_server, "evil.example") == "refused 403"
    assert _websocket(shipped_server, "localhost") == "accepted"
    assert _websocket(shipped_server, "127.0.0.1") == "accepted"
