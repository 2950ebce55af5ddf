"""Cron jobs against a real gateway process: OpenClaw's methods and shapes, runs visible to operators, restarts."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import GatewayProc
from ..e2e._util import Client
from ._common import assert_valid, cron_event, load_schema, run_events

EVERY_SECOND = {
    "name": "tick",
    "schedule": {"kind": "every", "everyMs": 1000},
    "sessionTarget": "isolated",
    "wakeMode": "now",
    "payload": {"kind": "agentTurn", "message": "what is 2+3"},
    "delivery": {"mode": "none"},
}


@pytest.fixture(scope="module")
def openclaw() -> dict[str, Any]:
    return load_schema()


async def wait_finished(
    op: Client, job_id: str, count: int, seen: set[str], timeout: float = 30
) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        frame = await op.until(cron_event("finished", job_id, seen), timeout=timeout)
        seen.add(frame["payload"]["runId"])
        out.append(frame["payload"])
    return out


async def test_a_job_every_second_fires_twice_visible_to_operators_and_survives_a_restart(
    make_gateway: Any, openclaw: dict[str, Any]
) -> None:
    gw: GatewayProc = make_gateway(config={"cron": {"catchup_delay_ms": 100}})
    async with Client.open_connected(gw.url) as op, Client.open_connected(gw.url, scopes=["operator.read"]) as viewer:
        job = await op.ok("cron.add", EVERY_SECOND)
        assert_valid(openclaw, "CronAddResult", job)
        assert job["state"]["nextRunAtMs"] > job["createdAtMs"]
        seen: set[str] = set()
        first, second = await wait_finished(op, job["id"], 2, seen)
        # Two runs within a 3-second window (their own start times, stamped by the gateway).
        assert second["runAtMs"] - first["runAtMs"] < 3000
        for fin in (first, second):
            assert fin["status"] == "ok" and "5" in fin["summary"], fin
            assert fin["sessionKey"] == f"cron:{job['id']}"
            assert_valid(openclaw, "CronRunLogEntry", fin | {"action": "finished"})
            # A read-only operator that started nothing sees each scheduled run live: cron, agent and chat events.
            await viewer.until(lambda f, r=fin["runId"]: _finished(f, r))
            started = [p for p in (f["payload"] for f in viewer.events if f.get("event") == "cron")]
            assert any(p["action"] == "started" and p["runId"] == fin["runId"] for p in started)
            agent = run_events(viewer.events, fin["runId"], "agent")
            phases = [p["data"]["phase"] for p in agent if p["stream"] == "lifecycle"]
            assert phases == ["start", "end"], phases
            assert any(p["stream"] == "tool" for p in agent)
            chat = run_events(viewer.events, fin["runId"], "chat")
            assert chat[-1]["state"] == "final" and "5" in chat[-1]["message"]["content"][0]["text"]

        listed = await op.ok("cron.list", {})
        assert listed["total"] == 1 and listed["hasMore"] is False and listed["nextOffset"] is None
        for j in listed["jobs"]:
            assert_valid(openclaw, "CronJob", {k: v for k, v in j.items() if k != "effectiveAgentId"})
        assert listed["jobs"][0]["state"]["lastRunStatus"] == "ok"
        runs = await op.ok("cron.runs", {"id": job["id"]})
        assert runs["total"] >= 2 and runs["entries"][0]["ts"] >= runs["entries"][-1]["ts"]
        for entry in runs["entries"]:
            assert_valid(openclaw, "CronRunLogEntry", entry)
        status = await op.ok("cron.status")
        assert status["enabled"] is True and status["jobs"] == 1 and status["nextWakeAtMs"]

    gw.restart()
    async with Client.open_connected(gw.url) as op:
        again = await op.ok("cron.get", {"id": job["id"]})
        assert again["schedule"] == EVERY_SECOND["schedule"] and again["name"] == "tick"
        (after,) = await wait_finished(op, job["id"], 1, seen)
        assert after["status"] == "ok" and after["runId"] not in {first["runId"], second["runId"]}
        runs = await op.ok("cron.runs", {"id": job["id"], "limit": 200})
        assert runs["total"] >= 3


def _finished(frame: dict[str, Any], run_id: str) -> bool:
    p = frame.get("payload") or {}
    return frame.get("event") == "cron" and p.get("action") == "finished" and p.get("runId") == run_id


async def test_manual_run_is_abortable_and_jobs_can_be_disabled_and_removed(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url) as op:
        spec = {
            **EVERY_SECOND,
            "name": "story",
            "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"},
            "payload": {"kind": "agentTurn", "message": "[long] tell me a story"},
        }
        job = await op.ok("cron.add", spec)
        queued = await op.ok("cron.run", {"id": job["id"]})
        assert queued["ok"] is True and queued["enqueued"] is True
        run_id = queued["runId"]
        await op.until(lambda f: f.get("event") == "agent" and f["payload"].get("runId") == run_id, timeout=15)
        assert (await op.ok("cron.run", {"jobId": job["id"]}))["reason"] == "already-running"
        aborted = await op.ok("chat.abort", {"sessionKey": f"cron:{job['id']}"})
        assert aborted["runIds"] == [run_id]
        fin = await op.until(lambda f: _finished(f, run_id), timeout=15)
        assert fin["payload"]["status"] == "error" and "aborted" in fin["payload"]["error"]
        chat = run_events(op.events, run_id, "chat")
        assert chat[-1]["state"] == "aborted"

        due = await op.ok("cron.run", {"id": job["id"], "mode": "due"})
        assert due == {"ok": True, "ran": False, "reason": "not-due"}
        updated = await op.ok("cron.update", {"id": job["id"], "patch": {"enabled": False, "name": "paused"}})
        assert updated["enabled"] is False and updated["name"] == "paused" and "nextRunAtMs" not in updated["state"]
        assert (await op.ok("cron.list", {}))["jobs"] == []
        assert [j["id"] for j in (await op.ok("cron.list", {"includeDisabled": True}))["jobs"]] == [job["id"]]
        skipped = await op.ok("cron.run", {"id": job["id"], "mode": "if-enabled"})
        assert skipped == {"ok": True, "ran": False, "reason": "disabled"}

        assert await op.ok("cron.remove", {"id": job["id"]}) == {"ok": True, "removed": True}
        await op.until(cron_event("removed", job["id"]))
        gone = await op.call("cron.get", {"id": job["id"]})
        assert not gone["ok"] and gone["error"]["code"] == "INVALID_REQUEST"
        assert gone["error"]["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": job["id"]}
        assert gone["error"]["message"].startswith(f"cron job not found: {job['id']}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": {"kind": "stream", "command": ["tail"]}}, "schedule kind 'stream' is not supported"),
        ({"schedule": {"kind": "every", "everyMs": 10}}, "at least 1000"),
        ({"schedule": {"kind": "cron", "expr": "not a cron"}}, "5 or 6 fields"),
        ({"payload": {"kind": "command", "argv": ["ls"]}}, "payload kind 'command' is not supported"),
        ({"payload": {"kind": "agentTurn", "message": "x", "model": "gpt"}}, "payload.model is not supported"),
        ({"trigger": {"script": "json({fire:true})"}}, "trigger is not supported"),
        ({"delivery": {"mode": "webhook", "to": "http://x"}}, "'webhook' is not supported"),
        ({"sessionTarget": "elsewhere"}, "sessionTarget"),
    ],
)
async def test_bad_jobs_get_clear_errors(gateway: GatewayProc, change: dict[str, Any], message: str) -> None:
    async with Client.open_connected(gateway.url) as op:
        res = await op.call("cron.add", {**EVERY_SECOND, **change})
        assert not res["ok"] and res["error"]["code"] == "INVALID_REQUEST", res
        assert message in res["error"]["message"], res["error"]["message"]
        assert (await op.ok("cron.status"))["jobs"] == 0


async def test_cron_needs_admin_to_change_and_read_to_list(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url, scopes=["operator.read", "operator.write"]) as op:
        denied = await op.call("cron.add", EVERY_SECOND)
        assert not denied["ok"] and denied["error"]["code"] == "FORBIDDEN"
        assert (await op.ok("cron.list", {}))["jobs"] == []
        missing = await op.call("cron.runs", {"id": "no-such-job"})
        assert missing["error"]["details"]["code"] == "CRON_JOB_NOT_FOUND"
