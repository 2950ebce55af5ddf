"""Who may open the MyAgent port (seed 003): browser origins in and out of ``--dev``, and ``wss://``.

The seed's quickstart is an HTML page a developer opens from disk (``Origin:
null``) or serves from another local port. Without ``--dev`` such pages are
foreign (HTTP 403 on the upgrade, as on every port); in ``--dev`` on loopback
the MyAgent port takes them, and the gateway says so at start.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest
import websockets

from agenthub.web.origin import is_loopback_host, local_page_origin

from ..client.test_tls import make_ca_and_leaf
from ..conftest import seed_text
from ._util import free_port

pytestmark = pytest.mark.timeout(90)

SEED = "003_73e93bbce01bfd89.txt"
DEV_LINE = "the MyAgent port also accepts browser pages opened from a file"
LOCAL_PAGES = ("null", "http://localhost:5500", "http://127.0.0.1:8000", "http://[::1]:3000")
FOREIGN_PAGES = ("http://evil.example", "https://localhost.evil.example", "http://192.0.2.7:8080")


async def _open(url: str, origin: str | None, **kw: Any) -> str:
    """``system.connected`` when the socket opens, else the HTTP status of the refused upgrade."""
    try:
        async with websockets.connect(url, origin=origin, **kw) as ws:  # type: ignore[arg-type]
            async with asyncio.timeout(10):
                return str(json.loads(await ws.recv())["event"])
    except websockets.InvalidStatus as exc:
        return str(exc.response.status_code)


async def test_dev_on_loopback_takes_pages_from_files_and_local_ports(make_gateway: Any) -> None:
    port = free_port()
    gw = make_gateway("--myagent-port", str(port), "--dev")
    url = f"ws://127.0.0.1:{port}/"
    for origin in LOCAL_PAGES:
        assert await _open(url, origin) == "system.connected", origin
    for origin in FOREIGN_PAGES:
        assert await _open(url, origin) == "403", origin
    assert await _open(url, None) == "system.connected"  # not a browser
    assert DEV_LINE in gw.output()
    # Only the MyAgent port: the main port's rule is unchanged by --dev.
    assert await _open(f"{gw.url}/api/v1/pipelines/default/ws/connect", "null") == "403"


async def test_without_dev_pages_from_files_and_other_ports_are_refused(make_gateway: Any) -> None:
    port = free_port()
    gw = make_gateway("--myagent-port", str(port), "--myagent-secret", "s3cret")
    url = f"ws://127.0.0.1:{port}/"
    for origin in (*LOCAL_PAGES, *FOREIGN_PAGES):
        assert await _open(url, origin) == "403", origin
    assert await _open(url, f"http://127.0.0.1:{gw.port}") == "system.connected"  # the gateway's own pages
    assert DEV_LINE not in gw.output()


def test_the_dev_allowance_is_for_loopback_pages_on_a_loopback_listener() -> None:
    assert all(local_page_origin(o) for o in LOCAL_PAGES)
    assert not any(local_page_origin(o) for o in (*FOREIGN_PAGES, "file://", "http://127.0.0.1:80/x", "ws://a"))
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost") and is_loopback_host("::1")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("192.0.2.7") and not is_loopback_host("")


async def test_tls_serves_wss_on_the_myagent_and_agentbox_ports(make_gateway: Any, tmp_path: Path) -> None:
    ca, chain, key, _ = make_ca_and_leaf(tmp_path)
    ma_port, ab_port = free_port(), free_port()
    gw = make_gateway(
        "--myagent-port", str(ma_port), "--dev", "--agentbox-port", str(ab_port),
        "--tls-cert", str(chain), "--tls-key", str(key),
    )  # fmt: skip
    trust = ssl.create_default_context(cafile=str(ca))
    assert await _open(f"wss://127.0.0.1:{ma_port}/", None, ssl=trust) == "system.connected"
    async with websockets.connect(f"wss://localhost:{ab_port}/api/v1/gateway/ws", ssl=trust) as ws:
        await ws.send(json.dumps({"id": "1", "type": "auth", "payload": {"token": "ab_000000000000_nope"}}))
        reply = json.loads(await ws.recv())
        assert reply["id"] == "1" and reply["payload"]["code"] == "auth_failed"
    with pytest.raises((websockets.InvalidMessage, websockets.InvalidHandshake, ConnectionError, EOFError)):
        await _open(f"ws://127.0.0.1:{ma_port}/", None)  # plain ws on a TLS port
    with pytest.raises(ssl.SSLCertVerificationError):
        await _open(f"wss://127.0.0.1:{ma_port}/", None, ssl=ssl.create_default_context())  # an unknown CA
    log = gw.output()
    assert f"myagent listening on wss://127.0.0.1:{ma_port}" in log
    assert f"agentbox listening on wss://127.0.0.1:{ab_port}" in log


# -- the seed's HTML page in Chromium ----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _seed_page(port: int) -> str:
    """The seed's quickstart page, its one URL pointed at the test's port (nothing else changed)."""
    seed = seed_text(SEED)
    page = seed[seed.index("<!DOCTYPE html>") : seed.index("</html>") + len("</html>")]
    assert page.count("ws://localhost:8080") == 1
    return page.replace("ws://localhost:8080", f"ws://127.0.0.1:{port}")


@pytest.mark.browser
@pytest.mark.parametrize("dev", [True, False])
def test_the_seed_page_opened_from_a_file(make_gateway: Any, tmp_path: Path, dev: bool) -> None:
    """Chromium opens the page from disk: in --dev it connects and creates a session, else the 403 stops it."""
    import playwright.sync_api as playwright_sync

    if not shutil.which(CHROMIUM):  # a failure, not a skip: `make test` installs it
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make {CHROMIUM}` (part of `make test`)", pytrace=False)
    port = free_port()
    make_gateway("--myagent-port", str(port), *(["--dev"] if dev else ["--myagent-secret", "s3cret"]))
    html = tmp_path / "myagent.html"
    html.write_text(_seed_page(port), encoding="utf-8")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            messages = page.locator("#messages")
            if dev:
                page.wait_for_function("document.getElementById('messages').textContent.includes('会话创建成功')")
                page.fill("#messageInput", "hello from a file")
                page.press("#messageInput", "Enter")
                page.wait_for_function("document.getElementById('messages').textContent.includes('demo agent')")
                assert "hello from a file" in messages.inner_text()
            else:
                page.wait_for_function("document.getElementById('messages').textContent.includes('聿恥已恖开')")
                text = messages.inner_text()
                assert "已聿恥到服务器" not in text and "会话创建成功" not in text
        finally:
            browser.close()
