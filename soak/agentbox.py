"""An honest AgentBox user: tasks over REST, their events over the gateway WebSocket (seed 002).

Each task is created with ``POST /api/v1/tasks`` (the 201 acknowledges its
prompt), followed on the socket by subscribing to its topic, sometimes
cancelled, sometimes continued with ``append_turn`` (acknowledged by
``task.action.result``). A (re)subscription replays what the bus holds of the
task, so each subscription is judged from scratch: per turn, ``agent.message``
text must grow by its delta, one terminal event, nothing after it. When the
socket is lost the worker reconnects, authenticates and subscribes again; a
turn the restarted gateway no longer streams is asked for over REST.
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

__all__ = ["TASK_OUTCOMES", "AgentBoxWorker"]

# AgentBox task statuses -> the stored run statuses they stand for.
TASK_OUTCOMES = {"completed": "ok", "cancelled": "aborted", "failed": "error|timeout"}
EVENT_OUTCOMES = {"task.completed": "ok", "task.cancelled": "aborted", "task.failed": "error|timeout"}
RUN_PATIENCE_S = 90


class AgentBoxWorker:
    dialect = "agentbox"

    def __init__(self, env: SoakEnv, name: str, user: str, key: str) -> None:
        self.env = env
        self.name = name
        self.user = user
        self.key = key
        self.ledger = env.ledger
        self.rng = env.rng(name)
        self.base = f"http://{env.host}:{env.agentbox_port}"
        self.sock: JsonSocket | None = None
        self.ids = itertools.count(1)
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.views: dict[str, TextView] = {}  # turn id -> this subscription's view
        self.open_turns: dict[str, tuple[str, float]] = {}  # turn id -> (task id, since)
        self.sessions: list[str] = []
        self.http = httpx.AsyncClient(
            base_url=self.base,
            headers={"Authorization": f"Bearer {key}"},
            transport=httpx.AsyncHTTPTransport(local_address=HONEST_IP),
            timeout=30,
        )

    # -- socket ---------------------------------------------------------------------------
    def on_frame(self, frame: dict[str, Any]) -> None:
        rid = frame.get("id")
        if isinstance(rid, str) and rid in self.replies:
            fut = self.replies.pop(rid)
            if not fut.done():
                fut.set_result(frame)
            return
        if frame.get("type") != "event":
            if frame.get("type") == "error":
                self.ledger.honest_error(self.dialect, f"unsolicited error: {frame.get('payload')}")
            return
        payload = frame.get("payload") or {}
        if payload.get("channel") != "task":
            return
        data = payload.get("data") or {}
        turn = data.get("turn_id")
        if not isinstance(turn, str):
            return
        self.ledger.frames[self.dialect] += 1
        kind = payload.get("event_type")
        view = self.views.setdefault(turn, TextView())
        problem = None
        if kind == "agent.message":
            problem = view.chunk(str(data.get("text", "")), delta=str(data.get("content", "")))
        elif kind in EVENT_OUTCOMES:
            problem = view.end()
            if turn in self.open_turns:
                self.ledger.outcome(turn, EVENT_OUTCOMES[kind], "event")
                del self.open_turns[turn]
        elif view.ended:
            problem = f"{kind} after the terminal event"
        if problem:
            self.ledger.violation(self.dialect, f"{self.name} turn {turn}: {problem}")

    async def request(self, type_: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        if self.sock is None or not self.sock.open_:
            raise ConnectionError("connection lost")
        rid = f"{type_}-{next(self.ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies[rid] = fut
        await self.sock.send({"id": rid, "type": type_, "payload": payload, "timestamp": int(time.time() * 1000)})
        lost: asyncio.Future[Any] = self.sock.lost
        async with asyncio.timeout(timeout):
            done, _ = await asyncio.wait([fut, lost], return_when=asyncio.FIRST_COMPLETED)
        if fut not in done:
            raise ConnectionError("connection lost")
        reply: dict[str, Any] = fut.result()
        return reply

    async def _open(self) -> JsonSocket:
        sock = await JsonSocket.open(f"ws://{self.env.host}:{self.env.agentbox_port}/api/v1/gateway/ws", self.on_frame)
        self.sock = sock
        reply = await self.request("auth", {"token": self.key, "device_id": self.name})
        if reply.get("type") != "auth.result":
            await sock.close()
            raise ConnectionError(f"auth refused: {reply}")
        return sock

    async def ensure_connected(self) -> bool:
        if self.sock is not None and self.sock.open_:
            return True
        if self.sock is not None:
            await self.sock.close()
            self.sock = None
        if await retrying(self.env.phase, self._open) is None:
            return False
        self.ledger.counts["agentbox connects"] += 1
        self.views.clear()  # a new subscription replays from the start
        tasks = sorted({task for task, _ in self.open_turns.values()})
        try:
            if tasks:
                reply = await self.request("subscribe", {"channel": "task", "topics": tasks})
                if reply.get("type") != "subscribe.result":
                    self.ledger.honest_error(self.dialect, f"subscribe again {tasks}: {reply}")
                await self._check_over_rest(tasks)  # turns that ended (or were failed by a restart) meanwhile
        except (ConnectionError, TimeoutError):
            return await self.ensure_connected()
        return True

    async def _check_over_rest(self, tasks: list[str]) -> None:
        """The stored status of turns that were streaming when the socket went."""
        for task in tasks:
            try:
                res = await self.http.get(f"/api/v1/tasks/{task}")
            except httpx.HTTPError:
                return
            if res.status_code != 200:
                self.ledger.honest_error(self.dialect, f"GET task {task}: {res.status_code} {res.text[:200]}")
                continue
            for turn in res.json()["turns"]:
                outcome = TASK_OUTCOMES.get(turn["status"])
                if outcome is not None and turn["turn_id"] in self.open_turns:
                    self.ledger.outcome(turn["turn_id"], outcome, "rest")
                    del self.open_turns[turn["turn_id"]]

    # -- work -----------------------------------------------------------------------------
    async def run(self) -> None:
        phase = self.env.phase
        for n in itertools.count(1):
            if not await self.ensure_connected():
                break
            if not phase.load.is_set():
                if phase.stop.is_set() and not self.open_turns:
                    break
                await self._follow(0.2)
                continue
            try:
                await self._one_task(f"{self.name}#{n}")
            except (ConnectionError, TimeoutError, httpx.HTTPError):
                await asyncio.sleep(0.05)  # the socket or the gateway went: the next round reconnects and catches up
                continue
            await asyncio.sleep(self.rng.uniform(0, 0.3))
        await self.close()

    async def _one_task(self, tag: str) -> None:
        session = None
        if self.rng.random() < 0.3:
            res = await self.http.post("/api/v1/sessions", json={"title": tag})
            if res.status_code != 201:
                self.ledger.honest_error(self.dialect, f"POST session: {res.status_code} {res.text[:200]}")
                return
            self.sessions.append(res.json()["session_id"])
        if self.sessions and self.rng.random() < 0.5:
            session = self.rng.choice(self.sessions[-5:])
        prompt = message_for(self.rng, tag)
        body: dict[str, Any] = {"prompt": prompt} | ({"session_id": session} if session else {})
        res = await self.http.post("/api/v1/tasks", json=body)
        if res.status_code != 201:
            self.ledger.honest_error(self.dialect, f"POST task: {res.status_code} {res.text[:200]}")
            return
        task = res.json()
        task_id = task["task_id"]
        self.open_turns[task_id] = (task_id, time.monotonic())
        self.ledger.ack(self.dialect, f"agentbox:{self.user}:{task['session_id']}", prompt, task_id)
        self.ledger.counts["agentbox runs"] += 1
        reply = await self.request("subscribe", {"channel": "task", "topics": [task_id]})
        if reply.get("type") != "subscribe.result":
            self.ledger.honest_error(self.dialect, f"subscribe {task_id}: {reply}")
        if self.rng.random() < 0.15:
            await self._follow(self.rng.uniform(0.05, 0.8))
            reply = await self.request("task.action", {"task_id": task_id, "action": "cancel"})
            self.ledger.counts["agentbox cancels"] += 1
            if reply.get("type") != "task.action.result":
                self.ledger.honest_error(self.dialect, f"cancel: {reply}")
        elif self.rng.random() < 0.1 and self.sock is not None:
            await self._follow(self.rng.uniform(0.05, 0.8))
            self.ledger.counts["agentbox deliberate drops"] += 1
            self.sock.drop()
        await self._wait_turns()
        if self.rng.random() < 0.25 and self.sock is not None and self.sock.open_:
            text = message_for(self.rng, tag + "+")
            reply = await self.request("task.action", {"task_id": task_id, "action": "append_turn", "data": text})
            if reply.get("type") == "task.action.result":
                turn = reply["payload"]["turn_id"]
                self.open_turns[turn] = (task_id, time.monotonic())
                self.ledger.ack(self.dialect, f"agentbox:{self.user}:{task['session_id']}", text, turn)
                self.ledger.counts["agentbox runs"] += 1
                await self._wait_turns()
            else:
                self.ledger.honest_error(self.dialect, f"append_turn: {reply}")
        if self.sock is not None and self.sock.open_:
            await self.request("unsubscribe", {"channel": "task", "topics": [task_id]})

    async def _follow(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not await self.ensure_connected():
                return
            await asyncio.sleep(0.05)

    async def _wait_turns(self) -> None:
        while self.open_turns and not self.env.phase.stop.is_set():
            await self._follow(0.05)
            overdue = [t for t, (task, since) in self.open_turns.items() if time.monotonic() - since > RUN_PATIENCE_S]
            for turn in overdue:
                task = self.open_turns[turn][0]
                await self._check_over_rest([task])
                if turn in self.open_turns:
                    self.ledger.honest_error(self.dialect, f"turn {turn} not ended after {RUN_PATIENCE_S} s")
                    del self.open_turns[turn]

    @property
    def busy(self) -> bool:
        return bool(self.open_turns)

    async def close(self) -> None:
        if self.sock is not None:
            await self.sock.close()
        await self.http.aclose()
