"""An honest MyAgent client (seed 003): sessions, messages, acks, and reconnects that replay by ``seq``.

A message counts as acknowledged when its run's first event (``agent.thinking``
with the run id) arrives: the run has started and stored the message. Every
session message carries the session stream's ``seq`` and an ``event_id`` naming
its epoch; within an epoch the numbers must go up by exactly one, live or
replayed (nothing on that stream is droppable). After a lost socket the worker
sends ``user.reconnect`` with the last seq it saw; a restarted gateway answers
``REPLAY_GAP`` and numbers the session afresh in a new epoch.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from .common import SoakEnv, message_for, retrying
from .jsonsocket import JsonSocket
from .ledger import SeqView

__all__ = ["MyAgentWorker"]

TERMINAL = {"agent.final_answer": "ok", "agent.interrupted": "aborted", "agent.error": "error|timeout"}
RUN_PATIENCE_S = 90


class MyAgentWorker:
    dialect = "myagent"

    def __init__(self, env: SoakEnv, name: str) -> None:
        self.env = env
        self.name = name
        self.ledger = env.ledger
        self.rng = env.rng(name)
        self.url = f"ws://{env.host}:{env.myagent_port}/?token={env.creds.token}"
        self.sock: JsonSocket | None = None
        self.session: str | None = None
        self.seq = SeqView(gap_ok=False)
        self.created: asyncio.Future[str] | None = None
        self.resumed: asyncio.Future[None] | None = None
        self.sent: str | None = None  # text of the message waiting for its run to start
        self.run_id: str | None = None  # the run we follow
        self.since = 0.0
        self.runs_seen: set[str] = set()
        self.gap = False  # the last reconnect got REPLAY_GAP: the gateway restarted

    def on_frame(self, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        seq = frame.get("seq")
        meta = frame.get("metadata") or {}
        if event == "system.error":
            if meta.get("code") == "REPLAY_GAP":
                self.gap = True
            else:
                self.ledger.honest_error(self.dialect, f"system.error: {frame.get('content')}")
            return
        if not isinstance(seq, int) or seq == 0:
            return  # outside any session (system.connected)
        self.ledger.frames[self.dialect] += 1
        sid = frame.get("session_id")
        parts = str(frame.get("event_id", "")).rsplit(".", 2)
        epoch = parts[1] if len(parts) == 3 else None
        if event == "agent.session_created" and self.created is not None and not self.created.done():
            self.seq = SeqView(gap_ok=False)
            self.created.set_result(str(sid))
        if sid != self.session and event != "agent.session_created":
            return
        problem, _ = self.seq.see(seq, epoch)
        if problem:
            self.ledger.violation(self.dialect, f"{self.name} session {sid}: {problem}")
        if event == "agent.session_resumed" and self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)
        run = meta.get("run_id")
        if not isinstance(run, str):
            return
        if run not in self.runs_seen and self.sent is not None:
            self.runs_seen.add(run)
            self.ledger.ack(self.dialect, f"myagent:{sid}", self.sent, run)
            self.ledger.counts["myagent runs"] += 1
            self.sent, self.run_id = None, run
        if event in TERMINAL and run == self.run_id:
            self.ledger.outcome(run, TERMINAL[str(event)], "event")
            self.run_id = None

    async def _open(self) -> JsonSocket:
        sock = await JsonSocket.open(self.url, self.on_frame)
        self.sock = sock
        if self.session is not None:
            self.resumed = asyncio.get_running_loop().create_future()
            await sock.send({"event": "user.reconnect", "session_id": self.session, "last_seq": self.seq.last})
            await self._wait(self.resumed, sock)
            self.ledger.counts["myagent replays"] += 1
        return sock

    async def _wait(self, fut: asyncio.Future[Any], sock: JsonSocket, timeout: float = 30) -> Any:
        async with asyncio.timeout(timeout):
            done, _ = await asyncio.wait({fut, sock.lost}, return_when=asyncio.FIRST_COMPLETED)
        if fut not in done:
            raise ConnectionError("connection lost")
        return fut.result()

    async def ensure_connected(self) -> bool:
        if self.sock is not None and self.sock.open_:
            return True
        if self.sock is not None:
            await self.sock.close()
            self.sock = None
            self.sent = None  # never acknowledged: not ours to count
        if await retrying(self.env.phase, self._open) is None:
            return False
        self.ledger.counts["myagent connects"] += 1
        return True

    async def run(self) -> None:
        phase = self.env.phase
        for n in itertools.count(1):
            if not await self.ensure_connected():
                break
            if not phase.load.is_set():
                if phase.stop.is_set() and self.run_id is None:
                    break
                await self._follow(0.2)
                continue
            try:
                await self._turn(f"{self.name}#{n}")
            except (ConnectionError, TimeoutError):
                await asyncio.sleep(0.05)  # never a busy loop, whatever failed
                continue
            await asyncio.sleep(self.rng.uniform(0, 0.3))
        if self.sock is not None:
            await self.sock.close()

    async def _turn(self, tag: str) -> None:
        sock = self.sock
        assert sock is not None
        if self.session is None or self.rng.random() < 0.15:
            self.created = asyncio.get_running_loop().create_future()
            await sock.send({"event": "user.create_session"})
            self.session = await self._wait(self.created, sock)
        self.sent = message_for(self.rng, tag)
        self.since = time.monotonic()
        await sock.send({"event": "user.message", "session_id": self.session, "content": self.sent})
        if self.rng.random() < 0.1:
            await self._follow(self.rng.uniform(0.1, 0.8))
            if self.sock is not None and self.sock.open_:
                self.ledger.counts["myagent deliberate drops"] += 1
                self.sock.drop()
        while (self.sent is not None or self.run_id is not None) and not self.env.phase.stop.is_set():
            await self._follow(0.05)
            if self.sock is not None and self.sock.open_ and self.rng.random() < 0.05:
                ack = {"event": "user.ack", "session_id": self.session, "content": {"last_seq": self.seq.last}}
                await self.sock.send(ack)
            if time.monotonic() - self.since > RUN_PATIENCE_S:
                self.ledger.honest_error(self.dialect, f"run {self.run_id} ({self.sent!r}) not ended")
                self.sent = self.run_id = None

    async def _follow(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.sock is None or not self.sock.open_:
                lost_run = self.run_id
                if not await self.ensure_connected():
                    return
                if self.gap:
                    self.gap = False
                    if lost_run is not None:
                        self.run_id = None  # the restarted gateway no longer streams it: the store has its outcome
            await asyncio.sleep(0.05)

    @property
    def busy(self) -> bool:
        return self.run_id is not None or self.sent is not None
