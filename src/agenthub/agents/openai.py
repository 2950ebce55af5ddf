"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ollama, llama.cpp, ...).

We speak the wire protocol with ``httpx`` and our own SSE parser instead of the
``openai`` SDK: the SDK's request/response models track OpenAI's own API and
change across major versions, while the compatible servers we target differ
from it in small ways (``reasoning_content`` vs ``reasoning``, missing tool-call
ids, error bodies that are plain strings, ``finish_reason: "stop"`` after tool
calls). Owning the ~200 lines keeps those quirks visible and testable, gives
exact control over retries (none: a retried turn would duplicate streamed
text) and keeps cancellation a plain ``CancelledError`` through one ``httpx``
stream.
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

__all__ = ["OpenAIRuntime"]

log = logging.getLogger(__name__)

PROVIDER = "openai"


@dataclass(slots=True)
class _ToolCallAcc:
    """One tool call being assembled from streamed fragments (keyed by ``index``)."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Completion:
    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallAcc] = field(default_factory=dict)
    finish_reason: str | None = None


def history_messages(
    history: Sequence[ChatMessage], message: str, images: Sequence[ImagePart] = ()
) -> list[dict[str, Any]]:
    """Transcript to chat messages.

    ``ChatMessage`` has no tool-call id, and a ``tool`` message without one is
    rejected by OpenAI, so past tool output is replayed as assistant text.
    The turn's images make the user message a list of content parts.
    """
    messages: list[dict[str, Any]] = []
    for entry in history:
        if entry.role == "tool":
            messages.append({"role": "assistant", "content": f"[tool result] {entry.content}"})
        else:
            messages.append({"role": entry.role, "content": entry.content})
    messages.append({"role": "user", "content": user_content(message, images)})
    return messages


def user_content(message: str, images: Sequence[ImagePart]) -> str | list[dict[str, Any]]:
    """The user message's ``content``: the text, or text and ``image_url`` parts (a data URL for base64)."""
    if not images:
        return message
    parts: list[dict[str, Any]] = [{"type": "text", "text": message}] if message else []
    for image in images:
        url = image.url if image.url is not None else f"data:{image.media_type};base64,{image.data}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def tool_specs(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": jsonable(tool.parameters),
            },
        }
        for tool in tools
    ]


class OpenAIRuntime:
    """Streams chat completions and runs the tool-call loop locally."""

    name: str = "openai"
    accepts_images: bool = True  # vision models read image_url parts; others answer with an API error

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        timeout: float = 120.0,
        max_tool_rounds: int = 8,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """``base_url`` includes the version prefix, as in the SDK (``https://api.openai.com/v1``).

        ``timeout`` bounds connecting and each wait for the next streamed bytes,
        not the whole answer. ``api_key`` may be empty for local servers.
        ``client`` lets the caller share a pooled ``httpx.AsyncClient`` (which it
        then owns and closes).
        """
        if not model:
            raise ValueError("model must not be empty")
        if max_tool_rounds < 0:
            raise ValueError("max_tool_rounds must be >= 0")
        self.base_url = validate_base_url(base_url)
        self.model = model
        self.timeout = timeout
        self.max_tool_rounds = max_tool_rounds
        self._api_key = api_key or None
        self._client = client

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIRuntime(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        messages = history_messages(turn.history, turn.message, turn.images)
        tools = list(turn.tools)
        specs = tool_specs(tools)
        async with client_scope(self._client, self.timeout) as client:
            for round_no in range(self.max_tool_rounds + 1):
                completion = _Completion()
                body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
                if specs:
                    body["tools"] = specs
                async with aclosing(self._stream(client, body, completion)) as events:
                    async for event in events:
                        yield event
                # Some servers report finish_reason "stop" after tool calls, so
                # the accumulated calls, not the reason, decide.
                if not completion.tool_calls:
                    return
                if round_no == self.max_tool_rounds:
                    raise ProviderError(
                        PROVIDER, f"the model kept calling tools after {self.max_tool_rounds} rounds; stopped"
                    )
                calls = [completion.tool_calls[i] for i in sorted(completion.tool_calls)]
                parsed: list[dict[str, Any] | ValueError] = []
                for i, call in enumerate(calls):
                    call.id = call.id or f"call_{round_no}_{i}"
                    try:
                        parsed.append(parse_json_object("".join(call.arguments)))
                    except ValueError as exc:
                        parsed.append(exc)
                # Replay unparsable arguments as "{}": servers that re-parse them would reject the turn.
                messages.append(
                    {
                        "role": "assistant",
                        "content": "".join(completion.text) or None,
                        "tool_calls": [
                            {
                                "id": call.id,
                                "type": "function",
                                "function": {
                                    "name": call.name,
                                    "arguments": "{}" if isinstance(args, ValueError) else "".join(call.arguments),
                                },
                            }
                            for call, args in zip(calls, parsed, strict=True)
                        ],
                    }
                )
                for call, args in zip(calls, parsed, strict=True):
                    if isinstance(args, ValueError):
                        yield ToolCallStart(call.id, call.name, {"_raw_arguments": "".join(call.arguments)})
                        result: Any = f"invalid JSON arguments for tool {call.name!r}: {args}"
                        is_error = True
                    else:
                        yield ToolCallStart(call.id, call.name, args)
                        result, is_error = await run_tool(tools, call.name, args)
                    yield ToolCallResult(call.id, call.name, result, is_error)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result_text(result, is_error)})

    async def _stream(
        self, client: httpx.AsyncClient, body: dict[str, Any], completion: _Completion
    ) -> AsyncGenerator[AgentEvent, None]:
        """One streamed completion: yield text/thinking, accumulate tool calls into ``completion``."""
        log.debug("POST %s model=%s messages=%d", self.url, self.model, len(body["messages"]))
        try:
            async with client.stream("POST", self.url, json=body, headers=self._headers()) as response:
                if response.status_code >= 400:
                    raise error_from_body(PROVIDER, response.status_code, await response.aread(), self._api_key)
                async with aclosing(aiter_sse(response.aiter_bytes())) as stream:
                    async for sse in stream:
                        if sse.data.strip() == "[DONE]":
                            break
                        try:
                            chunk = json.loads(sse.data)
                        except ValueError:
                            raise ProviderError(PROVIDER, f"malformed stream chunk: {sse.data[:200]!r}") from None
                        if not isinstance(chunk, dict):
                            continue
                        if chunk.get("error"):
                            raise error_from_body(PROVIDER, None, chunk, self._api_key)
                        for event in self._apply_chunk(chunk, completion):
                            yield event
        except httpx.TransportError as exc:
            raise error_from_transport(PROVIDER, self.url, exc, self._api_key) from None

    @staticmethod
    def _apply_chunk(chunk: dict[str, Any], completion: _Completion) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is not requested; ignore anything else
            delta = choice.get("delta") or {}
            # vLLM/DeepSeek use reasoning_content; Ollama/OpenRouter use reasoning.
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                events.append(Thinking(reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                completion.text.append(content)
                events.append(TextDelta(content))
            for fragment in delta.get("tool_calls") or ():
                if not isinstance(fragment, dict):
                    continue
                index = fragment.get("index", len(completion.tool_calls))
                acc = completion.tool_calls.setdefault(index, _ToolCallAcc())
                if fragment.get("id"):
                    acc.id = fragment["id"]
                function = fragment.get("function") or {}
                if function.get("name") and not acc.name:
                    acc.name = function["name"]
                if function.get("arguments"):
                    acc.arguments.append(function["arguments"])
            if choice.get("finish_reason"):
                completion.finish_reason = choice["finish_reason"]
        return events
