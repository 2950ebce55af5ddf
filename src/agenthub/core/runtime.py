"""The agent runtime interface: what the gateway needs from any agent provider.

A provider turns one user turn into an async iterator of typed events. The run
manager (``core.runs``) owns the lifecycle (start/end/error), cancellation and
fan-out; a provider only streams what the model does. Cancelling the consuming
task must stop the provider promptly, so providers must not shield their I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AgentEvent",
    "AgentRuntime",
    "ChatMessage",
    "ImagePart",
    "Lifecycle",
    "TextDelta",
    "Thinking",
    "Tool",
    "ToolCallResult",
    "ToolCallStart",
    "Turn",
    "takes_images",
]

Role = Literal["user", "assistant", "system", "tool"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One transcript entry as the provider sees it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """A piece of the model's reasoning (a delta, not cumulative)."""

    text: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's answer (a delta, not cumulative)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    tool_call_id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    tool_call_id: str
    name: str
    result: Any
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Emitted by the run manager, never by providers."""

    phase: Literal["start", "end", "error"]
    error: str | None = None


AgentEvent = Thinking | TextDelta | ToolCallStart | ToolCallResult | Lifecycle


@runtime_checkable
class Tool(Protocol):
    """A callable the model may invoke. ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    async def call(self, args: Mapping[str, Any]) -> Any:
        """Run the tool; raise to report an error result to the model."""
        ...


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image the user sent with the turn: base64 ``data`` of ``media_type``, or an http(s) ``url``.

    The gateway never fetches a URL itself: it is handed to the provider as is.
    """

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    size: int = 0  # decoded bytes of ``data`` (0 for a URL)


@dataclass(slots=True)
class Turn:
    """Everything a provider needs for one turn."""

    run_id: str
    session_key: str
    message: str
    history: Sequence[ChatMessage] = ()
    tools: Sequence[Tool] = field(default_factory=tuple)
    # Images sent with this turn's message; only for a runtime that ``takes_images``.
    images: Sequence[ImagePart] = ()


class AgentRuntime(Protocol):
    """A provider: ``demo``, ``openai``, ``anthropic``, or a test's own.

    A runtime that can read images sets ``accepts_images = True``; the others
    never get a turn with images (``takes_images``).
    """

    name: str

    def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        """Stream the events of one turn; raising ends the run with an error."""
        ...


def takes_images(runtime: object) -> bool:
    """Whether a runtime reads ``Turn.images`` (its ``accepts_images`` attribute; absent means no)."""
    return bool(getattr(runtime, "accepts_images", False))
