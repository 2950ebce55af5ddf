"""Scheduled jobs as data: the job record, its OpenClaw wire view, and when it runs next.

Pure functions and a dataclass; no asyncio, no clock (times are passed in as
epoch milliseconds), so every rule here is a unit test. Cron expressions are
parsed and iterated by ``croniter``, never by hand: five fields, or six with
seconds first (OpenClaw's croner convention), in the job's ``tz`` or the host's
local zone.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter
from dateutil.tz import tzlocal

__all__ = ["Job", "ScheduleError", "first_run_ms", "next_run_ms", "parse_at_ms", "validate_schedule"]


class ScheduleError(ValueError):
    """A schedule that cannot be honoured: bad expression, bad zone, too frequent."""


@dataclass(slots=True)
class Job:
    """One scheduled job: its definition (OpenClaw's ``CronJob`` fields) and its runtime ``state``."""

    id: str
    name: str
    schedule: dict[str, Any]
    session_target: str
    payload: dict[str, Any]
    created_ms: int
    updated_ms: int
    enabled: bool = True
    wake_mode: str = "now"
    delivery: dict[str, Any] | None = None
    description: str | None = None
    display_name: str | None = None
    delete_after_run: bool | None = None
    session_key: str | None = None
    agent_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The stored definition (everything but ``state``), in wire names."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "createdAtMs": self.created_ms,
            "updatedAtMs": self.updated_ms,
            "schedule": self.schedule,
            "sessionTarget": self.session_target,
            "wakeMode": self.wake_mode,
            "payload": self.payload,
        }
        for key, value in (
            ("delivery", self.delivery),
            ("description", self.description),
            ("displayName", self.display_name),
            ("deleteAfterRun", self.delete_after_run),
            ("sessionKey", self.session_key),
            ("agentId", self.agent_id),
        ):
            if value is not None:
                out[key] = value
        return out

    def view(self) -> dict[str, Any]:
        """OpenClaw's ``CronJob``: the definition plus ``state`` (for cron.list, cron.get and events)."""
        return {**self.definition(), "state": dict(self.state)}

    @classmethod
    def from_definition(cls, d: dict[str, Any], state: dict[str, Any] | None = None) -> Job:
        return cls(
            id=d["id"],
            name=d["name"],
            schedule=d["schedule"],
            session_target=d["sessionTarget"],
            payload=d["payload"],
            created_ms=int(d["createdAtMs"]),
            updated_ms=int(d["updatedAtMs"]),
            enabled=bool(d.get("enabled", True)),
            wake_mode=d.get("wakeMode", "now"),
            delivery=d.get("delivery"),
            description=d.get("description"),
            display_name=d.get("displayName"),
            delete_after_run=d.get("deleteAfterRun"),
            session_key=d.get("sessionKey"),
            agent_id=d.get("agentId"),
            state=dict(state or {}),
        )


def parse_at_ms(at: str) -> int:
    """An ISO 8601 instant (offset-less means UTC, as in OpenClaw) or epoch milliseconds."""
    text = at.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"schedule.at: not an ISO 8601 time: {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _zone(tz: str | None) -> tzinfo:
    if not tz:
        return tzlocal()  # the host's zone, with its DST rules
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"schedule.tz: unknown time zone {tz!r}") from None


def _croniter(expr: str, tz: str | None, start_ms: int) -> croniter:
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(f"schedule.expr: expected 5 or 6 fields, got {len(fields)}")
    start = datetime.fromtimestamp(start_ms / 1000, _zone(tz))
    try:
        return croniter(" ".join(fields), start, second_at_beginning=len(fields) == 6)
    except (CroniterBadCronError, CroniterNotAlphaError, ValueError, KeyError) as exc:
        raise ScheduleError(f"schedule.expr: invalid cron expression {expr!r}: {exc}") from None


def _stagger_ms(job_id: str, window_ms: int | None) -> int:
    """A fixed offset inside the stagger window, derived from the job id (same every restart)."""
    if not window_ms:
        return 0
    digest = hashlib.sha256(job_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % window_ms


def next_run_ms(schedule: dict[str, Any], after_ms: int, *, job_id: str = "", anchor_ms: int = 0) -> int | None:
    """The first run strictly after ``after_ms``, or None when the schedule has no more runs.

    ``every`` counts whole periods from ``anchorMs`` (default ``anchor_ms``, the
    job's creation), so runs keep their phase across restarts; ``at`` returns its
    instant only while it is still ahead.
    """
    kind = schedule.get("kind")
    if kind == "at":
        at = parse_at_ms(str(schedule["at"]))
        return at if at > after_ms else None
    if kind == "every":
        every = int(schedule["everyMs"])
        anchor = int(schedule.get("anchorMs") or anchor_ms)
        if after_ms < anchor:
            return anchor
        periods = math.floor((after_ms - anchor) / every) + 1
        return anchor + periods * every
    if kind == "cron":
        stagger = _stagger_ms(job_id, schedule.get("staggerMs"))
        it = _croniter(str(schedule["expr"]), schedule.get("tz"), after_ms - stagger)
        try:
            nxt = round(it.get_next(float) * 1000) + stagger
        except CroniterBadDateError:
            return None
        while nxt <= after_ms:  # float rounding at the boundary
            nxt = round(it.get_next(float) * 1000) + stagger
        return nxt
    raise ScheduleError(f"schedule.kind: unsupported {kind!r}")


def first_run_ms(schedule: dict[str, Any], now_ms: int, *, job_id: str = "", anchor_ms: int = 0) -> int | None:
    """When a new (or re-enabled) job first runs: an ``at`` in the past runs at once."""
    if schedule.get("kind") == "at":
        return parse_at_ms(str(schedule["at"]))
    return next_run_ms(schedule, now_ms, job_id=job_id, anchor_ms=anchor_ms)


def validate_schedule(schedule: dict[str, Any], now_ms: int, min_interval_ms: int) -> None:
    """Refuse what cannot run or runs more often than ``min_interval_ms``; raises ``ScheduleError``."""
    kind = schedule.get("kind")
    if kind == "at":
        parse_at_ms(str(schedule["at"]))
        return
    if kind == "every":
        if int(schedule["everyMs"]) < min_interval_ms:
            raise ScheduleError(f"schedule.everyMs: must be at least {min_interval_ms} (cron.min_interval_ms)")
        return
    if kind == "cron":
        first = next_run_ms(schedule, now_ms)
        if first is None:
            raise ScheduleError(f"schedule.expr: {schedule['expr']!r} never fires")
        second = next_run_ms(schedule, first)
        if second is not None and second - first < min_interval_ms:
            raise ScheduleError(f"schedule.expr: fires more often than every {min_interval_ms} ms")
        return
    raise ScheduleError(f"schedule.kind: unsupported {kind!r}")
