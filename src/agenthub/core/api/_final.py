"""The final ``agent`` response in OpenClaw's shape: ``result.payloads`` carries the reply.

OpenClaw's CLI prints ``result.payloads[].text`` of the second ``agent``
response (``openclaw agent --message``); without it the command prints nothing.
agenthub keeps its own fields (``summary``, ``startedAt``, ``endedAt``) beside it.
"""

from __future__ import annotations

from typing import Any

from ..runs import Run
from ..store import RunRecord

__all__ = ["agent_final", "agent_final_from_record"]


def _result(text: str, started_ms: int | None, ended_ms: int | None, status: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"aborted": status == "aborted"}
    if started_ms is not None and ended_ms is not None:
        meta["durationMs"] = max(0, ended_ms - started_ms)
    payloads = [{"text": text, "mediaUrl": None}] if text else []
    return {"payloads": payloads, "meta": meta}


def agent_final(run: Run) -> dict[str, Any]:
    """``run.result()`` plus OpenClaw's ``result`` (the whole reply, not the 500-character summary)."""
    out = run.result()
    out["result"] = _result(run.text, run.started_ms, run.ended_ms, run.status.value)
    return out


def agent_final_from_record(record: RunRecord, text: str | None) -> dict[str, Any]:
    """The same for a run that finished before a restart; ``text`` is its stored reply, if any."""
    out: dict[str, Any] = {"runId": record.run_id, "status": record.status, "summary": record.summary or ""}
    if record.error:
        out["error"] = record.error
    if record.status == "timeout":
        out["stopReason"] = "timeout"
    out["result"] = _result(
        text if text is not None else record.summary or "", record.started_ms, record.ended_ms, record.status
    )
    return out
