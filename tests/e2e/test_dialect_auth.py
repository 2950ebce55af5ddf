"""Credentials on every dialect's door (issue 16, items 1 and 6), over real sockets.

LangBot pipelines are private unless public (gateway token or the pipeline's
key otherwise), the MyAgent port asks for the gateway token when the gateway
has one, every socket admitted without a credential holds one of its IP's
pre-auth slots, and one auth limiter counts guesses on every route.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from ..conftest import GatewayProc, RawClient
from ._util import free_port, gateway_cli

TOKEN = "edge-token"


def pipelines_cli(data_dir: Path, *args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", "pipelines", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.split()


def lb_url(gw: GatewayProc, pipeline: str = "default", token: str | None = None) -> str:
    url = f"{gw.url}/api/v1/pipelines/{pipeline}/ws/connect?session_type=person"
    return url + (f"&token={token}" if token is not None else "")


async def recv(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        data: dict[str, Any] = json.loads(await ws.recv())
        return data


async def closed(ws: ClientConnection, timeout: float = 10) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: (code, reason, frames seen on the way)."""
    frames = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return exc.rcvd.code, exc.rcvd.reason, frames
    raise AssertionError("unreachable")


async def refused(url: str, **kw: Any) -> tuple[int, list[dict[str, Any]]]:
    async with websockets.connect(url, **kw) as ws:
        code, _reason, frames = await closed(ws)
        return code, frames


async def lb_connected(url: str, **kw: Any) -> None:
    async with websockets.connect(url, **kw) as ws:
        assert (await recv(ws))["type"] == "connected"


# -- LangBot: public, key or gateway token -------------------------------------------------


