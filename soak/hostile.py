"""The hostile load: a child process (``python -m soak.hostile``) driven over JSON lines (``bench.control``).

It attacks from other loopback addresses than the honest clients, so the
per-IP limits it trips (lockouts, pre-auth caps) are its own:

- ``guess_ip`` presents wrong secrets on every route (native connect, LangBot
  socket and REST, AgentBox socket and REST, MyAgent, hooks), and
  unauthenticated junk that may count as failed guesses;
- ``hostile_ip`` holds *valid* credentials (read-only native scope, the AgentBox
  user mallory, the public LangBot pipeline, the hook token) and sends junk
  frames and bodies, messages built to burn CPU, more requests in flight than
  allowed, and tries to read alice's tasks;
- ``flood_ip`` opens more anonymous sockets than the per-IP cap allows;
- ``slow_ip`` trickles HTTP request heads (slowloris).

Every answer is classified; what must never happen is counted under a
``problem:`` key (an accepted guess, an "internal error" answer, a 5xx, another
user's data), with examples. Commands: ``start``, ``pause``, ``report``, ``quit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.protocol.errors import ErrorCode
from bench.control import emit, raise_nofile_limit, serve_commands

from . import junk
from .native import connect_params

__all__ = ["Hostile"]

CODES = {c.value for c in ErrorCode}
AGENTBOX_CODES = {
    "bad_request",
    "unknown_type",
    "unauthorized",
    "auth_failed",
    "rate_limited",
    "forbidden",
    "not_found",
}
NETWORK_ERRORS = (OSError, TimeoutError, EOFError, websockets.WebSocketException, httpx.HTTPError)
MAX_EXAMPLES = 10


class Hostile:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.host: str = cfg["host"]
        self.port: int = cfg["port"]
        self.ab_port: int = cfg["agentbox_port"]
        self.ma_port: int = cfg["myagent_port"]
        self.creds: dict[str, str] = cfg["creds"]
        self.guess_ip: str = cfg["guess_ip"]
        self.hostile_ip: str = cfg["hostile_ip"]
        self.flood_ip: str = cfg["flood_ip"]
        self.slow_ip: str = cfg["slow_ip"]
        self.targets = Path(cfg["targets"])
        self.rng = random.Random(f"{cfg['seed']}:hostile")
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.mallory_tasks: set[str] = set()

    # -- bookkeeping ----------------------------------------------------------------------
    def count(self, key: str, example: str | None = None) -> None:
        self.counts[key] += 1
        if example is not None:
            seen = self.examples.setdefault(key, [])
            if len(seen) < MAX_EXAMPLES:
                seen.append(example[:400])

    def problem(self, what: str, example: str) -> None:
        self.count(f"problem: {what}", example)

    def alice_tasks(self) -> list[str]:
        try:
            data = json.loads(self.targets.read_text())
        except (OSError, ValueError):
            return []
        return [str(t) for t in data.get("alice_tasks", [])][-50:]

    # -- commands -------------------------------------------------------------------------
    async def start(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if self.tasks:
            return {"ok": True, "loops": len(self.tasks)}  # already attacking
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("guess", self.guess),
            ("native pre-connect", self.native_preconnect),
            ("native junk", self.native_junk),
            ("native in-flight", self.native_inflight),
            ("native bait", self.native_bait),
            ("agentbox junk", self.agentbox_junk),
            ("myagent junk", self.myagent_junk),
            ("langbot junk", self.langbot_junk),
            ("http junk", self.http_junk),
            ("flood", self.flood),
            ("slowloris", self.slowloris),
        ]
        for name, body in loops:
            self.tasks.append(asyncio.get_running_loop().create_task(self._forever(name, body)))
        return {"ok": True, "loops": len(loops)}

    async def pause(self, cmd: dict[str, Any]) -> dict[str, Any]:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        return {"ok": True}

    async def report(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"counts": dict(self.counts), "examples": self.examples}

    async def _forever(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except NETWORK_ERRORS:
                self.count(f"{name}: connection failed (gateway down or socket cut)")
                await asyncio.sleep(0.3)
            except Exception as exc:  # a bug of ours: say so, keep attacking
                self.count(f"{name}: soak error {type(exc).__name__}", repr(exc))
                await asyncio.sleep(0.5)

    # -- sockets --------------------------------------------------------------------------
    async def ws(self, url: str, ip: str) -> ClientConnection:
        return await websockets.connect(
            url, max_size=None, open_timeout=10, close_timeout=1, ping_interval=None, local_addr=(ip, 0)
        )

    def http(self, ip: str, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=ip), timeout=15, **kw)

    async def recv(self, ws: ClientConnection, timeout: float = 10) -> dict[str, Any] | None:
        """The next JSON frame, or None when the server closed."""
        try:
            async with asyncio.timeout(timeout):
                raw = await ws.recv()
        except websockets.ConnectionClosed:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"_": data}

    def judge_native(self, route: str, res: dict[str, Any], sent: Any) -> None:
        if res.get("ok"):
            self.count(f"{route}: answered ok")
            return
        error = res.get("error") or {}
        if error.get("code") not in CODES:
            self.problem("untyped native error", f"{route}: {res} for {str(sent)[:200]}")
        elif "internal error" in str(error.get("message")):
            self.problem("internal error answered", f"{route}: {res} for {str(sent)[:200]}")
        else:
            self.count(f"{route}: typed error {error.get('code')}")

    def judge_close(self, route: str, ws: ClientConnection) -> None:
        code = ws.close_code
        if code == 1011:
            self.problem("closed 1011 (internal error)", f"{route}")
        self.count(f"{route}: closed {code}")

    # -- credential guessing (guess_ip) ---------------------------------------------------
    async def guess(self) -> None:
        route = self.rng.choice(
            ["native", "langbot-ws", "langbot-rest", "agentbox-ws", "agentbox-rest", "myagent", "hooks"]
        )
        secret = f"guess-{self.rng.getrandbits(64):x}"
        outcome = await getattr(self, "guess_" + route.replace("-", "_"))(secret)
        self.count(f"guess {route}: {outcome}")
        if outcome == "accepted":
            self.problem("a guessed credential was accepted", f"{route} {secret}")
        await asyncio.sleep(0.05)

    async def guess_native(self, secret: str) -> str:
        async with await self.ws(f"ws://{self.host}:{self.port}", self.guess_ip) as ws:
            await self.recv(ws)
            params = connect_params(secret, "cli", ["operator.read"])
            await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
            res = await self.recv(ws)
        if res is None:
            return "closed"
        if res.get("ok"):
            return "accepted"
        details = (res.get("error") or {}).get("details") or {}
        return "locked out" if details.get("code") == "AUTH_RATE_LIMITED" else "refused"

    async def guess_langbot_ws(self, secret: str) -> str:
        url = f"ws://{self.host}:{self.port}/api/v1/pipelines/{self.creds['pipeline']}/ws/connect?token={secret}"
        async with await self.ws(url, self.guess_ip) as ws:
            first = await self.recv(ws)
        if first is None:
            return "closed"
        if first.get("type") == "connected":
            return "accepted"
        code = (first.get("data") or {}).get("code")
        return "locked out" if code == "rate_limited" else "refused"

    async def guess_langbot_rest(self, secret: str) -> str:
        url = f"http://{self.host}:{self.port}/api/v1/pipelines/{self.creds['pipeline']}/ws/connections"
        async with self.http(self.guess_ip) as http:
            res = await http.get(url, headers={"Authorization": f"Bearer {secret}"})
        return self._http_guess(res)

    async def guess_agentbox_ws(self, secret: str) -> str:
        async with await self.ws(f"ws://{self.host}:{self.ab_port}/api/v1/gateway/ws", self.guess_ip) as ws:
            key = f"ab_{secret[:12]:0<12}_{secret}"
            await ws.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": key}}))
            reply = await self.recv(ws)
        if reply is None:
            return "closed"
        if reply.get("type") == "auth.result":
            return "accepted"
        code = (reply.get("payload") or {}).get("code")
        return "locked out" if code == "rate_limited" else "refused"

    async def guess_agentbox_rest(self, secret: str) -> str:
        async with self.http(self.guess_ip) as http:
            res = await http.post(
                f"http://{self.host}:{self.ab_port}/api/v1/tasks",
                headers={"Authorization": f"Bearer ab_{secret[:12]:0<12}_{secret}"},
                json={"prompt": "let me in"},
            )
        return self._http_guess(res)

    async def guess_myagent(self, secret: str) -> str:
        async with await self.ws(f"ws://{self.host}:{self.ma_port}/?token={secret}", self.guess_ip) as ws:
            first = await self.recv(ws)
        if first is None:
            return "closed"
        if first.get("event") == "system.connected":
            return "accepted"
        code = (first.get("metadata") or {}).get("code")
        return "locked out" if code == "rate_limited" else "refused"

    async def guess_hooks(self, secret: str) -> str:
        async with self.http(self.guess_ip) as http:
            res = await http.post(
                f"http://{self.host}:{self.port}/hooks/agent",
                headers={"Authorization": f"Bearer {secret}"},
                json={"message": "let me in"},
            )
        return self._http_guess(res)

    def _http_guess(self, res: httpx.Response) -> str:
        if res.status_code < 300:
            return "accepted"
        if res.status_code == 429:
            return "locked out"
        if res.status_code >= 500:
            self.problem("5xx to a guess", f"{res.request.url} {res.status_code} {res.text[:200]}")
        return "refused"

    # -- native junk ----------------------------------------------------------------------
    async def native_preconnect(self) -> None:
        """Junk before (instead of) connect: typed error and 1008, 1009 for a huge frame. From guess_ip."""
        async with await self.ws(f"ws://{self.host}:{self.port}", self.guess_ip) as ws:
            await self.recv(ws)
            frame = junk.native_frame(self.rng) if self.rng.random() < 0.9 else "x" * 200_000
            await ws.send(frame)
            res = await self.recv(ws)
            if res is not None and res.get("type") == "res":
                self.judge_native("native pre-connect", res, frame)
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                while await self.recv(ws, 5) is not None:
                    pass
            self.judge_close("native pre-connect", ws)
        await asyncio.sleep(0.05)

    async def native_connect(self, scopes: list[str]) -> ClientConnection:
        ws = await self.ws(f"ws://{self.host}:{self.port}", self.hostile_ip)
        await self.recv(ws)
        params = connect_params(self.creds["token"], "cli", scopes, client_id="mallory")
        await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
        while True:
            res = await self.recv(ws)
            if res is None:
                raise ConnectionError("refused at connect")
            if res.get("type") == "res":
                if not res.get("ok"):
                    raise ConnectionError(f"connect refused: {res.get('error')}")
                return ws

    async def native_junk(self) -> None:
        """Junk after a good connect (read scope): each request answered with a typed error, or a clean close."""
        ws = await self.native_connect(["operator.read"])
        async with ws:
            for _ in range(20):
                frame = junk.native_frame(self.rng)
                if self.rng.random() < 0.02:
                    frame = json.dumps(
                        {"type": "req", "id": "big", "method": "health", "params": {"x": "y" * 1_100_000}}
                    )
                await ws.send(frame)
                while True:
                    res = await self.recv(ws)
                    if res is None:
                        self.judge_close("native junk", ws)
                        await asyncio.sleep(0.1)  # then a new connection: churn, but not a connect storm
                        return
                    if res.get("type") == "res":
                        self.judge_native("native junk", res, frame)
                        break
                await asyncio.sleep(0.02)

    async def native_inflight(self) -> None:
        """More requests waiting at once than a connection may hold: the excess gets a retryable UNAVAILABLE."""
        ws = await self.native_connect(["operator.read", "operator.write"])
        async with ws:
            run = f"inflight-{self.rng.getrandbits(48):x}"
            params = {"message": "keep me busy [long:2000]", "idempotencyKey": run, "sessionKey": "hostile-inflight"}
            await ws.send(json.dumps({"type": "req", "id": "run", "method": "agent", "params": params}))
            n = 100
            for i in range(n):
                wait = {"runId": run, "timeoutMs": 2000}
                await ws.send(json.dumps({"type": "req", "id": f"w{i}", "method": "agent.wait", "params": wait}))
            answered = 0
            while answered < n:
                res = await self.recv(ws, 30)
                if res is None:
                    self.judge_close("native in-flight", ws)
                    return
                if res.get("type") != "res":
                    continue
                if str(res.get("id")).startswith("w"):
                    answered += 1
                self.judge_native("native in-flight", res, res.get("id"))
            abort = {"sessionKey": "hostile-inflight", "runId": run}
            await ws.send(json.dumps({"type": "req", "id": "abort", "method": "chat.abort", "params": abort}))
            while (res := await self.recv(ws)) is not None and res.get("id") != "abort":
                pass
        await asyncio.sleep(5)

    async def native_bait(self) -> None:
        """Issue 16 item 2's message through chat.send, now and then (its own session)."""
        ws = await self.native_connect(["operator.read", "operator.write"])
        async with ws:
            key = f"bait-{self.rng.getrandbits(48):x}"
            params = {"sessionKey": "hostile-bait", "message": junk.QUADRATIC_BAIT, "idempotencyKey": key}
            await ws.send(json.dumps({"type": "req", "id": "b", "method": "chat.send", "params": params}))
            while (res := await self.recv(ws, 30)) is not None:
                if res.get("type") == "res":
                    self.judge_native("native bait", res, "bait")
                    break
        self.count("bait messages sent")
        await asyncio.sleep(3)

    # -- dialect junk (hostile_ip, valid credentials) -----------------------------------
    async def agentbox_junk(self) -> None:
        async with await self.ws(f"ws://{self.host}:{self.ab_port}/api/v1/gateway/ws", self.hostile_ip) as ws:
            await ws.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": self.creds["mallory_key"]}}))
            if (reply := await self.recv(ws)) is None or reply.get("type") != "auth.result":
                raise ConnectionError(f"mallory refused: {reply}")
            await ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": {"channel": "task", "topics": []}}))
            for _ in range(20):
                frame = junk.agentbox_frame(self.rng, self.alice_tasks())
                await ws.send(frame)
                reply = await self.recv(ws)
                while reply is not None and reply.get("type") == "event":
                    self.check_mallory_event(reply)
                    reply = await self.recv(ws)
                if reply is None:
                    self.judge_close("agentbox junk", ws)
                    return
                self.judge_agentbox(reply, frame)
                await asyncio.sleep(0.03)

    def judge_agentbox(self, reply: dict[str, Any], frame: Any) -> None:
        payload = reply.get("payload") or {}
        if reply.get("type") != "error":
            self.count(f"agentbox junk: answered {reply.get('type')}")
            if reply.get("type") == "subscribe.result" and any(
                t in self.alice_tasks() for t in payload.get("topics", [])
            ):
                self.problem("mallory subscribed to alice's task", f"{reply}")
            return
        code = payload.get("code")
        if code not in AGENTBOX_CODES:
            self.problem("untyped or internal agentbox error", f"{reply} for {str(frame)[:200]}")
        else:
            self.count(f"agentbox junk: typed error {code}")

    def check_mallory_event(self, event: dict[str, Any]) -> None:
        data = (event.get("payload") or {}).get("data") or {}
        task = data.get("task_id")
        if (event.get("payload") or {}).get("channel") == "task" and task not in self.mallory_tasks:
            self.problem("another user's task event reached mallory", json.dumps(event)[:300])
        else:
            self.count("agentbox junk: own event")

    async def myagent_junk(self) -> None:
        async with await self.ws(
            f"ws://{self.host}:{self.ma_port}/?token={self.creds['token']}", self.hostile_ip
        ) as ws:
            if (first := await self.recv(ws)) is None or first.get("event") != "system.connected":
                raise ConnectionError(f"refused: {first}")
            for _ in range(20):
                frame = junk.myagent_frame(self.rng)
                if self.rng.random() < 0.03:
                    frame = json.dumps({"event": "user.message", "session_id": "x", "content": "z" * 150_000})
                await ws.send(frame)
                # Every bad frame gets a system.error; a frame that is valid may get nothing: a ping-less dialect,
                # so an unknown event (always answered) marks the end of the answers to this frame.
                await ws.send(json.dumps({"event": "soak.sentinel"}))
                while (reply := await self.recv(ws)) is not None:
                    content = str(reply.get("content"))
                    if "internal error" in content:
                        self.problem("internal error answered", f"myagent: {reply} for {str(frame)[:200]}")
                    if content == "unknown event: soak.sentinel":
                        break
                    self.count(f"myagent junk: {reply.get('event')}")
                if reply is None:
                    self.judge_close("myagent junk", ws)
                    return
                await asyncio.sleep(0.03)

    async def langbot_junk(self) -> None:
        """Anonymous junk and CPU bait on the public pipeline; messages past the cap get an error frame."""
        url = f"ws://{self.host}:{self.port}/api/v1/pipelines/{self.creds['public_pipeline']}/ws/connect"
        async with await self.ws(url, self.hostile_ip) as ws:
            if (first := await self.recv(ws)) is None or first.get("type") != "connected":
                raise ConnectionError(f"refused: {first}")
            for i in range(20):
                frame = junk.langbot_frame(self.rng)
                if i == 0 and self.rng.random() < 0.3:
                    text = "a" + " " * 60_000 + "a" if self.rng.random() < 0.7 else "b" * 150_000
                    frame = json.dumps({"type": "message", "message": [{"type": "Plain", "text": text}]})
                await ws.send(frame)
                await ws.send(json.dumps({"type": "ping"}))
                while (reply := await self.recv(ws, 30)) is not None and reply.get("type") != "pong":
                    message = str((reply.get("data") or {}).get("message", ""))
                    if "internal error" in message:
                        self.problem("internal error answered", f"langbot: {reply}")
                    self.count(f"langbot junk: {reply.get('type')}")
                if reply is None:
                    self.judge_close("langbot junk", ws)
                    return
                await asyncio.sleep(0.03)

    # -- HTTP junk --------------------------------------------------------------------------
    async def http_junk(self) -> None:
        rng = self.rng
        mallory = {"Authorization": f"Bearer {self.creds['mallory_key']}"}
        hooks = {"Authorization": f"Bearer {self.creds['hook_token']}"}
        admin = {"Authorization": f"Bearer {self.creds['token']}"}
        public = f"/api/v1/pipelines/{self.creds['public_pipeline']}/ws"
        targets: list[tuple[str, str, str, dict[str, str]]] = [
            ("agentbox", "POST", f"http://{self.host}:{self.ab_port}/api/v1/tasks", mallory),
            ("agentbox", "POST", f"http://{self.host}:{self.ab_port}/api/v1/sessions", mallory),
            ("agentbox", "POST", f"http://{self.host}:{self.ab_port}/api/v1/batches", mallory),
            ("agentbox", "POST", f"http://{self.host}:{self.ab_port}/api/v1/alerts", mallory),
            ("agentbox", "POST", f"http://{self.host}:{self.ab_port}/api/v1/agents", mallory),
            ("hooks", "POST", f"http://{self.host}:{self.port}/hooks/agent", hooks),
            ("hooks", "POST", f"http://{self.host}:{self.port}/hooks/wake", hooks),
            ("hooks", "POST", f"http://{self.host}:{self.port}/hooks/{rng.choice(['x', 'agent%00', '%2e%2e'])}", hooks),
            ("langbot", "POST", f"http://{self.host}:{self.port}{public}/broadcast", admin),
            (
                "langbot",
                "GET",
                f"http://{self.host}:{self.port}{public}/messages/{rng.choice(['person', 'x', '%2e'])}",
                admin,
            ),
            ("langbot", "POST", f"http://{self.host}:{self.port}{public}/reset/{rng.choice(['group', 'x'])}", admin),
        ]
        async with self.http(self.hostile_ip) as http:
            for _ in range(10):
                kind, method, url, headers = rng.choice(targets)
                data, ctype = junk.body(rng)
                if rng.random() < 0.05:
                    data = b'{"message": "' + b"m" * 400_000 + b'"}'
                hdrs = {**headers, **({"Content-Type": ctype} if ctype else {})}
                if rng.random() < 0.05:
                    hdrs["Origin"] = "http://evil.example"
                res = await http.request(method, url, content=data if method == "POST" else None, headers=hdrs)
                self.judge_http(kind, res, data)
                if kind == "agentbox" and res.status_code == 201 and url.endswith("/tasks"):
                    self.mallory_tasks.add(res.json().get("task_id"))
                await asyncio.sleep(0.05)
            for task in self.alice_tasks()[-3:]:  # mallory reads alice's tasks: must look like missing ones
                res = await http.get(f"http://{self.host}:{self.ab_port}/api/v1/tasks/{task}", headers=mallory)
                if res.status_code != 404:
                    self.problem("mallory read alice's task", f"{res.status_code} {res.text[:200]}")
                else:
                    self.count("agentbox: alice's task hidden from mallory")

    def judge_http(self, kind: str, res: httpx.Response, sent: bytes) -> None:
        status = res.status_code
        if status >= 500:
            self.problem(f"{kind} answered {status}", f"{res.request.method} {res.request.url}: {res.text[:200]}")
            return
        plain = status >= 400 and "json" not in res.headers.get("content-type", "")
        self.count(f"{kind} http: {status}" + (" (text body)" if plain else ""))

    # -- connection pressure ---------------------------------------------------------------
    async def flood(self) -> None:
        """More anonymous sockets on the public pipeline than one IP may hold: the excess is refused."""
        url = f"ws://{self.host}:{self.port}/api/v1/pipelines/{self.creds['public_pipeline']}/ws/connect"
        opened: list[ClientConnection] = []
        accepted = 0
        try:
            for _ in range(80):
                try:
                    ws = await self.ws(url, self.flood_ip)
                except NETWORK_ERRORS:
                    self.count("flood: refused at the upgrade")
                    continue
                opened.append(ws)
                first = await self.recv(ws)
                if first is not None and first.get("type") == "connected":
                    accepted += 1
                    self.count("flood: accepted")
                else:
                    self.count(f"flood: refused {(first or {}).get('data', {}).get('code')}")
            self.counts["flood: rounds"] += 1
            self.counts["flood: most accepted at once"] = max(self.counts["flood: most accepted at once"], accepted)
            await asyncio.sleep(3)
        finally:
            for ws in opened:
                with contextlib.suppress(Exception):
                    await ws.close()
        await asyncio.sleep(10)

    async def slowloris(self) -> None:
        """A few connections trickling a request head: each must be cut by the header timeout."""

        async def trickle() -> None:
            reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.slow_ip, 0))
            began = time.monotonic()
            try:
                writer.write(b"GET / HTTP/1.1\r\n")
                while True:
                    await asyncio.sleep(2)
                    writer.write(b"X-a: b\r\n")
                    await writer.drain()
                    if reader.at_eof() or time.monotonic() - began > 60:
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.01):
                            if not await reader.read(1):
                                break
            except OSError:
                pass
            finally:
                writer.close()
            held = time.monotonic() - began
            self.count("slowloris: cut by the gateway" if held < 60 else "problem: slowloris connection held 60 s")

        await asyncio.gather(*(trickle() for _ in range(5)))


async def main() -> None:
    raise_nofile_limit()
    cfg = json.loads(os.environ["SOAK_CONFIG"])
    hostile = Hostile(cfg)
    emit({"ready": True})
    await serve_commands({"start": hostile.start, "pause": hostile.pause, "report": hostile.report})


if __name__ == "__main__":
    asyncio.run(main())
