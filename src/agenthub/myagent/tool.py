"""MyAgent-style tools: subclass ``BaseTool``, implement ``execute(**kwargs) -> ToolResult``.

A ``BaseTool`` is also a core ``Tool`` (``call(args)``), so any provider can use
it. ``user_confirm = True`` makes the gateway ask the user (``agent.user_confirm``)
before each call. ``match(message)`` is the offline planner hook the demo
provider uses: return arguments when the tool applies to the message, else None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["BaseTool", "ToolError", "ToolResult"]


@dataclass(slots=True)
class ToolResult:
    output: Any = None
    error: str | None = None


class ToolError(RuntimeError):
    """A tool reported ``ToolResult(error=...)``; the model sees it as an error result."""


class BaseTool:
    name: str = ""
    description: str = ""
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    user_confirm: ClassVar[bool] = False

    async def execute(self, **kwargs: Any) -> ToolResult:
        raise NotImplementedError(f"{type(self).__name__}.execute")

    async def call(self, args: Mapping[str, Any]) -> Any:
        """The core ``Tool`` entry point: run ``execute`` and unwrap its result."""
        result = await self.execute(**dict(args))
        if isinstance(result, ToolResult):
            if result.error:
                raise ToolError(result.error)
            return result.output
        return result

    def match(self, message: str) -> dict[str, Any] | None:
        """Arguments for this tool if the message calls for it (offline planning); by default, its name."""
        return {} if self.name and self.name.lower() in message.lower() else None
