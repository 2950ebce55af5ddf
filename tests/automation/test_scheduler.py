"""The scheduler's restart rules, with a fixed clock and the memory job store (no sockets, no runs)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from agenthub.core.cluster import LocalCluster
from agenthub.core.runs import Run, RunStatus
from agenthub.core.scheduler import CronConfig, HeartbeatConfig, MemoryCronStore, Scheduler

NOW = 1_800_000_000_000


def job(job_id: str, schedule: dict[str, Any], state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    definition = {
        "id": job_id,
        "name": job_id,
        "enabled": True,
        "createdAtMs": NOW - 3_600_000,
        "updatedAtMs": NOW - 3_600_000,
        "schedule": schedule,
        "sessionTarget": "isolated",
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": "hi"},
    }
    return definition, state


async def started(policy: str, *jobs: tuple[dict[str, Any], dict[str, Any]]) -> tuple[Scheduler, MemoryCronStore]:
    store = MemoryCronStore()
    for definition, state in jobs:
        await store.put_job(definition, state)
    events: list[tuple[str, dict[str, Any]]] = []
    node = SimpleNamespace(
        hub=SimpleNamespace(broadcast=lambda e, p, **kw: events.append((e, p))), cluster=LocalCluster()
    )
    cron = CronConfig(missed_run_policy=policy, catchup_delay_ms=500)
    scheduler = Scheduler(node, store, cron, HeartbeatConfig(), clock=lambda: NOW)  # type: ignore[arg-type]
    await scheduler.start()
    await scheduler.stop()
    return scheduler, store


async def test_run_once_catches_up_each_missed_job_once_after_start() -> None:
    every = job("every", {"kind": "every", "everyMs": 60_000}, {"nextRunAtMs": NOW - 10 * 60_000})
    at = job("at", {"kind": "at", "at": str(NOW - 1000)}, {"nextRunAtMs": NOW - 1000})
    future = job("future", {"kind": "every", "everyMs": 60_000}, {"nextRunAtMs": NOW + 5000})
    scheduler, store = await started("run-once", every, at, future)
    # Ten missed slots become one run, catchup_delay_ms after start; then the normal schedule resumes.
    assert scheduler.jobs["every"].state["nextRunAtMs"] == NOW + 500
    assert scheduler.jobs["at"].state["nextRunAtMs"] == NOW + 500
    assert scheduler.jobs["future"].state["nextRunAtMs"] == NOW + 5000
    assert store.jobs["every"][1]["nextRunAtMs"] == NOW + 500  # persisted


async def test_skip_moves_to_the_next_slot_and_disables_a_missed_one_shot() -> None:
    every = job("every", {"kind": "every", "everyMs": 60_000}, {"nextRunAtMs": NOW - 10 * 60_000})
    at = job("at", {"kind": "at", "at": str(NOW - 1000)}, {"nextRunAtMs": NOW - 1000})
    scheduler, _ = await started("skip", every, at)
    nxt = scheduler.jobs["every"].state["nextRunAtMs"]
    assert NOW < nxt <= NOW + 60_000 and (nxt - (NOW - 3_600_000)) % 60_000 == 0  # same phase as before
    assert scheduler.jobs["at"].enabled is False and scheduler.jobs["at"].state["lastRunStatus"] == "skipped"


async def test_a_run_cut_short_by_a_stop_is_recorded_as_interrupted() -> None:
    state = {"nextRunAtMs": NOW + 1000, "runningAtMs": NOW - 5000, "runningRunId": "r1"}
    scheduler, store = await started("run-once", job("j", {"kind": "every", "everyMs": 60_000}, state))
    assert "runningAtMs" not in scheduler.jobs["j"].state
    (entry,) = store.log
    assert entry["runId"] == "r1" and entry["status"] == "error" and "interrupted" in entry["error"]


class FakeRuns:
    """Records starts; runs end when the test says so."""

    def __init__(self) -> None:
        self.started: list[Run] = []

    async def start(self, run_id: str, session_key: str, message: str, origin: str, **kw: Any) -> Run:
        run = Run(run_id, session_key, message, origin, NOW)
        self.started.append(run)
        return run

    def active(self, session_key: str | None = None) -> list[Run]:
        return []

    def finish(self, run: Run) -> None:
        run.status = RunStatus.OK
        run.text = "done"
        for callback in run.on_done:
            callback(run)


async def test_concurrency_is_bounded_and_the_rest_wait_their_turn() -> None:
    store = MemoryCronStore()
    for name in ("a", "b", "c"):
        await store.put_job(*job(name, {"kind": "every", "everyMs": 60_000}, {"nextRunAtMs": NOW + 60_000}))
    runs = FakeRuns()
    events: list[tuple[str, dict[str, Any]]] = []

    async def reset_session(key: str, now: int) -> bool:
        return True

    node = SimpleNamespace(
        hub=SimpleNamespace(broadcast=lambda e, p, **kw: events.append((e, p))),
        runs=runs,
        store=SimpleNamespace(reset_session=reset_session),
        outbound=None,
        cluster=LocalCluster(),
    )
    scheduler = Scheduler(node, store, CronConfig(max_concurrent_runs=2), HeartbeatConfig(), clock=lambda: NOW)  # type: ignore[arg-type]
    await scheduler.start()
    try:
        for name in ("a", "b", "c"):
            assert scheduler.run_now(name, "force")["enqueued"] is True
        for _ in range(20):
            await asyncio.sleep(0)
        assert [r.session_key for r in runs.started] == ["cron:a", "cron:b"]  # "c" waits for a slot
        assert scheduler.status()["queuedRuns"] == 1
        runs.finish(runs.started[0])
        for _ in range(20):
            await asyncio.sleep(0)
        assert [r.session_key for r in runs.started] == ["cron:a", "cron:b", "cron:c"]
        finished = [p for e, p in events if e == "cron" and p.get("action") == "finished"]
        assert [p["jobId"] for p in finished] == ["a"] and finished[0]["completionStatus"] == "succeeded"
    finally:
        await scheduler.stop()
