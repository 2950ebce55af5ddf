"""``agent``, ``agent.wait``, ``agent.replay``: one agent turn, its outcome, and what a client missed.

``agent.replay {runId, afterSeq, epoch?}`` answers with the events published
after agent event ``afterSeq``: the chat event derived from it (it carries the
same seq), then every later agent event with its chat event (see ``core.runs``
for the numbering), plus ``lastSeq`` (the run's last agent seq so far), the
stream's ``epoch`` and ``done``. ``REPLAY_GAP`` when the epoch changed or part
of that is no longer retained.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...protocol.errors import not_found
from ...protocol.methods import AgentParams, AgentReplayParams, AgentWaitParams
from ..bus import ReplayGap
from ..rpc import Call
from ..runs import Run, RunStatus, now_ms, run_stream
from ..store import RunRecord
from ._context import ApiContext
from ._final import agent_final, agent_final_from_record
from .sessions import agent_session_key

__all__ = ["register"]

# Retries of runs another process executes, waiting for their end (kept referenced until done).
_FOLLOWING: set[asyncio.Task[None]] = set()


def register(ctx: ApiContext) -> None:
    node = ctx.node
    runs = ctx.runs
    store = ctx.store

    async def agent(call: Call, p: AgentParams) -> Any:
        async with ctx.exclusive(p.idempotencyKey):
            return await _agent(call, p)

    async def _agent(call: Call, p: AgentParams) -> Any:
        run_id = p.idempotencyKey
        existing = runs.get(run_id)
        if existing is not None:
            return await _replay_run(call, existing)
        first = await ctx.idempotent_replay(run_id)
        if first is not None:
            record = await store.get_run(run_id)
            if record is not None and record.status not in ("queued", "running"):
                ctx.reply_after_first(call, agent_final_from_record(record, await reply_text(record)))
            elif record is not None:  # running in another gateway process: its end is the final reply
                call.after_response(lambda: _follow(call, run_id))
            return first
        runs.check_message(p.message)  # before the key is spent: a refused request may be retried
        runs.check_available()
        accepted = {"runId": run_id, "status": "accepted", "acceptedAt": now_ms()}
        await store.put_idempotent(run_id, "agent", accepted, now_ms())
        key = await agent_session_key(ctx, p)
        run = await runs.start(
            run_id,
            key,
            p.message,
            f"agent:{call.conn.conn_id}",
            timeout_s=p.timeout,  # seconds, as OpenClaw's CLI sends it; 0 or none: the gateway's limit
            launch=False,
        )
        run.on_done.append(ctx.final_reply(call))
        call.after_response(lambda: runs.launch(run))
        return accepted

    async def _replay_run(call: Call, run: Run) -> dict[str, Any]:
        stored = await store.get_idempotent(run.run_id, 0)
        if run.done.is_set():
            ctx.reply_after_first(call, agent_final(run))
        else:
            run.on_done.append(ctx.final_reply(call))
        if stored is not None and stored[0] == "agent":
            first: dict[str, Any] = stored[1]  # the original accept, acceptedAt included
            return first
        return {"runId": run.run_id, "status": "accepted", "acceptedAt": run.created_ms}

    def _follow(call: Call, run_id: str) -> None:
        async def follow() -> None:
            await runs.cluster.wait_remote(run_id, runs.run_timeout_s + 5)
            record = await store.get_run(run_id)
            if record is not None and record.status not in ("queued", "running"):
                call.late_reply(agent_final_from_record(record, await reply_text(record)))

        task = asyncio.get_running_loop().create_task(follow(), name=f"follow:{run_id}")
        _FOLLOWING.add(task)
        task.add_done_callback(_FOLLOWING.discard)

    async def reply_text(record: RunRecord) -> str | None:
        """The stored assistant reply of a finished run (its summary is cut at 500 characters)."""
        for message in reversed(await store.history(record.session_key, 50)):
            if message.run_id == record.run_id and message.role == "assistant":
                return message.text
        return None

    async def agent_wait(call: Call, p: AgentWaitParams) -> Any:
        run = await runs.wait(p.runId, p.timeoutMs / 1000)
        if run is not None:
            if not run.done.is_set():
                return {"runId": run.run_id, "status": "timeout"}
            return run.result()
        # A run another gateway process executes: its owner waits and answers.
        remote = await runs.cluster.wait_remote(p.runId, p.timeoutMs / 1000)
        if remote is not None:
            return remote
        record = await store.get_run(p.runId)
        if record is None:
            raise not_found(f"unknown run: {p.runId}", "RUN_NOT_FOUND", runId=p.runId)
        return _stored_result(record, with_error=True)

    async def agent_replay(call: Call, p: AgentReplayParams) -> Any:
        stream = run_stream(p.runId)
        try:
            pubs = await node.bus.history(stream, p.afterSeq, p.epoch)
        except ReplayGap as gap:
            raise not_found(
                f"cannot replay run {p.runId}: {gap.reason}", "REPLAY_GAP", code="REPLAY_GAP", runId=p.runId
            ) from None
        pos = await node.bus.position(stream)
        run = runs.get(p.runId)
        if run is not None:
            done = run.done.is_set()
        else:  # another gateway process runs it (or ran it): the store knows whether it ended
            record = await store.get_run(p.runId)
            done = record is not None and record.status not in ("queued", "running")
        return {
            "runId": p.runId,
            "epoch": pos.epoch if pos else None,
            "lastSeq": pos.seq if pos else 0,
            "done": done,
            "events": [{"event": pub.event, "payload": pub.payload} for pub in pubs],
        }

    def _stored_result(record: RunRecord, *, with_error: bool) -> dict[str, Any]:
        """The outcome of a run the gateway no longer holds in memory (after a restart)."""
        out: dict[str, Any] = {"runId": record.run_id, "status": record.status, "summary": record.summary or ""}
        if with_error and record.error:
            out["error"] = record.error
        if record.status == RunStatus.TIMEOUT:
            out["stopReason"] = "timeout"
        return out

    node.dispatcher.register("agent", agent)
    node.dispatcher.register("agent.wait", agent_wait)
    node.dispatcher.register("agent.replay", agent_replay)
