"""``create_toolcall_agent``: a tool-calling agent that runs through the gateway core.

The agent is a spec (tools, name, description). ``runtime(base)`` adapts it to
the configured provider: real providers get the tools with the turn and call
them themselves; the offline ``demo`` provider plans with each tool's
``match(message)`` hook, calls the matching tools, and answers from their output.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.runtime import AgentEvent, AgentRuntime, TextDelta, Thinking, Tool, ToolCallResult, ToolCallStart, Turn
from ..protocol import _json

__all__ = ["ToolCallAgent", "ToolCallRuntime", "create_toolcall_agent"]


@dataclass(slots=True)
class ToolCallAgent:
    tools: Sequence[Tool] = field(default_factory=list)
    name: str = "agent"
    description: str = ""

    def runtime(self, base: AgentRuntime) -> AgentRuntime:
        return ToolCallRuntime(self, base)


def create_toolcall_agent(
    tools: Sequence[Tool] | None = None, name: str = "agent", description: str = "", **_ignored: Any
) -> ToolCallAgent:
    """An agent with these tools; extra MyAgent options (system prompts, models) are accepted and ignored."""
    return ToolCallAgent(list(tools or []), name, description)


def _planner(tool: Tool) -> Any:
    target = getattr(tool, "tool", tool)  # the gateway may wrap a tool (user confirmation)
    return getattr(target, "match", None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json.dumps_str(value)


class ToolCallRuntime:
    """The ``AgentRuntime`` of a ``ToolCallAgent`` on top of a provider."""

    def __init__(self, agent: ToolCallAgent, base: AgentRuntime) -> None:
        self.agent = agent
        self.base = base
        self.name = f"{agent.name}@{base.name}"

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        if self.base.name != "demo":
            async for event in self.base.run_turn(turn):
                yield event
            return
        plan = []
        for tool in turn.tools:
            match = _planner(tool)
            args = match(turn.message) if callable(match) else None
            if args is not None:
                plan.append((tool, args))
        if not plan:
            async for event in self.base.run_turn(turn):
                yield event
            return
        yield Thinking(f"{self.agent.name}: I will use {', '.join(t.name for t, _ in plan)}. ")
        lines = []
        for n, (tool, args) in enumerate(plan, start=1):
            call_id = f"{turn.run_id}-{n}"
            yield ToolCallStart(call_id, tool.name, args)
            try:
                result, is_error = await tool.call(args), False
            except Exception as exc:
                result, is_error = str(exc) or type(exc).__name__, True
            yield ToolCallResult(call_id, tool.name, result, is_error)
            lines.append(f"{tool.name} failed: {result}" if is_error else _text(result))
        words = " ".join(lines).split(" ")
        for i, word in enumerate(words):
            yield TextDelta(word if i == len(words) - 1 else word + " ")
