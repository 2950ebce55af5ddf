"""Tasks, sessions, agents, batches and alerts: the operations both the socket and REST expose.

Nothing here is a copy of core state: a task is a core run owned by a user
(``Run.owner``, persisted), its follow-up turns are the runs ``<task_id>.<n>``
in the same core session, and AgentBox sessions are core sessions keyed
``agentbox:<user_id>:<session_id>``. Agents are announced, not stored: core
runs one configured runtime, so a task's ``agent`` is only echoed in
``task.created``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ...core.node import Node
from ...core.runs import Run, now_ms
from ...protocol.errors import RpcError
from .events import SYSTEM_EVENT, SYSTEM_TOPICS, TASK_STATUS, session_key
from .frames import AgentBoxError, Code
from .keys import User

__all__ = ["Tasks"]


@dataclass(slots=True)
class _Turn:
    run_id: str
    session_key: str
    status: str
    text: str | None
    created_ms: int


class Tasks:
    """Task, session, agent, batch and alert operations on top of core runs and sessions."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def emit(self, owner: str | None, topic: str, data: dict[str, Any]) -> None:
        """Publish a system event; ``owner=None`` reaches every user (alerts)."""
        stream = f"agentbox:user:{owner}" if owner is not None else "agentbox:alerts"
        payload = {"owner": owner, "topic": topic, "event_type": SYSTEM_TOPICS[topic], "data": data}
        self.node.bus.publish(stream, SYSTEM_EVENT, payload, seq_field=False)

    async def _turn(self, run_id: str) -> tuple[str | None, _Turn] | None:
        run = self.node.runs.get(run_id)
        if run is not None:
            return run.owner, _Turn(run_id, run.session_key, run.status.value, run.text, run.created_ms)
        record = await self.node.store.get_run(run_id)
        if record is None:
            return None
        return record.owner, _Turn(run_id, record.session_key, record.status, None, record.created_ms)

    async def owned(self, user: User, task_id: str, request_id: str | None = None) -> _Turn:
        """The task's first turn; another user's task is reported exactly like a missing one."""
        found = await self._turn(task_id) if "." not in task_id else None
        if found is None or found[0] != user.user_id:
            raise AgentBoxError(Code.NOT_FOUND, f"task not found: {task_id}", request_id)
        return found[1]

    async def turns(self, first: _Turn) -> list[_Turn]:
        """Every turn of the task, found by id (``<task_id>.2``, ...): core keeps the list, not us."""
        out = [first]
        while (found := await self._turn(f"{first.run_id}.{len(out) + 1}")) is not None:
            out.append(found[1])
        return out

    async def _start(self, user: User, run_id: str, key: str, prompt: str, request_id: str | None = None) -> Run:
        try:
            return await self.node.runs.start(run_id, key, prompt, f"agentbox:{user.user_id}", owner=user.user_id)
        except RpcError as exc:  # the core refused the run (a prompt past limits.max_message_chars)
            raise AgentBoxError(Code.BAD_REQUEST, exc.message, request_id) from None

    async def create_task(
        self,
        user: User,
        prompt: str,
        agent: str | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a task (REST ``POST /api/v1/tasks`` and the socket's ``create_task``); ``task.created`` follows."""
        task_id = f"task-{secrets.token_hex(8)}"
        if session_id is not None:
            await self.owned_session(user, session_id, request_id)
        else:
            session_id = task_id
        await self._start(user, task_id, session_key(user.user_id, session_id), prompt, request_id)
        result = {"task_id": task_id, "session_id": session_id, "status": "queued"}
        self.emit(user.user_id, "tasks", {**result, "agent": agent, "prompt": prompt})
        return result

    async def owned_session(self, user: User, session_id: str, request_id: str | None = None) -> str:
        """The core key of the user's session; another user's session is reported exactly like a missing one."""
        key = session_key(user.user_id, session_id)
        if await self.node.store.get_session(key) is None:
            raise AgentBoxError(Code.NOT_FOUND, f"session not found: {session_id}", request_id)
        return key

    def session_runs(self, user: User, key: str) -> list[str]:
        """The run ids the run manager still holds for one of the user's sessions, oldest first.

        Runs it has let go of (past its ``finished`` window) have left the
        bus's retained history too, so a replay built from these is all there is.
        """
        runs = self.node.runs
        found = [r for r in (*runs.runs.values(), *runs.finished.values()) if r.session_key == key]
        found = [r for r in found if r.owner == user.user_id]
        return [r.run_id for r in sorted(found, key=lambda r: (r.created_ms, r.run_id))]

    async def get_task(self, user: User, task_id: str) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id))
        last = turns[-1]
        result = last.text if last.text is not None else await self._stored_answer(last)
        return {
            "task_id": task_id,
            "session_id": last.session_key.split(":", 2)[2],
            "status": TASK_STATUS.get(last.status, last.status),
            "result": result if last.status == "ok" else None,
            "turns": [{"turn_id": t.run_id, "status": TASK_STATUS.get(t.status, t.status)} for t in turns],
            "created_at": turns[0].created_ms,
        }

    async def _stored_answer(self, turn: _Turn) -> str | None:
        for msg in reversed(await self.node.store.history(turn.session_key, 200)):
            if msg.run_id == turn.run_id and msg.role == "assistant":
                return msg.text
        record = await self.node.store.get_run(turn.run_id)
        return record.summary if record is not None else None

    async def cancel(self, user: User, task_id: str, request_id: str | None = None) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id, request_id))
        aborted: list[str] = []
        for turn in turns:
            aborted += self.node.runs.abort(turn.session_key, turn.run_id, "cancelled by user")
        return {"task_id": task_id, "action": "cancel", "cancelled": bool(aborted), "turn_ids": aborted}

    async def append_turn(self, user: User, task_id: str, text: str, request_id: str | None = None) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id, request_id))
        n = len(turns) + 1
        while self.node.runs.get(f"{task_id}.{n}") is not None:  # a concurrent append took this number
            n += 1
        turn_id = f"{task_id}.{n}"
        # No await between that check and RunManager.start registering the run: the id is ours.
        await self._start(user, turn_id, turns[0].session_key, text, request_id)
        return {"task_id": task_id, "action": "append_turn", "turn_id": turn_id}

    async def create_session(self, user: User, title: str | None) -> dict[str, Any]:
        session_id = f"sess-{secrets.token_hex(8)}"
        await self.node.store.ensure_session(session_key(user.user_id, session_id), now_ms())
        result = {"session_id": session_id, "title": title}
        self.emit(user.user_id, "sessions", result)
        return result

    def create_agent(self, user: User, spec: dict[str, Any]) -> dict[str, Any]:
        result = {**spec, "agent_id": f"agent-{secrets.token_hex(8)}"}
        self.emit(user.user_id, "agents", result)
        return result

    async def create_batch(self, user: User, prompts: list[str], agent: str | None) -> dict[str, Any]:
        batch_id = f"batch-{secrets.token_hex(8)}"
        for prompt in prompts:  # all or nothing: refuse the batch before any task starts
            try:
                self.node.runs.check_message(prompt)
            except RpcError as exc:
                raise AgentBoxError(Code.BAD_REQUEST, exc.message) from None
        task_ids = [(await self.create_task(user, prompt, agent))["task_id"] for prompt in prompts]
        result = {"batch_id": batch_id, "task_ids": task_ids}
        self.emit(user.user_id, "batches", result)
        return result

    def alert(self, user: User, data: dict[str, Any]) -> dict[str, Any]:
        if "admin" not in user.scopes:
            raise AgentBoxError(Code.FORBIDDEN, "alerts need an API key with the admin scope")
        result = {**data, "alert_id": f"alert-{secrets.token_hex(8)}", "ts": now_ms()}
        self.emit(None, "alerts", result)
        return result
