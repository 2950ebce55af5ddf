"""``diagnostics.stability``: OpenClaw's recent diagnostic events (``openclaw status --all`` reads it).

agenthub keeps no diagnostic event recorder (its counters are on ``/metrics``),
so the snapshot is truthfully empty: no capacity, no events, nothing dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...protocol.methods import DiagnosticsStabilityParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    async def stability(call: Call, p: DiagnosticsStabilityParams) -> Any:
        return {
            "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "capacity": 0,
            "count": 0,
            "dropped": 0,
            "events": [],
            "summary": {"byType": {}},
        }

    ctx.node.dispatcher.register("diagnostics.stability", stability)
