"""Anthropic's Messages API (``POST /v1/messages`` with ``stream: true``).

Like the OpenAI provider this speaks the wire protocol with ``httpx`` and our
SSE parser rather than the ``anthropic`` SDK: the event grammar is small and
documented, we need exact control over which content blocks are replayed
(thinking blocks must go back verbatim with their signatures when tools are
used, empty text blocks must not), no hidden retries that would duplicate
streamed text, and one code path for errors and cancellation across providers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from agenthub.agents._shared import (
    ProviderError,
    client_scope,
    error_from_body,
    error_from_transport,
    jsonable,
    parse_json_object,
    result_text,
    run_tool,
    validate_base_url,
)
from agenthub.agents._sse import aiter_sse
from agenthub.core.runtime import (
    AgentEvent,
    ChatMessage,
    ImagePart,
    TextDelta,
    Thinking,
    Tool,
    ToolCallResult,
    ToolCallStart,
    Turn,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicRuntime"]

log = logging.getLogger(__name__)

PROVIDER = "anthropic"
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(slots=True)
class _Block:
    """A content block as streamed; ``data`` is what we send back in the next request."""

    data: dict[str, Any]
    json_parts: list[str] = field(default_factory=list)
    input_error: str | None = None


@dataclass(slots=True)
class _Message:
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: str | None = None


def history_messages(
    history: Sequence[ChatMessage], message: str, images: Sequence[ImagePart] = ()
) -> tuple[str, list[dict[str, Any]]]:
    """Split the transcript into the top-level ``system`` prompt and ``messages``.

    Anthropic has no system role inside ``messages`` and rejects empty text;
    past tool output (no tool_use id to pair with) is replayed as assistant
    text. Consecutive same-role messages are merged by the API itself.
    """
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for entry in history:
        if not entry.content:
            continue
        if entry.role == "system":
            system.append(entry.content)
        elif entry.role == "tool":
            messages.append({"role": "assistant", "content": f"[tool result] {entry.content}"})
        else:
            messages.append({"role": entry.role, "content": entry.content})
    messages.append({"role": "user", "content": user_content(message, images)})
    return "\n\n".join(system), messages


def user_content(message: str, images: Sequence[ImagePart]) -> str | list[dict[str, Any]]:
    """The user message's ``content``: the text, or ``image`` blocks then a text block (never an empty one)."""
    if not images:
        return message
    blocks: list[dict[str, Any]] = []
    for image in images:
        if image.url is not None:
            source: dict[str, Any] = {"type": "url", "url": image.url}
        else:
            source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        blocks.append({"type": "image", "source": source})
    if message:
        blocks.append({"type": "text", "text": message})
    return blocks


def tool_specs(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": jsonable(tool.parameters)}
        for tool in tools
    ]


