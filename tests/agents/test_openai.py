"""OpenAIRuntime against a local server speaking the Chat Completions streaming format."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Mapping
from typing import Any

import pytest

from agenthub.agents import OpenAIRuntime, ProviderError
from agenthub.agents.tools import CalculatorTool
from agenthub.core.runtime import (
    AgentEvent,
    ChatMessage,
    ImagePart,
    TextDelta,
    Thinking,
    ToolCallResult,
    ToolCallStart,
    Turn,
)

from .conftest import Reply, ScriptedServer

API_KEY = "sk-test-0123456789abcdef"


class BrokenTool:
    name = "broken"
    description = "Always fails."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}

    async def call(self, args: Mapping[str, Any]) -> Any:
        raise RuntimeError("disk on fire")


def chunk(delta: str, finish: str = "null") -> str:
    """One chunk line exactly as api.openai.com sends it (compact JSON, one event per line pair)."""
    return (
        'data: {"id":"chatcmpl-AXc1","object":"chat.completion.chunk","created":1732000000,'
        '"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1",'
        f'"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}\n\n'
    )


# Round 1: reasoning, some text, then two tool calls whose fragments interleave.
TOOL_STREAM = (
    chunk('{"role":"assistant","content":"","refusal":null}')
    + chunk('{"reasoning_content":"Need the calculator."}')
    + chunk('{"content":"Let me check."}')
    + chunk(
        '{"tool_calls":[{"index":0,"id":"call_calc","type":"function",'
        '"function":{"name":"calculator","arguments":""}}]}'
    )
    + chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"expr"}}]}')
    + chunk(
        '{"tool_calls":[{"index":1,"id":"call_broken","type":"function",'
        '"function":{"name":"broken","arguments":"{}"}}]}'
    )
    + chunk('{"tool_calls":[{"index":0,"function":{"arguments":"ession\\": \\"12 * "}}]}')
    + chunk('{"tool_calls":[{"index":0,"function":{"arguments":"(3+4)\\"}"}}]}')
    + chunk("{}", finish='"tool_calls"')
    + "data: [DONE]\n\n"
).encode()

# Round 2: the answer, then a usage-only chunk (stream_options.include_usage style).
TEXT_STREAM = (
    chunk('{"role":"assistant","content":""}')
    + chunk('{"content":"12 * (3+4) = "}')
    + chunk('{"content":"84."}')
    + chunk("{}", finish='"stop"')
    + 'data: {"id":"chatcmpl-AXc2","object":"chat.completion.chunk","created":1732000001,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[],'
    '"usage":{"prompt_tokens":80,"completion_tokens":9,"total_tokens":89}}\n\n' + "data: [DONE]\n\n"
).encode()


def runtime(server: ScriptedServer, **kwargs: Any) -> OpenAIRuntime:
    return OpenAIRuntime(f"{server.url}/v1", API_KEY, "gpt-4o-mini", **kwargs)


async def run(rt: OpenAIRuntime, turn: Turn) -> list[AgentEvent]:
    return [event async for event in rt.run_turn(turn)]


@pytest.mark.parametrize("chunk_size", [None, 5])
async def test_tool_call_round_trip(server: ScriptedServer, chunk_size: int | None) -> None:
    server.replies += [Reply(TOOL_STREAM, chunk_size=chunk_size), Reply(TEXT_STREAM, chunk_size=chunk_size)]
    calculator, broken = CalculatorTool(), BrokenTool()
    turn = Turn(
        run_id="r1",
        session_key="s1",
        message="What is 12 * (3+4)?",
        history=[
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "hi"),
            ChatMessage("assistant", "hello"),
        ],
        tools=[calculator, broken],
    )

    events = await run(runtime(server), turn)

    assert events == [
        Thinking("Need the calculator."),
        TextDelta("Let me check."),
        ToolCallStart("call_calc", "calculator", {"expression": "12 * (3+4)"}),
        ToolCallResult("call_calc", "calculator", 84, False),
        ToolCallStart("call_broken", "broken", {}),
        ToolCallResult("call_broken", "broken", "disk on fire", True),
        TextDelta("12 * (3+4) = "),
        TextDelta("84."),
    ]

    assert len(server.requests) == 2
    first, second = server.requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.headers["content-type"] == "application/json"
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "What is 12 * (3+4)?"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "description": calculator.description,
                "parameters": dict(calculator.parameters),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "broken",
                "description": "Always fails.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert first.body == {"model": "gpt-4o-mini", "messages": history, "stream": True, "tools": tools}
    assert second.body == {
        "model": "gpt-4o-mini",
        "stream": True,
        "tools": tools,
        "messages": [
            *history,
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "call_calc",
                        "type": "function",
                        "function": {"name": "calculator", "arguments": '{"expression": "12 * (3+4)"}'},
                    },
                    {
                        "id": "call_broken",
                        "type": "function",
                        "function": {"name": "broken", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_calc", "content": "84"},
            {"role": "tool", "tool_call_id": "call_broken", "content": "Error: disk on fire"},
        ],
    }


async def test_plain_text_without_tools_or_key(server: ScriptedServer) -> None:
    """Ollama-style: no API key, ``reasoning`` instead of ``reasoning_content``, CRLF lines."""
    body = chunk('{"role":"assistant","reasoning":"hmm"}') + chunk('{"content":"Hi!"}') + chunk("{}", '"stop"')
    server.replies.append(Reply((body + "data: [DONE]\n\n").replace("\n", "\r\n").encode()))
    rt = OpenAIRuntime(f"{server.url}/v1/", None, "llama3.2")
    events = await run(rt, Turn("r", "s", "hello"))
    assert events == [Thinking("hmm"), TextDelta("Hi!")]
    (request,) = server.requests
    assert "authorization" not in request.headers
    assert request.body == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
    }


async def test_missing_ids_unknown_tool_and_bad_json(server: ScriptedServer) -> None:
    """llama.cpp-style streams may omit ids; models may name unknown tools or emit broken JSON."""
    stream = (
        chunk('{"tool_calls":[{"index":0,"function":{"name":"nope","arguments":"{}"}}]}')
        + chunk('{"tool_calls":[{"index":1,"function":{"name":"calculator","arguments":"{\\"expression\\": "}}]}')
        + chunk("{}", '"tool_calls"')
        + "data: [DONE]\n\n"
    ).encode()
    server.replies += [Reply(stream), Reply((chunk('{"content":"ok"}') + "data: [DONE]\n\n").encode())]
    events = await run(runtime(server), Turn("r", "s", "go", tools=[CalculatorTool()]))
    assert events[:2] == [
        ToolCallStart("call_0_0", "nope", {}),
        ToolCallResult("call_0_0", "nope", "unknown tool 'nope'", True),
    ]
    assert events[2] == ToolCallStart("call_0_1", "calculator", {"_raw_arguments": '{"expression": '})
    assert isinstance(events[3], ToolCallResult) and events[3].is_error
    assert "invalid JSON arguments" in events[3].result
    assert events[4:] == [TextDelta("ok")]
    replayed = server.requests[1].body["messages"][-3]["tool_calls"]
    assert [c["function"]["arguments"] for c in replayed] == ["{}", "{}"]
    tool_messages = [m for m in server.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0_0", "call_0_1"]


async def test_tool_rounds_are_bounded(server: ScriptedServer) -> None:
    stream = (
        chunk(
            '{"tool_calls":[{"index":0,"id":"c","function":{"name":"calculator","arguments":"{\\"expression\\":\\"1+1\\"}"}}]}'
        )
        + chunk("{}", '"tool_calls"')
        + "data: [DONE]\n\n"
    ).encode()
    server.replies += [Reply(stream), Reply(stream)]
    with pytest.raises(ProviderError, match="kept calling tools after 1 rounds"):
        await run(runtime(server, max_tool_rounds=1), Turn("r", "s", "loop", tools=[CalculatorTool()]))
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {API_KEY}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
            "openai API error (HTTP 401, invalid_api_key): Incorrect API key provided: [redacted]. ",
        ),
        (
            500,
            {
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            "openai API error (HTTP 500, server_error): The server had an error while processing",
        ),
        (404, {"error": "model 'llama9' not found"}, "openai API error (HTTP 404): model 'llama9' not found"),
    ],
)
async def test_http_errors_are_readable(
    server: ScriptedServer, status: int, body: dict[str, Any], expected: str
) -> None:
    server.replies.append(Reply(json.dumps(body).encode(), status=status, content_type="application/json"))
    with pytest.raises(ProviderError) as info:
        await run(runtime(server), Turn("r", "s", "hi"))
    assert str(info.value).startswith(expected)
    assert API_KEY not in str(info.value)
    assert info.value.status == status


async def test_non_json_error_body(server: ScriptedServer) -> None:
    server.replies.append(
        Reply(b"<html><body><h1>502 Bad Gateway</h1></body></html>", status=502, content_type="text/html")
    )
    with pytest.raises(ProviderError, match=r"HTTP 502\): <html><body><h1>502 Bad Gateway"):
        await run(runtime(server), Turn("r", "s", "hi"))


async def test_error_inside_the_stream(server: ScriptedServer) -> None:
    body = chunk('{"content":"par"}') + 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    server.replies.append(Reply(body.encode()))
    events: list[AgentEvent] = []
    with pytest.raises(ProviderError, match=r"openai API error \(server_error\): overloaded"):
        async for event in runtime(server).run_turn(Turn("r", "s", "hi")):
            events.append(event)
    assert events == [TextDelta("par")]


async def test_connection_refused_is_readable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rt = OpenAIRuntime(f"http://127.0.0.1:{port}/v1", API_KEY, "m")
    with pytest.raises(ProviderError, match=rf"request failed talking to http://127.0.0.1:{port}/v1/chat"):
        await run(rt, Turn("r", "s", "hi"))


async def test_cancel_mid_stream_is_prompt(server: ScriptedServer) -> None:
    server.replies.append(Reply(chunk('{"content":"Once upon"}').encode(), stall=True))
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in runtime(server).run_turn(Turn("r", "s", "story")):
            if isinstance(event, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), timeout=5)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.2
    # the upstream request is really torn down, not left streaming
    await asyncio.wait_for(server.disconnected.wait(), timeout=5)


def test_repr_hides_the_key() -> None:
    assert API_KEY not in repr(OpenAIRuntime("http://localhost:1/v1", API_KEY, "m"))


async def test_images_go_as_image_url_parts(server: ScriptedServer) -> None:
    """A turn with images: the user message is content parts, base64 as a data URL (OpenAI's vision format)."""
    body = chunk('{"role":"assistant","content":""}') + chunk('{"content":"A red dot."}') + chunk("{}", '"stop"')
    server.replies.append(Reply((body + "data: [DONE]\n\n").encode()))
    images = [
        ImagePart(media_type="image/png", data="iVBORw0KGgo=", size=8),
        ImagePart(url="https://example.com/cat.jpg"),
    ]
    turn = Turn("r", "s", "what is this?", history=[ChatMessage("user", "hi"), ChatMessage("assistant", "hello")])
    turn.images = images
    assert runtime(server).accepts_images
    events = await run(runtime(server), turn)
    assert events == [TextDelta("A red dot.")]
    (request,) = server.requests
    assert request.body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
    ]
