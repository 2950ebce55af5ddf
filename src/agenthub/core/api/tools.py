"""``tools.catalog``: the tools a run of agenthub's agent may call right now.

That is the built-in tools plus one tool per command of each connected node
(``core.approvals.node_tools``), the same list a run is given.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import ToolsCatalogParams
from ..rpc import Call
from ..runs import Run
from ..sessions import DEFAULT_AGENT_ID
from ._context import ApiContext

__all__ = ["register"]

_PROFILES = [{"id": "full", "label": "Full"}]


def register(ctx: ApiContext) -> None:
    async def tools_catalog(call: Call, p: ToolsCatalogParams) -> Any:
        # The run manager's tool factory takes the run it equips; the catalog is the same for any run.
        tools = ctx.runs.tools(Run("tools.catalog", "", "", "catalog", 0))
        entries = [
            {
                "id": t.name,
                "label": t.name,
                "description": t.description,
                "source": "core",
                "defaultProfiles": ["full"],
            }
            for t in tools
        ]
        return {
            "agentId": p.agentId or DEFAULT_AGENT_ID,
            "profiles": _PROFILES,
            "groups": [{"id": "agenthub", "label": "agenthub", "source": "core", "tools": entries}],
        }

    ctx.node.dispatcher.register("tools.catalog", tools_catalog)
