"""``models.list``: the model agenthub runs, as OpenClaw's model catalog shows models.

agenthub runs exactly one model, the configured provider's; it keeps no catalog
of others. The entry is ``available`` when the provider can be called: the demo
provider always, a hosted one only when its API key is set (else
``missing-auth``, as OpenClaw reports it). Context windows and prices are not
known to agenthub and are left out.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import ModelsListParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["PUBLISHED_MODEL_CATALOG", "register"]

# hello-ok features.capabilities entry that `openclaw models list` requires before it calls models.list.
PUBLISHED_MODEL_CATALOG = "published-model-catalog"


def register(ctx: ApiContext) -> None:
    def entry() -> dict[str, Any]:
        provider, model = ctx.model_ref()
        public = ctx.config.public()
        section = public.get(provider)
        needs_key = isinstance(section, dict) and "api_key" in section
        available = not needs_key or bool(isinstance(section, dict) and section.get("api_key"))
        out: dict[str, Any] = {
            "id": model,
            "name": model,
            "provider": provider,
            "available": available,
            "supportsTools": True,
            "input": ["text"],
        }
        if not available:
            out["unavailableReason"] = "missing-auth"
        return out

    async def models_list(call: Call, p: ModelsListParams) -> Any:
        return {"models": [entry()]}

    ctx.node.dispatcher.register("models.list", models_list)
    ctx.node.capabilities.add(PUBLISHED_MODEL_CATALOG)
