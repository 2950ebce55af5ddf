"""The gateway's recent log, kept in memory for ``logs.tail`` (``openclaw logs``, ``--follow``).

OpenClaw's CLI tails the gateway's log file over RPC with a byte cursor. agenthub
logs to its standard streams instead, so this handler keeps the newest records
(as OpenClaw's JSON log lines: ``time``, ``level``, ``subsystem``, ``message``)
in a ring bounded in bytes, and numbers them with a byte cursor that grows for
the life of the process. A cursor from before the oldest kept line reports the
bytes skipped; one from another process (larger than what was ever logged) asks
the client to start over. Only INFO and above is kept: agenthub never logs
secrets, and logs message bodies only at DEBUG, which stays out of this buffer.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..protocol import _json

__all__ = ["LogBuffer", "LogTail"]


@dataclass(frozen=True, slots=True)
class LogTail:
    lines: list[str]
    cursor: int
    size: int
    truncated: bool = False
    reset: bool = False
    skipped_bytes: int = 0


class LogBuffer(logging.Handler):
    """A ``logging.Handler`` that keeps the newest records, at most ``max_bytes`` of them."""

    def __init__(self, max_bytes: int = 1 << 20, max_line_bytes: int = 16 * 1024) -> None:
        super().__init__(logging.INFO)
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes
        self._lines: deque[tuple[int, str]] = deque()  # (byte offset where the line starts, line)
        self._held = 0  # bytes of the lines kept
        self._end = 0  # byte offset after the newest line: every byte ever logged here
        self._guard = threading.Lock()  # records come from any thread (the store's, executors)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            line = _json.dumps_str(
                {
                    "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                    "level": record.levelname.lower(),
                    "subsystem": record.name,
                    "message": message[: self.max_line_bytes],
                }
            )
        except Exception:  # a broken record must not break the code that logged it
            self.handleError(record)
            return
        self.append(line)

    def append(self, line: str) -> None:
        size = len(line.encode()) + 1  # the newline of a log file
        with self._guard:
            self._lines.append((self._end, line))
            self._end += size
            self._held += size
            while self._held > self.max_bytes and len(self._lines) > 1:
                _, old = self._lines.popleft()
                self._held -= len(old.encode()) + 1

    def tail(self, cursor: int | None, limit: int, max_bytes: int) -> LogTail:
        """Lines after ``cursor`` (the newest ones when None), at most ``limit`` lines and ``max_bytes``."""
        with self._guard:
            lines = list(self._lines)
            end = self._end
        if cursor is None or cursor > end:
            picked: list[str] = []
            used = 0
            for _, line in reversed(lines):
                size = len(line.encode()) + 1
                if len(picked) >= limit or used + size > max_bytes:
                    break
                picked.append(line)
                used += size
            picked.reverse()
            truncated = len(picked) < len(lines)
            return LogTail(picked, end, end, truncated=truncated, reset=cursor is not None)
        first = lines[0][0] if lines else end
        skipped = max(0, first - cursor)
        out: list[str] = []
        used = 0
        next_cursor = max(cursor, first)
        for start, line in lines:
            if start < cursor:
                continue
            size = len(line.encode()) + 1
            if len(out) >= limit or used + size > max_bytes:
                break
            out.append(line)
            used += size
            next_cursor = start + size
        truncated = next_cursor < end
        return LogTail(out, next_cursor, end, truncated=truncated, skipped_bytes=skipped)

    def view(self, tail: LogTail) -> dict[str, Any]:
        out: dict[str, Any] = {"file": "agenthub (in memory)", "cursor": tail.cursor, "size": tail.size}
        out["lines"] = tail.lines
        if tail.truncated:
            out["truncated"] = True
        if tail.reset:
            out["reset"] = True
        if tail.skipped_bytes:
            out["skippedBytes"] = tail.skipped_bytes
        return out