def _replayable(block: dict[str, Any]) -> dict[str, Any] | None:
    """The form of a streamed block that the API accepts back as assistant content."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block["text"]} if block.get("text") else None
    if kind == "thinking":
        return {
            "type": "thinking",
            "thinking": block.get("thinking", ""),
            "signature": block.get("signature", ""),
        }
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": block.get("input", {})}
    return block


class AnthropicRuntime:
    """Streams Claude's answer and runs the tool-use loop locally."""

    name: str = "anthropic"
    accepts_images: bool = True

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        max_tokens: int = 1024,
        thinking_budget: int | None = None,
        timeout: float = 120.0,
        max_tool_rounds: int = 8,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """``base_url`` excludes ``/v1`` (as in the SDK: ``https://api.anthropic.com``).

        ``thinking_budget`` turns on extended thinking; the API requires it to be
        at least 1024 and below ``max_tokens``. ``client`` is caller-owned.
        """
        if not model:
            raise ValueError("model must not be empty")
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if thinking_budget is not None and not 1024 <= thinking_budget < max_tokens:
            raise ValueError("thinking_budget must be >= 1024 and < max_tokens")
        if max_tool_rounds < 0:
            raise ValueError("max_tool_rounds must be >= 0")
        self.base_url = validate_base_url(base_url)
        self.model = model
        self.max_tokens = max_tokens
        self.thinking_budget = thinking_budget
        self.timeout = timeout
        self.max_tool_rounds = max_tool_rounds
        self._api_key = api_key or None
        self._client = client

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicRuntime(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION, "Accept": "text/event-stream"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        system, messages = history_messages(turn.history, turn.message, turn.images)
        tools = list(turn.tools)
        base: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "stream": True}
        if system:
            base["system"] = system
        if tools:
            base["tools"] = tool_specs(tools)
        if self.thinking_budget is not None:
            base["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        async with client_scope(self._client, self.timeout) as client:
            for round_no in range(self.max_tool_rounds + 1):
                reply = _Message()
                async with aclosing(self._stream(client, {**base, "messages": messages}, reply)) as events:
                    async for event in events:
                        yield event
                blocks = [reply.blocks[i] for i in sorted(reply.blocks)]
                uses = [b for b in blocks if b.data.get("type") == "tool_use"]
                if reply.stop_reason != "tool_use" or not uses:
                    return
                if round_no == self.max_tool_rounds:
                    raise ProviderError(
                        PROVIDER, f"the model kept calling tools after {self.max_tool_rounds} rounds; stopped"
                    )
                content = [r for b in blocks if (r := _replayable(b.data)) is not None]
                messages.append({"role": "assistant", "content": content})
                results: list[dict[str, Any]] = []
                for block in uses:
                    call_id, name = str(block.data["id"]), str(block.data["name"])
                    if block.input_error is not None:
                        yield ToolCallStart(call_id, name, {"_raw_arguments": "".join(block.json_parts)})
                        result: Any = f"invalid JSON input for tool {name!r}: {block.input_error}"
                        is_error = True
                    else:
                        args = block.data.get("input") or {}
                        yield ToolCallStart(call_id, name, args)
                        result, is_error = await run_tool(tools, name, args)
                    yield ToolCallResult(call_id, name, result, is_error)
                    tool_result: dict[str, Any] = {
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": result_text(result, is_error),
                    }
                    if is_error:
                        tool_result["is_error"] = True
                    results.append(tool_result)
                messages.append({"role": "user", "content": results})

    async def _stream(
        self, client: httpx.AsyncClient, body: dict[str, Any], reply: _Message
    ) -> AsyncGenerator[AgentEvent, None]:
        """One streamed message: yield text/thinking deltas, collect blocks into ``reply``."""
        log.debug("POST %s model=%s messages=%d", self.url, self.model, len(body["messages"]))
        try:
            async with client.stream("POST", self.url, json=body, headers=self._headers()) as response:
                if response.status_code >= 400:
                    raise error_from_body(PROVIDER, response.status_code, await response.aread(), self._api_key)
                async with aclosing(aiter_sse(response.aiter_bytes())) as stream:
                    async for sse in stream:
                        try:
                            payload = json.loads(sse.data)
                        except ValueError:
                            raise ProviderError(PROVIDER, f"malformed stream event: {sse.data[:200]!r}") from None
                        if not isinstance(payload, dict):
                            continue
                        kind = payload.get("type", sse.event)
                        if kind == "error":
                            raise error_from_body(PROVIDER, None, payload, self._api_key)
                        if kind == "message_stop":
                            break
                        for event in self._apply(kind, payload, reply):
                            yield event
        except httpx.TransportError as exc:
            raise error_from_transport(PROVIDER, self.url, exc, self._api_key) from None

    @staticmethod
    def _apply(kind: str, payload: dict[str, Any], reply: _Message) -> list[AgentEvent]:
        if kind == "content_block_start":
            data = dict(payload.get("content_block") or {})
            reply.blocks[payload.get("index", len(reply.blocks))] = _Block(data)
            if data.get("type") == "text" and data.get("text"):
                return [TextDelta(data["text"])]
            if data.get("type") == "thinking" and data.get("thinking"):
                return [Thinking(data["thinking"])]
            return []
        if kind == "content_block_delta":
            block = reply.blocks.get(payload.get("index", -1))
            delta = payload.get("delta") or {}
            if block is None:
                return []
            dtype = delta.get("type")
            if dtype == "text_delta":
                block.data["text"] = block.data.get("text", "") + delta.get("text", "")
                return [TextDelta(delta["text"])] if delta.get("text") else []
            if dtype == "thinking_delta":
                block.data["thinking"] = block.data.get("thinking", "") + delta.get("thinking", "")
                return [Thinking(delta["thinking"])] if delta.get("thinking") else []
            if dtype == "signature_delta":
                block.data["signature"] = block.data.get("signature", "") + delta.get("signature", "")
            elif dtype == "input_json_delta":
                block.json_parts.append(delta.get("partial_json", ""))
            return []
        if kind == "content_block_stop":
            block = reply.blocks.get(payload.get("index", -1))
            if block is not None and block.data.get("type") == "tool_use" and block.json_parts:
                try:
                    block.data["input"] = parse_json_object("".join(block.json_parts))
                except ValueError as exc:
                    block.input_error = str(exc)
                    block.data["input"] = {}
            return []
        if kind == "message_delta":
            stop = (payload.get("delta") or {}).get("stop_reason")
            if stop:
                reply.stop_reason = stop
        # message_start, ping and future event types carry nothing we stream.
        return []
