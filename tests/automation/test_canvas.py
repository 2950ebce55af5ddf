"""The canvas host on its own port: files served, changes pushed over the live-reload socket, the door.

Also the ``canvas.*`` node commands: they go to the node that declares them,
pointing it at a page of this host.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from ..conftest import GatewayProc, RawClient
from ..e2e.test_nodes import NODE_CLIENT, invoke_request

TOKEN = "canvas-gateway-token"
LISTENER = re.compile(r"agenthub canvas listener on port (\d+)")


def canvas_port(gw: GatewayProc) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = LISTENER.search(gw.output())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no canvas listener line:\n" + gw.output())


@pytest.fixture
def canvas(make_gateway: Any, tmp_path: Path) -> tuple[GatewayProc, str, Path]:
    root = tmp_path / "canvas"
    root.mkdir()
    (root / "index.html").write_text("<html><body><h1>v1</h1></body></html>")
    (root / "app.css").write_text("h1 { color: teal }")
    gw: GatewayProc = make_gateway("--token", TOKEN, config={"canvas": {"enabled": True, "port": 0, "root": str(root)}})
    return gw, f"127.0.0.1:{canvas_port(gw)}", root


async def test_pages_are_served_with_the_token_and_refused_without(canvas: tuple[GatewayProc, str, Path]) -> None:
    _, host, _ = canvas
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP host
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        for url in (f"http://{host}/", f"http://{host}/index.html?token=wrong", f"http://{host}/app.css"):
            async with http.get(url) as res:
                assert res.status == 401, url
        async with http.get(f"http://{host}/?token={TOKEN}") as res:
            assert res.status == 200 and res.content_type == "text/html"
            page = await res.text()
            assert "<h1>v1</h1>" in page
            assert page.index('<script src="/__agenthub__/live-reload.js"></script>') < page.index("</body>")
            assert "agenthub_canvas" in res.cookies and TOKEN not in res.headers["Set-Cookie"]
        # The cookie now carries the page's own requests: its stylesheet and the live-reload script.
        async with http.get(f"http://{host}/app.css") as res:
            assert res.status == 200 and "teal" in await res.text()
        async with http.get(f"http://{host}/__agenthub__/live-reload.js") as res:
            assert res.status == 200 and "/__agenthub__/ws" in await res.text()
        for missing in ("/nope.html", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd"):
            async with http.get(f"http://{host}{missing}") as res:
                assert res.status == 404, missing


async def test_a_file_change_is_pushed_to_open_pages(canvas: tuple[GatewayProc, str, Path]) -> None:
    _, host, root = canvas
    async with websockets.connect(f"ws://{host}/__agenthub__/ws?token={TOKEN}") as ws:
        assert json.loads(await ws.recv()) == {"type": "hello"}
        # The watcher may still be starting: change the file until a push arrives (generous ceiling).
        async with asyncio.timeout(30):
            n = 1
            while True:
                n += 1
                (root / "index.html").write_text(f"<html><body><h1>v{n}</h1></body></html>")
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    break
                except TimeoutError:
                    continue
        assert message["type"] == "reload" and "/index.html" in message["paths"]


async def test_the_live_reload_socket_needs_the_token_and_the_own_origin(canvas: tuple[GatewayProc, str, Path]) -> None:
    _, host, _ = canvas
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"ws://{host}/__agenthub__/ws"):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as foreign:
        async with websockets.connect(f"ws://{host}/__agenthub__/ws?token={TOKEN}", origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert foreign.value.response.status_code == 403
    own = f"http://{host}"
    async with websockets.connect(f"ws://{host}/__agenthub__/ws?token={TOKEN}", origin=own) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "hello"


async def test_canvas_commands_go_to_the_node_that_declares_them(canvas: tuple[GatewayProc, str, Path]) -> None:
    gw, host, _ = canvas
    async with RawClient.open(gw.url) as node, RawClient.open(gw.url) as op:
        commands = ["canvas.present", "canvas.navigate"]
        res = await node.connect(role="node", scopes=[], client=NODE_CLIENT, commands=commands, auth={"token": TOKEN})
        assert res["ok"], res
        assert (await op.connect(auth={"token": TOKEN}))["ok"]
        rid = await op.request(
            "node.invoke",
            {
                "nodeId": "node-1",
                "command": "canvas.navigate",
                "params": {"url": f"http://{host}/index.html"},
                "idempotencyKey": "nav-1",
            },
        )
        req = await invoke_request(node)
        assert req["command"] == "canvas.navigate" and json.loads(req["paramsJSON"])["url"].endswith("/index.html")
        await node.call("node.invoke.result", {"id": req["id"], "ok": True, "payload": {"navigated": True}})
        assert (await op.response(rid))["payload"]["payload"] == {"navigated": True}
        hidden = await op.call(
            "node.invoke", {"nodeId": "node-1", "command": "canvas.hide", "idempotencyKey": "hide-1"}
        )
        assert hidden["error"]["details"]["code"] == "COMMAND_NOT_DECLARED"


def test_the_canvas_needs_a_token_off_loopback(make_gateway: Any) -> None:
    with pytest.raises(RuntimeError, match="refusing to serve the canvas"):
        make_gateway(config={"canvas": {"enabled": True, "port": 0, "host": "0.0.0.0"}})
