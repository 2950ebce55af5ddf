"""``config.get|set|patch``: the effective settings, owned by the config service outside core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ... import __version__
from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import ConfigPatchParams, ConfigSetParams, EmptyParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def _actor(call: Call) -> str:
    """Who changed the config, for the security log (never a credential)."""
    return f"connection {call.conn.conn_id} from {call.conn.remote_ip}"


def register(ctx: ApiContext) -> None:
    config = ctx.config

    async def config_get(call: Call, p: EmptyParams) -> Any:
        return config.describe()

    async def config_set(call: Call, p: ConfigSetParams) -> Any:
        new = p.config if p.config is not None else config.parse_raw(p.raw) if p.raw is not None else None
        if new is None:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: config: provide config or raw")
        return await config.replace(new, actor=_actor(call))

    async def config_patch(call: Call, p: ConfigPatchParams) -> Any:
        patch = p.patch if p.patch is not None else config.parse_raw(p.raw) if p.raw is not None else None
        if patch is None:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: patch: provide patch or raw")
        return await config.patch(patch, actor=_actor(call))

    async def config_schema(call: Call, p: EmptyParams) -> Any:
        return {
            "schema": config.schema(),
            "uiHints": {},
            "version": __version__,
            "generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }

    d = ctx.node.dispatcher
    d.register("config.schema", config_schema)
    d.register("config.get", config_get)
    d.register("config.set", config_set)
    d.register("config.patch", config_patch)
