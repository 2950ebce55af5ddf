"""Run the seed's MyAgent files unchanged: ``import myagent`` resolves to agenthub, in agenthub's runner only.

Seed 003's server code imports ``myagent``, ``myagent.ws.server`` and
``myagent.tool``. agenthub does not install a top-level ``myagent`` package:
that import name belongs to the MyAgent project itself (a user of the seed
may well have it installed) and to unrelated PyPI projects, and shipping a
second one would shadow theirs, or be shadowed, depending on install order.
Instead ``install()`` puts a finder first on ``sys.meta_path`` that maps those
names onto ``agenthub.myagent``, and only the commands that run a seed file
call it (``agenthub myagent run SCRIPT``, ``agenthub myagent server FILE``,
``agenthub serve-agent FILE``). Outside them ``import myagent`` is whatever
the environment has. A ``myagent`` module the layer does not provide fails to
import with a message that says so.

The runner may override where the script's ``AgentWebSocketServer`` listens
(``--port``, ``--host``) and what it uses (``--data-dir``, ``--provider``,
``--dev``): the seed's server hard-codes ``localhost:8080``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from . import agent as _agent
from . import server as _server
from . import tool as _tool

__all__ = ["MODULES", "AgentWebSocketServer", "install", "overrides", "uninstall"]

# Settings the runner's options impose on every AgentWebSocketServer the script creates.
overrides: dict[str, Any] = {}


class AgentWebSocketServer(_server.AgentWebSocketServer):
    """The seed's ``AgentWebSocketServer``, with the runner's overrides applied, announcing where it serves."""

    def __init__(
        self, agent_factory_func: Any, host: str = "localhost", port: int = 8080, *args: Any, **kw: Any
    ) -> None:
        host = overrides.get("host", host)
        port = overrides.get("port", port)
        for name in ("data_dir", "provider", "dev"):
            if name in overrides:
                kw[name] = overrides[name]
        super().__init__(agent_factory_func, host, port, *args, **kw)

    async def start(self) -> None:
        await super().start()
        gateway = self.gateway
        scheme = gateway.scheme if gateway is not None else "ws"
        print(f"agenthub myagent: serving on {scheme}://{self.host}:{self.port}", flush=True)


def _module(name: str, doc: str, package: bool, **names: Any) -> types.ModuleType:
    module = types.ModuleType(name, doc)
    if package:
        module.__path__ = []
    module.__dict__.update(names)
    module.__all__ = sorted(names)  # type: ignore[attr-defined]
    return module


def _modules() -> dict[str, types.ModuleType]:
    tools = {"BaseTool": _tool.BaseTool, "ToolError": _tool.ToolError, "ToolResult": _tool.ToolResult}
    agents = {"ToolCallAgent": _agent.ToolCallAgent, "create_toolcall_agent": _agent.create_toolcall_agent}
    server = {"AgentWebSocketServer": AgentWebSocketServer}
    doc = "agenthub's MyAgent compatibility layer (agenthub.myagent.compat)"
    return {
        "myagent": _module("myagent", doc, True, **tools, **agents, **server),
        "myagent.tool": _module("myagent.tool", doc, False, **tools),
        "myagent.agent": _module("myagent.agent", doc, False, **agents),
        "myagent.ws": _module("myagent.ws", doc, True, **server),
        "myagent.ws.server": _module("myagent.ws.server", doc, False, **server),
    }


MODULES = tuple(_modules())


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the ``myagent`` names from agenthub and refuses every other ``myagent.*`` clearly."""

    def __init__(self) -> None:
        self.modules = _modules()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "myagent" and not fullname.startswith("myagent."):
            return None
        if fullname not in self.modules:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: agenthub's MyAgent compatibility layer provides "
                f"{', '.join(MODULES)} (see the README, MyAgent)",
                name=fullname,
            )
        module = self.modules[fullname]
        return importlib.machinery.ModuleSpec(fullname, self, is_package=hasattr(module, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        """The modules are built complete: nothing to run."""


_installed: _Finder | None = None


def install(**runner_overrides: Any) -> None:
    """Make ``import myagent...`` resolve to agenthub in this process (first on ``sys.meta_path``)."""
    global _installed
    overrides.clear()
    overrides.update({k: v for k, v in runner_overrides.items() if v is not None})
    if _installed is None:
        for name in [n for n in sys.modules if n == "myagent" or n.startswith("myagent.")]:
            del sys.modules[name]  # a real myagent imported earlier must not answer for the seed file
        _installed = _Finder()
        sys.meta_path.insert(0, _installed)
    importlib.invalidate_caches()


def uninstall() -> None:
    """Undo ``install()`` (tests)."""
    global _installed
    if _installed is not None:
        sys.meta_path.remove(_installed)
        _installed = None
        for name in [n for n in sys.modules if n == "myagent" or n.startswith("myagent.")]:
            del sys.modules[name]
    overrides.clear()
