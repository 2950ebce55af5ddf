"""``AgentWebSocketServer``: the MyAgent server API (seed 003) on top of the agenthub gateway.

It starts a gateway whose MyAgent listener serves ``host:port`` and calls
``agent_factory_func()`` once per session. The gateway's own native listener
runs on a free loopback port (``gateway_port``), so operator clients can watch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..app import Gateway

__all__ = ["AgentWebSocketServer"]

log = logging.getLogger(__name__)


class AgentWebSocketServer:
    def __init__(
        self,
        agent_factory_func: Callable[[], Any],
        host: str = "localhost",
        port: int = 8080,
        state_secret_key: str | None = None,
        *,
        data_dir: str | None = None,
        provider: str | None = None,
        dev: bool = False,
        gateway_port: int = 0,
        confirm_timeout_s: float | None = None,
    ) -> None:
        self.agent_factory_func = agent_factory_func
        self.host = host
        self.port = port
        myagent: dict[str, Any] = {"port": port, "host": host}
        if state_secret_key is not None:
            myagent["state_secret_key"] = state_secret_key
        if confirm_timeout_s is not None:
            myagent["confirm_timeout_s"] = confirm_timeout_s
        self.overrides: dict[str, Any] = {"host": "127.0.0.1", "port": gateway_port, "myagent": myagent, "dev": dev}
        if data_dir is not None:
            self.overrides["data_dir"] = data_dir
        if provider is not None:
            self.overrides["provider"] = provider
        self.gateway: Gateway | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Start listening and return; ``self.port`` is then the bound MyAgent port."""
        gateway = Gateway({}, self.overrides, edge_options={"myagent.agent_factory": self.agent_factory_func})
        await gateway.__aenter__()
        self.gateway = gateway
        if gateway.edge is not None:
            self.port = gateway.edge.bound.get("myagent", self.port)
        log.info("MyAgent server on %s://%s:%d", gateway.scheme, self.host, self.port)

    async def start_server(self) -> None:
        """Start, then serve until ``shutdown()``; cancelled (Ctrl+C under ``asyncio.run``), it shuts down first."""
        self._stopped.clear()
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            if self.gateway is not None:
                await self.shutdown()

    async def shutdown(self) -> None:
        gateway, self.gateway = self.gateway, None
        if gateway is not None:
            await gateway.__aexit__(None, None, None)
        self._stopped.set()
