"""The gateway API's method handlers, one module per method family (as OpenClaw groups them).

Each handler has the one shape ``async (call, params) -> payload`` and raises
``RpcError``; none knows which dialect or socket the call came from. Each family
module has ``register(ctx)``; ``register_handlers`` registers them all.
Pairing, nodes and approvals register theirs beside their services
(``core.pairing``, ``core.nodes``, ``core.approvals``).
"""

from __future__ import annotations

from ..node import Node
from ..scheduler import Scheduler
from . import (
    agent,
    agents,
    channels,
    chat,
    chat_views,
    commands,
    config,
    cron,
    diagnostics,
    logs,
    models,
    questions,
    sessions,
    skills,
    system,
    system_events,
    tools,
    update,
    usage,
)
from ._context import ApiContext, ConfigService
from .chat import HELP_TEXT
from .sessions import DEFAULT_SESSION

__all__ = ["DEFAULT_SESSION", "HELP_TEXT", "ApiContext", "ConfigService", "register_handlers"]

FAMILIES = (
    system,
    agent,
    agents,
    chat,
    chat_views,
    commands,
    sessions,
    config,
    logs,
    models,
    questions,
    update,
    diagnostics,
    usage,
    skills,
    tools,
    cron,
    system_events,
    channels,
)


def register_handlers(node: Node, config_service: ConfigService, scheduler: Scheduler | None = None) -> ApiContext:
    ctx = ApiContext(node, config_service, scheduler)
    for family in FAMILIES:
        family.register(ctx)
    return ctx
