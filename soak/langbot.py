"""An honest LangBot client (seed 004) on a private pipeline, and an honest webhook caller.

LangBot: the socket presents the pipeline's key as ``?token=`` (as a browser
must). A message counts as acknowledged at its run's first ``response`` chunk
(or its run's error frame): the run started and stored it. Each reply's chunks
must extend the text so far, end with one ``is_final`` chunk, and nothing may
follow it. LangBot has no replay: a reply cut by a restart is judged by its
stored outcome at the end.

Hooks: ``POST /hooks/agent`` with the hook token; the ``{ok, runId}`` answer
acknowledges the message.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx

from .common import HONEST_IP, SoakEnv, message_for, retrying
from .jsonsocket import JsonSocket
from .ledger import TextView

__all__ = ["HookWorker", "LangBotWorker"]

RUN_PATIENCE_S = 90


class LangBotWorker:
    dialect = "langbot"

    def __init__(self, env: SoakEnv, name: str, session_type: str) -> None:
        self.env = env
        self.name = name
        self.ledger = env.ledger
        self.rng = env.rng(name)
        c = env.creds
        self.url = (
            f"{env.ws}/api/v1/pipelines/{c.pipeline}/ws/connect?session_type={session_type}&token={c.pipeline_key}"
        )
        self.session_key = f"langbot:{c.pipeline}:{session_type}"
        self.sock: JsonSocket | None = None
        self.connected: asyncio.Future[None] | None = None
        self.views: dict[int, TextView] = {}
        self.sent: str | None = None  # waiting for its run's first chunk
        self.reply: int | None = None  # the reply id we follow
        self.waiting = False
        self.since = 0.0

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        data = frame.get("data") or {}
        if kind == "connected":
            if self.connected is not None and not self.connected.done():
                self.connected.set_result(None)
            return
        if kind == "error":
            message = str(data.get("message", ""))
            if self.waiting and not message.startswith("could not start"):
                if self.sent is not None:  # the run failed before any text: it started, so it is stored
                    self.ledger.ack(self.dialect, self.session_key, self.sent, None)
                    self.ledger.counts["langbot runs"] += 1
                self.sent, self.reply, self.waiting = None, None, False
            else:
                self.ledger.honest_error(self.dialect, f"error frame: {message}")
            return
        if kind != "response":
            return
        self.ledger.frames[self.dialect] += 1
        reply = data.get("id")
        if not isinstance(reply, int):
            self.ledger.violation(self.dialect, f"{self.name}: response without an id: {data}")
            return
        if self.sent is not None and reply not in self.views:
            self.ledger.ack(self.dialect, self.session_key, self.sent, None)
            self.ledger.counts["langbot runs"] += 1
            self.sent, self.reply = None, reply
        view = self.views.setdefault(reply, TextView())
        final = bool(data.get("is_final"))
        problem = view.chunk(str(data.get("content", "")), final=final)
        if problem:
            self.ledger.violation(self.dialect, f"{self.name} reply {reply}: {problem}")
        if final and reply == self.reply:
            self.reply, self.waiting = None, False

    async def _open(self) -> JsonSocket:
        self.connected = asyncio.get_running_loop().create_future()
        sock = await JsonSocket.open(self.url, self.on_frame)
        async with asyncio.timeout(15):
            done, _ = await asyncio.wait({self.connected, sock.lost}, return_when=asyncio.FIRST_COMPLETED)
        if self.connected not in done:
            raise ConnectionError(f"refused: close {sock.close_code}")
        self.sock = sock
        return sock

    async def ensure_connected(self) -> bool:
        if self.sock is not None and self.sock.open_:
            return True
        if self.sock is not None:
            await self.sock.close()
            self.sock = None
            # A reply cut here is not streamed again (LangBot has no replay): its outcome is in the store.
            # Reply ids restart with the gateway, so the views go too.
            self.sent, self.reply, self.waiting = None, None, False
            self.views.clear()
        if await retrying(self.env.phase, self._open) is None:
            return False
        self.ledger.counts["langbot connects"] += 1
        return True

    async def run(self) -> None:
        phase = self.env.phase
        for n in itertools.count(1):
            if not await self.ensure_connected():
                break
            if not phase.load.is_set():
                if phase.stop.is_set() and not self.waiting:
                    break
                await self._follow(0.2)
                continue
            assert self.sock is not None
            self.sent, self.waiting, self.since = message_for(self.rng, f"{self.name}#{n}"), True, time.monotonic()
            try:
                await self.sock.send({"type": "message", "message": [{"type": "Plain", "text": self.sent}]})
            except ConnectionError:
                self.sent, self.waiting = None, False
                await asyncio.sleep(0.05)
                continue
            if self.rng.random() < 0.2:
                await self._follow(0.05)
                try:
                    await self.sock.send({"type": "ping"})
                except ConnectionError:
                    await asyncio.sleep(0.05)
                    continue
            while self.waiting and not phase.stop.is_set():
                await self._follow(0.05)
                if time.monotonic() - self.since > RUN_PATIENCE_S:
                    self.ledger.honest_error(self.dialect, f"reply to {self.sent!r} not ended")
                    self.sent, self.reply, self.waiting = None, None, False
            await asyncio.sleep(self.rng.uniform(0, 0.3))
        if self.sock is not None:
            await self.sock.close()

    async def _follow(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not await self.ensure_connected():
                return
            await asyncio.sleep(0.05)

    @property
    def busy(self) -> bool:
        return self.waiting


class HookWorker:
    """Posts ``/hooks/agent`` now and then, as an outside system would."""

    dialect = "hooks"

    def __init__(self, env: SoakEnv, name: str) -> None:
        self.env = env
        self.name = name
        self.ledger = env.ledger
        self.rng = env.rng(name)
        self.http = httpx.AsyncClient(
            base_url=env.http,
            headers={"Authorization": f"Bearer {env.creds.hook_token}"},
            transport=httpx.AsyncHTTPTransport(local_address=HONEST_IP),
            timeout=30,
        )
        self.busy = False

    async def run(self) -> None:
        phase = self.env.phase
        for n in itertools.count(1):
            if not await phase.wait_load():
                break
            text = message_for(self.rng, f"{self.name}#{n}")
            try:
                res = await self.http.post("/hooks/agent", json={"message": text, "name": "soak"})
            except httpx.HTTPError:
                await asyncio.sleep(0.5)  # the gateway is down: the message was never acknowledged
                continue
            if res.status_code == 200:
                body = res.json()
                self.ledger.ack(self.dialect, body["sessionKey"], text, body["runId"])
                self.ledger.counts["hooks runs"] += 1
            else:
                self.ledger.honest_error(self.dialect, f"POST /hooks/agent: {res.status_code} {res.text[:200]}")
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        await self.http.aclose()