async def test_private_pipelines_need_the_gateway_token_or_their_key(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway("--token", TOKEN)
    team, team_key = pipelines_cli(gw.data_dir, "create", "--name", "team")
    other, other_key = pipelines_cli(gw.data_dir, "create", "--name", "other")
    (public,) = pipelines_cli(gw.data_dir, "create", "--name", "open", "--public")

    # The default pipeline of a gateway with a token is not public: no credential, no chat.
    code, frames = await refused(lb_url(gw))
    assert code == 4401 and frames[0]["type"] == "error" and frames[0]["data"]["code"] == "unauthorized"
    # The gateway token opens every pipeline, as ?token= or as a Bearer header.
    await lb_connected(lb_url(gw, token=TOKEN))
    await lb_connected(lb_url(gw, team), additional_headers={"Authorization": f"Bearer {TOKEN}"})
    # A pipeline key opens its own pipeline, and only that one.
    await lb_connected(lb_url(gw, team, team_key))
    assert (await refused(lb_url(gw, team, other_key)))[0] == 4401
    assert (await refused(lb_url(gw, other)))[0] == 4401
    await lb_connected(lb_url(gw, other, other_key))
    # A public pipeline takes anyone, but a wrong credential is still a wrong credential.
    await lb_connected(lb_url(gw, public))
    assert (await refused(lb_url(gw, public, "guess")))[0] == 4401
    # Keys are shown once: the database holds only their SHA-256.
    db = (gw.data_dir / "agenthub.db").read_bytes()
    assert team_key.encode() not in db and other_key.encode() not in db


async def test_default_pipeline_is_public_only_on_a_gateway_without_auth(make_gateway: Any) -> None:
    open_gw: GatewayProc = make_gateway()  # no token: loopback only, the newcomer's gateway
    await lb_connected(lb_url(open_gw))
    team, key = pipelines_cli(open_gw.data_dir, "create", "--name", "team")
    assert (await refused(lb_url(open_gw, team)))[0] == 4401  # created pipelines stay private
    await lb_connected(lb_url(open_gw, team, key))
    # The operator decides otherwise, both ways, with security.langbot_default_public.
    said_yes: GatewayProc = make_gateway("--token", TOKEN, config={"security": {"langbot_default_public": True}})
    await lb_connected(lb_url(said_yes))
    said_no: GatewayProc = make_gateway(config={"security": {"langbot_default_public": False}})
    assert (await refused(lb_url(said_no)))[0] == 4401


# -- sockets admitted without a credential: the native port's per-IP cap -------------------


@asynccontextmanager
async def _anonymous(kind: str, url: str) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(url) as ws:
        if kind != "agentbox":  # LangBot says "connected", MyAgent "system.connected"; AgentBox waits for auth
            await recv(ws)
        yield ws


@pytest.mark.parametrize("kind", ["langbot", "agentbox", "myagent"])
async def test_unauthenticated_dialect_sockets_are_capped_per_ip(make_gateway: Any, kind: str) -> None:
    ab_port, ma_port = free_port(), free_port()
    gw: GatewayProc = make_gateway(
        "--agentbox-port",
        str(ab_port),
        "--myagent-port",
        str(ma_port),
        "--dev",
        config={"security": {"max_preauth_per_ip": 3}},
    )
    url = {
        "langbot": lb_url(gw),
        "agentbox": f"ws://127.0.0.1:{ab_port}/api/v1/gateway/ws",
        "myagent": f"ws://127.0.0.1:{ma_port}/",
    }[kind]
    async with _anonymous(kind, url), _anonymous(kind, url), _anonymous(kind, url) as third:
        async with websockets.connect(url) as fourth:
            code, reason, frames = await closed(fourth)
        if kind == "agentbox":  # as the native port answers: 1008 before any frame
            assert (code, reason, frames) == (1008, "too many unauthenticated connections", [])
        elif kind == "langbot":
            assert code == 4429 and frames[-1]["data"]["code"] == "too_many_connections"
        else:
            assert code == 4429 and frames[-1]["event"] == "system.error"
            assert frames[-1]["metadata"]["code"] == "too_many_connections"
        # The native port shares the count: its fourth unauthenticated socket is refused too.
        async with websockets.connect(gw.url) as native:
            code, reason, frames = await closed(native)
            assert (code, reason, frames) == (1008, "too many unauthenticated connections", [])
        await third.close()
    async with _anonymous(kind, url):  # slots come back when sockets close
        pass


# -- MyAgent: the seed has no auth; agenthub asks for the gateway token when it has one ----


async def test_myagent_port_requires_the_gateway_token_when_the_gateway_has_one(make_gateway: Any) -> None:
    port = free_port()
    gw: GatewayProc = make_gateway("--token", TOKEN, "--myagent-port", str(port), "--dev")
    base = f"ws://127.0.0.1:{port}/"
    code, frames = await refused(base)
    assert code == 4401 and frames[0]["event"] == "system.error" and frames[0]["metadata"]["code"] == "unauthorized"
    assert (await refused(base + "?token=wrong"))[0] == 4401
    for kw in (
        {"uri": base + f"?token={TOKEN}"},
        {"uri": base, "additional_headers": {"Authorization": f"Bearer {TOKEN}"}},
    ):
        async with websockets.connect(**kw) as ws:
            assert (await recv(ws))["event"] == "system.connected"
            await ws.send(json.dumps({"event": "user.create_session", "content": "create_session"}))
            assert (await recv(ws))["event"] == "agent.session_created"
    assert gw.proc is not None and gw.proc.poll() is None


def test_myagent_port_refuses_to_start_without_a_secret_or_on_a_public_host_without_a_token(
    tmp_path: Path, make_gateway: Any
) -> None:
    no_secret = gateway_cli(tmp_path, "--myagent-port", str(free_port()))
    assert no_secret.returncode == 2
    assert "refusing to serve MyAgent without a fixed state key" in no_secret.stderr and "--dev" in no_secret.stderr
    cfg = tmp_path / "public.json"
    cfg.write_text(json.dumps({"myagent": {"host": "0.0.0.0"}}))
    exposed = gateway_cli(tmp_path, "--myagent-port", str(free_port()), "--dev", "--config", str(cfg))
    assert exposed.returncode == 2 and "refusing to bind 0.0.0.0 without a token" in exposed.stderr
    # With --dev (and on loopback) it starts: the fixture waits for the ready line.
    gw: GatewayProc = make_gateway("--myagent-port", str(free_port()), "--dev")
    assert "ready on ws://" in gw.output()


# -- one auth limiter for every credential check ------------------------------------------

ROUTES = ["native", "langbot-rest", "langbot-ws", "agentbox-rest", "agentbox-ws", "myagent-ws"]


class Routes:
    """One guess through each route, answered as that route answers: 'wrong' or 'limited'."""

    def __init__(self, gw: GatewayProc, ab_port: int, ma_port: int) -> None:
        self.gw = gw
        self.ab = f"127.0.0.1:{ab_port}"
        self.ma = f"127.0.0.1:{ma_port}"

    async def guess(self, route: str, secret: str) -> str:
        return await getattr(self, route.replace("-", "_"))(secret)

    async def native(self, secret: str) -> str:
        async with RawClient.open(self.gw.url) as c:
            res = await c.connect(auth={"token": secret})
        if res["ok"]:
            return "ok"
        code = res["error"]["details"]["code"]
        return "limited" if code == "AUTH_RATE_LIMITED" else "wrong"

    async def langbot_rest(self, secret: str) -> str:
        async with httpx.AsyncClient() as http:
            res = await http.get(
                f"{self.gw.http}/api/v1/pipelines/default/ws/connections", headers={"Authorization": f"Bearer {secret}"}
            )
        if res.status_code == 429:
            assert int(res.headers["Retry-After"]) >= 1 and res.json()["retry_after_ms"] > 0
            return "limited"
        return {200: "ok", 401: "wrong"}[res.status_code]

    async def langbot_ws(self, secret: str) -> str:
        async with websockets.connect(lb_url(self.gw, token=secret)) as ws:
            first = await recv(ws)
            if first["type"] == "connected":
                return "ok"
            code, _reason, _frames = await closed(ws)
        assert first["type"] == "error"
        if first["data"]["code"] == "rate_limited":
            assert code == 4429 and first["data"]["retry_after_ms"] > 0
            return "limited"
        assert code == 4401 and first["data"]["code"] == "unauthorized"
        return "wrong"

    async def agentbox_rest(self, secret: str) -> str:
        async with httpx.AsyncClient() as http:
            res = await http.post(
                f"http://{self.ab}/api/v1/tasks", headers={"Authorization": f"Bearer {secret}"}, json={"prompt": "hi"}
            )
        if res.status_code == 429:
            assert int(res.headers["Retry-After"]) >= 1 and res.json()["code"] == "rate_limited"
            return "limited"
        return {201: "ok", 401: "wrong"}[res.status_code]

    async def agentbox_ws(self, secret: str) -> str:
        async with websockets.connect(f"ws://{self.ab}/api/v1/gateway/ws") as ws:
            await ws.send(json.dumps({"id": "a1", "type": "auth", "payload": {"token": secret}}))
            reply = await recv(ws)
            if reply["type"] == "auth.result":
                return "ok"
            if reply["payload"]["code"] == "rate_limited":
                assert reply["payload"]["retry_after_ms"] > 0 and (await closed(ws))[0] == 1008
                return "limited"
            assert reply["payload"]["code"] == "auth_failed"
            return "wrong"

    async def myagent_ws(self, secret: str) -> str:
        async with websockets.connect(f"ws://{self.ma}/?token={secret}") as ws:
            first = await recv(ws)
            if first["event"] == "system.connected":
                return "ok"
            code, _reason, _frames = await closed(ws)
        if first["metadata"]["code"] == "rate_limited":
            assert code == 4429
            return "limited"
        assert code == 4401 and first["metadata"]["code"] == "unauthorized"
        return "wrong"


@pytest.mark.parametrize("route", ROUTES)
async def test_guesses_on_any_route_lock_the_ip_out_of_every_route(make_gateway: Any, route: str) -> None:
    ab_port, ma_port = free_port(), free_port()
    gw: GatewayProc = make_gateway(
        "--token",
        TOKEN,
        "--agentbox-port",
        str(ab_port),
        "--myagent-port",
        str(ma_port),
        "--dev",
        config={"security": {"auth_max_failures": 3, "auth_lockout_ms": 60_000}},
    )
    routes = Routes(gw, ab_port, ma_port)
    wrong = "ab_000000000000_not-a-real-key" if route.startswith("agentbox") else "not-the-token"
    assert [await routes.guess(route, wrong) for _ in range(3)] == ["wrong", "wrong", "limited"]
    # Locked out everywhere, even with the right secret: the native port and LangBot's REST share the count.
    assert await routes.guess("native", TOKEN) == "limited"
    assert await routes.guess("langbot-rest", TOKEN) == "limited"
    assert await routes.guess(route, TOKEN if not route.startswith("agentbox") else wrong) == "limited"
