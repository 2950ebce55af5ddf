"""The in-memory log behind logs.tail: bounded in bytes, tailed with a byte cursor."""

from __future__ import annotations

import json
import logging

from agenthub.core.logbuffer import LogBuffer


def lines(buf: LogBuffer, n: int) -> None:
    for i in range(n):
        buf.append(f"line-{i:03d}")


def test_tail_without_cursor_returns_the_newest_lines() -> None:
    buf = LogBuffer(max_bytes=10_000)
    lines(buf, 10)
    tail = buf.tail(None, limit=3, max_bytes=10_000)
    assert tail.lines == ["line-007", "line-008", "line-009"]
    assert tail.cursor == tail.size == 10 * len("line-000\n")
    assert tail.truncated and not tail.reset


def test_cursor_follows_new_lines() -> None:
    buf = LogBuffer(max_bytes=10_000)
    lines(buf, 2)
    first = buf.tail(None, limit=100, max_bytes=10_000)
    assert buf.tail(first.cursor, limit=100, max_bytes=10_000).lines == []
    buf.append("fresh")
    follow = buf.tail(first.cursor, limit=100, max_bytes=10_000)
    assert follow.lines == ["fresh"] and follow.cursor == follow.size


def test_a_slow_follower_is_told_what_it_skipped() -> None:
    buf = LogBuffer(max_bytes=40)  # four 9-byte lines
    lines(buf, 3)
    cursor = buf.tail(None, limit=1, max_bytes=10_000).cursor
    lines(buf, 10)
    tail = buf.tail(cursor - 9 * 3, limit=100, max_bytes=10_000)
    assert tail.skipped_bytes > 0 and tail.lines[-1] == "line-009"
    assert sum(len(x) + 1 for x in buf.tail(None, limit=100, max_bytes=10_000).lines) <= 40


def test_a_cursor_from_another_process_resets() -> None:
    buf = LogBuffer()
    lines(buf, 1)
    tail = buf.tail(10**9, limit=10, max_bytes=10_000)
    assert tail.reset and tail.lines == ["line-000"]


def test_limits_apply_in_lines_and_bytes() -> None:
    buf = LogBuffer()
    lines(buf, 20)
    assert len(buf.tail(0, limit=5, max_bytes=10_000).lines) == 5
    assert len(buf.tail(0, limit=100, max_bytes=30).lines) == 3  # 3 * 9 bytes


def test_records_become_openclaw_json_lines_and_debug_stays_out() -> None:
    buf = LogBuffer()
    log = logging.getLogger("agenthub.test.logbuffer")
    log.setLevel(logging.DEBUG)
    log.addHandler(buf)
    try:
        log.debug("a message body")
        log.info("run %s started", "r1")
    finally:
        log.removeHandler(buf)
    (only,) = buf.tail(None, limit=10, max_bytes=10_000).lines
    record = json.loads(only)
    assert record["level"] == "info" and record["message"] == "run r1 started"
    assert record["subsystem"] == "agenthub.test.logbuffer" and record["time"].endswith("+00:00")
    assert buf.view(buf.tail(None, 10, 10_000))["file"]
