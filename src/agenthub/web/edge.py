"""What an edge module (a dialect's routes, the UI, REST) gets to mount itself.

``app.py`` builds one ``Edge`` and calls each module's ``mount(edge)``; a module
adds routes to ``edge.app`` (the main listener) or adds its own listener to
``edge.listeners`` (e.g. ``--agentbox-port``). Modules never import ``app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..core.node import Node
from ..core.scheduler import Scheduler
from ..core.store import Store
from .ws import FrameCounters

__all__ = ["Edge", "Listener"]


@dataclass(slots=True)
class Listener:
    """An extra port served by its own aiohttp application.

    ``also_origin`` lets browser pages of other origins open sockets on this
    port, beyond the gateway's allow-list (the MyAgent port in ``--dev``).
    """

    app: web.Application
    host: str
    port: int
    name: str
    also_origin: Callable[[str], bool] | None = None


@dataclass(slots=True)
class Edge:
    node: Node
    store: Store
    settings: Any  # agenthub.config.GatewaySettings (typed loosely: web never imports config)
    config: Any  # core.api.ConfigService
    counters: FrameCounters
    app: web.Application
    listeners: list[Listener] = field(default_factory=list)
    bound: dict[str, int] = field(default_factory=dict)  # listener name -> port actually bound
    # Embedding hooks for edge modules, keyed "<module>.<name>" (e.g. "myagent.agent_factory").
    options: dict[str, Any] = field(default_factory=dict)
    # Cron jobs, heartbeats and system events (web/hooks.py wakes the agent through it).
    scheduler: Scheduler | None = None
