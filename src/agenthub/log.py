"""Logging set-up: named loggers per subsystem, text or JSON lines on stdout.

Every record gets the ids of the work in progress (``core.observe.LOG_CONTEXT``:
request, run, connection), so one ``grep`` of a request id follows a run
through the log. In JSON mode every line the gateway writes is one JSON object,
the start-up banner too (``announce``), so a log shipper never meets plain text.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from .core.observe import LOG_CONTEXT
from .protocol import _json

__all__ = ["ContextFilter", "JsonFormatter", "TextFormatter", "announce", "configure"]

_IDS = ("request_id", "run_id", "conn_id")
_format: str = "text"


class ContextFilter(logging.Filter):
    """Copies the current request, run and connection ids onto each record (ids set by ``extra`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = LOG_CONTEXT.get()
        for name in _IDS:
            if not getattr(record, name, ""):
                setattr(record, name, getattr(ctx, name))
        return True


def _ts(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _IDS:
            value = getattr(record, name, "")
            if value:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _json.dumps_str(out)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request_id=... run_id=...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{name}={value}" for name in _IDS if (value := getattr(record, name, ""))]
        if not ids:
            return line
        head, sep, rest = line.partition("\n")  # ids on the message line, before a traceback
        return f"{head} [{' '.join(ids)}]{sep}{rest}"


def configure(fmt: str = "text", level: str = "INFO") -> None:
    global _format
    _format = fmt
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings become log lines (JSON in JSON mode), not bare stderr text
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO; a Telegram Bot API URL holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def announce(message: str, *, level: str = "info", stream: TextIO | None = None) -> None:
    """A line the operator must see whatever the log level (the ready banner, a refusal to start).

    Plain text in text mode; in JSON mode the same object shape as every other log line.
    """
    out = stream or sys.stdout
    if _format == "json":
        now = time.time()
        line = _json.dumps_str({"ts": _ts(now, (now % 1) * 1000), "level": level, "logger": "agenthub", "msg": message})
    else:
        line = message
    print(line, file=out, flush=True)
