"""The pure parts of scheduling: next-run math, schedule validation, the silent-reply rule, queues, templates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agenthub.agents.canvas import CanvasWriteTool, confined_path
from agenthub.core.heartbeat import SystemEventQueue, classify_reply, heartbeat_message
from agenthub.core.schedules import Job, ScheduleError, first_run_ms, next_run_ms, parse_at_ms, validate_schedule
from agenthub.web.hooks import render_template


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_every_keeps_its_phase_from_the_anchor() -> None:
    sched = {"kind": "every", "everyMs": 1000}
    assert next_run_ms(sched, 10_500, anchor_ms=10_000) == 11_000
    assert next_run_ms(sched, 11_000, anchor_ms=10_000) == 12_000  # strictly after
    assert next_run_ms(sched, 5_000, anchor_ms=10_000) == 10_000
    assert next_run_ms({**sched, "anchorMs": 300}, 10_500, anchor_ms=10_000) == 11_300


def test_at_runs_once_and_offsetless_times_are_utc() -> None:
    at = {"kind": "at", "at": "2027-02-01T16:00:00"}
    when = ms("2027-02-01T16:00:00")
    assert parse_at_ms("2027-02-01T16:00:00Z") == when
    assert parse_at_ms(str(when)) == when
    assert next_run_ms(at, when - 1) == when
    assert next_run_ms(at, when) is None
    assert first_run_ms(at, when + 60_000) == when  # a past one-shot runs at once
    with pytest.raises(ScheduleError, match="ISO 8601"):
        parse_at_ms("tomorrow-ish")


def test_cron_five_and_six_fields_and_time_zones() -> None:
    start = ms("2026-03-10T06:59:30")
    daily = {"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"}
    assert next_run_ms(daily, start) == ms("2026-03-10T07:00:00")
    paris = {"kind": "cron", "expr": "0 7 * * *", "tz": "Europe/Paris"}  # UTC+1 in March before DST
    assert next_run_ms(paris, start) == ms("2026-03-11T06:00:00")
    every_second = {"kind": "cron", "expr": "* * * * * *", "tz": "UTC"}  # six fields: seconds first
    assert next_run_ms(every_second, start) == start + 1000
    every_ten = {"kind": "cron", "expr": "*/10 * * * * *", "tz": "UTC"}
    assert next_run_ms(every_ten, start + 1) == ms("2026-03-10T06:59:40")


def test_cron_stagger_is_stable_per_job_and_inside_the_window() -> None:
    sched = {"kind": "cron", "expr": "0 * * * *", "tz": "UTC", "staggerMs": 300_000}
    start = ms("2026-03-10T06:30:00")
    a = next_run_ms(sched, start, job_id="job-a")
    assert a is not None and ms("2026-03-10T07:00:00") <= a < ms("2026-03-10T07:05:00")
    assert next_run_ms(sched, start, job_id="job-a") == a
    assert next_run_ms(sched, a, job_id="job-a") == a + 3_600_000


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"kind": "cron", "expr": "61 * * * *"}, "invalid cron expression"),
        ({"kind": "cron", "expr": "* * *"}, "5 or 6 fields"),
        ({"kind": "cron", "expr": "0 7 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"kind": "cron", "expr": "0 0 30 2 *", "tz": "UTC"}, "never fires"),
        ({"kind": "cron", "expr": "* * * * * *", "tz": "UTC"}, "more often"),
        ({"kind": "every", "everyMs": 10}, "at least 2000"),
        ({"kind": "at", "at": "soon"}, "ISO 8601"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(schedule: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(schedule, ms("2026-03-10T06:00:00"), 2000)


def test_job_round_trips_through_its_definition() -> None:
    job = Job("j1", "n", {"kind": "every", "everyMs": 5000}, "isolated", {"kind": "agentTurn", "message": "m"}, 1, 2)
    job.state["nextRunAtMs"] = 7
    again = Job.from_definition(job.definition(), job.state)
    assert again.view() == job.view()
    assert "state" not in job.definition() and job.view()["state"] == {"nextRunAtMs": 7}


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("HEARTBEAT_OK", "ok-token"),
        ("  **HEARTBEAT_OK**  ", "ok-token"),
        ("HEARTBEAT_OK all quiet here", "ok-token"),
        ("Nothing new. HEARTBEAT_OK", "ok-token"),
        ("NO_REPLY", "ok-token"),
        ("", "ok-empty"),
        ("Disk is 95% full on db-1.", "alert"),
        ("The HEARTBEAT_OK token in the middle means nothing.", "alert"),
        ("HEARTBEAT_OK " + "x" * 301, "alert"),
    ],
)
def test_the_silent_reply_rule(reply: str, status: str) -> None:
    assert classify_reply(reply, 300).status == status


def test_an_overlong_acknowledgment_delivers_the_rest() -> None:
    reply = classify_reply("HEARTBEAT_OK " + "y" * 400, 300)
    assert reply.status == "alert" and reply.text == "y" * 400


def test_system_event_queue_is_bounded_and_coalesces() -> None:
    q = SystemEventQueue(max_events=3, max_chars=5, max_sessions=2)
    assert q.push("main", "one") == "queued"
    assert q.push("main", "one") == "coalesced"
    for text in ("two", "three", "four-long-text"):
        q.push("main", text)
    assert q.peek("main") == ["two", "three", "four-"]
    q.take("main", ["two", "three"])
    assert q.peek("main") == ["four-"]
    q.push("a", "x")
    q.push("b", "y")  # a third session evicts the oldest ("main")
    assert q.pending("main") == 0 and q.peek("b") == ["y"]
    assert heartbeat_message("P", ["e1", "e2"]) == "P\n\nSystem: e1\nSystem: e2"
    assert heartbeat_message("P", []) == "P"


def test_hook_templates() -> None:
    scope = {"payload": {"a": {"b": [{"c": "deep"}]}, "n": 3, "o": {"k": 1}}, "headers": {"x-kind": "push"}}
    assert render_template("{{payload.a.b[0].c}}/{{a.b[0].c}}", scope) == "deep/deep"
    assert render_template("{{ n }} {{o}} {{missing.x}}|{{headers.x-kind}}", scope) == '3 {"k":1} |push'


async def test_canvas_paths_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "canvas"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    (root / "link").symlink_to(tmp_path)
    assert confined_path(root, "a/b.html") == (root / "a/b.html").resolve()
    assert confined_path(root, "/index.html") == (root / "index.html").resolve()
    for bad in ("../secret.txt", "a/../../secret.txt", "link/secret.txt"):
        assert confined_path(root, bad) is None, bad
    tool = CanvasWriteTool(root, max_bytes=100)
    assert await tool.call({"path": "pages/x.html", "content": "<p>hi</p>"}) == {"path": "/pages/x.html", "bytes": 9}
    assert (root / "pages/x.html").read_text() == "<p>hi</p>"
    with pytest.raises(ValueError, match="inside the canvas"):
        await tool.call({"path": "../escape.html", "content": "x"})
    with pytest.raises(ValueError, match="larger than"):
        await tool.call({"path": "big.html", "content": "x" * 101})
