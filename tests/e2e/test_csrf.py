"""Cross-site requests against the default no-token gateway (issue 16, item 8), over real sockets.

A page on another site can make the user's browser ``POST`` to
``http://127.0.0.1:18789`` with ``Content-Type: text/plain`` and no preflight.
Every state-changing route refuses a foreign ``Origin`` (403) and a body not
declared JSON (415); CORS is answered only for allowed origins, by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from ..conftest import GatewayProc
from ._util import free_port, gateway_cli

EVIL = "http://evil.example"
PLAIN = {"Content-Type": "text/plain"}


async def _say(gw: GatewayProc, text: str) -> None:
    """One LangBot turn on the default pipeline (public on this no-token gateway), to its final chunk."""
    async with websockets.connect(f"{gw.url}/api/v1/pipelines/default/ws/connect?session_type=person") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "message": [{"type": "Plain", "text": text}]}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "response" and frame["data"]["is_final"]:
                return


async def test_foreign_origin_and_non_json_bodies_never_reach_a_state_changing_route(make_gateway: Any) -> None:
    ab = free_port()
    gw: GatewayProc = make_gateway("--agentbox-port", str(ab))
    own = f"http://127.0.0.1:{gw.port}"
    base = f"{gw.http}/api/v1/pipelines/default/ws"
    await _say(gw, "remember me")
    async with httpx.AsyncClient() as http:
        # The reported attack: a foreign page's text/plain POST wiped the transcript. Now 403, and it is intact.
        for path, body in (("/reset/person", b""), ("/broadcast", b'{"message": "pwned"}')):
            res = await http.post(base + path, headers={"Origin": EVIL, **PLAIN}, content=body)
            assert res.status_code == 403, (path, res.status_code)
        history = (await http.get(f"{base}/messages/person")).json()["messages"]
        assert any("remember me" in m["content"] for m in history)
        # Every dialect's REST, on every listener: the check runs before the route (and before any key check).
        for url in (f"{gw.http}/api/v1/tasks", f"http://127.0.0.1:{ab}/api/v1/tasks"):
            res = await http.post(
                url, headers={"Origin": EVIL, "Content-Type": "application/json"}, json={"prompt": "x"}
            )
            assert res.status_code == 403
        # Not JSON: 415, whatever the origin (own page, no Origin at all); JSON passes.
        for headers in ({"Origin": own, **PLAIN}, PLAIN, {"Content-Type": "application/x-www-form-urlencoded"}):
            res = await http.post(f"{base}/broadcast", headers=headers, content=b'{"message": "m"}')
            assert res.status_code == 415, headers
        assert (await http.post(f"{base}/broadcast", content=b'{"message": "m"}')).status_code == 415  # no type
        ok = await http.post(f"{base}/broadcast", headers={"Origin": own}, json={"message": "hello"})
        assert ok.status_code == 200 and ok.json()["ok"] is True
        assert ok.headers["Access-Control-Allow-Origin"] == own and ok.headers["Vary"] == "Origin"
        # A bodyless POST from the gateway's own page (or a CLI) is still fine.
        assert (await http.post(f"{base}/reset/person", headers={"Origin": own})).json() == {"ok": True}
        # A foreign page may send a GET, but gets no CORS header, so its script cannot read the answer.
        read = await http.get(f"{base}/messages/person", headers={"Origin": EVIL})
        assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


async def test_cors_preflight_is_answered_only_for_allowed_origins(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway("--allowed-origin", "https://app.example")
    url = f"{gw.http}/api/v1/pipelines/default/ws/broadcast"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    async with httpx.AsyncClient() as http:
        res = await http.options(url, headers={"Origin": "https://app.example", **ask})
        assert res.status_code == 204
        assert res.headers["Access-Control-Allow-Origin"] == "https://app.example"  # named, never "*"
        assert res.headers["Access-Control-Allow-Methods"] == "POST"
        assert res.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
        assert res.headers["Vary"] == "Origin" and int(res.headers["Access-Control-Max-Age"]) > 0
        assert "Access-Control-Allow-Credentials" not in res.headers
        for origin in (EVIL, f"http://127.0.0.1:{gw.port}"):  # --allowed-origin replaces the default list
            res = await http.options(url, headers={"Origin": origin, **ask})
            assert res.status_code == 403 and "Access-Control-Allow-Origin" not in res.headers
        res = await http.options(f"{gw.http}/no/such/route", headers={"Origin": "https://app.example", **ask})
        assert res.status_code == 404


def test_a_wildcard_origin_is_refused_at_start(tmp_path: Path) -> None:
    out = gateway_cli(tmp_path, "--allowed-origin", "*")
    assert out.returncode == 2 and "security.allowed_origins" in out.stderr and "no wildcards" in out.stderr
