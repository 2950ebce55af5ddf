"""AnthropicRuntime against a local server speaking the Messages streaming format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from agenthub.agents import AnthropicRuntime, ProviderError
from agenthub.agents.anthropic import ANTHROPIC_VERSION
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

API_KEY = "sk-ant-api03-test-0123456789"
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def message_start(msg_id: str) -> str:
    return sse(
        "message_start",
        '{"type":"message_start","message":{"id":"' + msg_id + '","type":"message","role":"assistant",'
        '"model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,'
        '"usage":{"input_tokens":472,"output_tokens":2}}}',
    )


def stop(reason: str) -> str:
    return sse(
        "message_delta",
        '{"type":"message_delta","delta":{"stop_reason":"' + reason + '","stop_sequence":null},'
        '"usage":{"output_tokens":89}}',
    ) + sse("message_stop", '{"type":"message_stop"}')


# Round 1: a thinking block (with signature), a text block, a tool_use block streamed as JSON pieces.
TOOL_STREAM = (
    message_start("msg_01")
    + sse(
        "content_block_start",
        '{"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}',
    )
    + sse(
        "content_block_delta",
        '{"type": "content_block_delta", "index": 0, '
        '"delta": {"type": "thinking_delta", "thinking": "I should use the calculator."}}',
    )
    + sse(
        "content_block_delta",
        '{"type": "content_block_delta", "index": 0, '
        f'"delta": {{"type": "signature_delta", "signature": "{SIGNATURE}"}}}}',
    )
    + sse("content_block_stop", '{"type": "content_block_stop", "index": 0}')
    + sse(
        "content_block_start",
        '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
    )
    + sse("ping", '{"type": "ping"}')
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"calculate."}}',
    )
    + sse("content_block_stop", '{"type":"content_block_stop","index":1}')
    + sse(
        "content_block_start",
        '{"type":"content_block_start","index":2,"content_block":{"type":"tool_use",'
        '"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"calculator","input":{}}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"expres"}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":2,'
        '"delta":{"type":"input_json_delta","partial_json":"sion\\": \\"2 ** 10"}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" - 1\\"}"}}',
    )
    + sse("content_block_stop", '{"type":"content_block_stop","index":2}')
    + stop("tool_use")
).encode()

TEXT_STREAM = (
    message_start("msg_02")
    + sse(
        "content_block_start",
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    )
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"It is "}}',
    )
    + sse("ping", '{"type": "ping"}')
    + sse(
        "content_block_delta",
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"1023."}}',
    )
    + sse("content_block_stop", '{"type":"content_block_stop","index":0}')
    + stop("end_turn")
).encode()


def runtime(server: ScriptedServer, **kwargs: Any) -> AnthropicRuntime:
    return AnthropicRuntime(server.url, API_KEY, "claude-sonnet-4-5", **kwargs)


async def run(rt: AnthropicRuntime, turn: Turn) -> list[AgentEvent]:
    return [event async for event in rt.run_turn(turn)]


@pytest.mark.parametrize("chunk_size", [None, 9])
async def test_tool_use_round_trip_with_thinking(server: ScriptedServer, chunk_size: int | None) -> None:
    server.replies += [Reply(TOOL_STREAM, chunk_size=chunk_size), Reply(TEXT_STREAM, chunk_size=chunk_size)]
    calculator = CalculatorTool()
    turn = Turn(
        run_id="r1",
        session_key="s1",
        message="What is 2**10 - 1?",
        history=[
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "hi"),
            ChatMessage("assistant", "hello"),
        ],
        tools=[calculator],
    )

    events = await run(runtime(server, max_tokens=4096, thinking_budget=2048), turn)

    assert events == [
        Thinking("I should use the calculator."),
        TextDelta("Let me "),
        TextDelta("calculate."),
        ToolCallStart("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "calculator", {"expression": "2 ** 10 - 1"}),
        ToolCallResult("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "calculator", 1023, False),
        TextDelta("It is "),
        TextDelta("1023."),
    ]

    first, second = server.requests
    assert first.method == "POST" and first.path == "/v1/messages"
    assert first.headers["x-api-key"] == API_KEY
    assert first.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in first.headers
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "What is 2**10 - 1?"},
    ]
    common = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "stream": True,
        "system": "Be brief.",
        "tools": [
            {
                "name": "calculator",
                "description": calculator.description,
                "input_schema": dict(calculator.parameters),
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    assert first.body == {**common, "messages": history}
    assert second.body == {
        **common,
        "messages": [
            *history,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should use the calculator.", "signature": SIGNATURE},
                    {"type": "text", "text": "Let me calculate."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "name": "calculator",
                        "input": {"expression": "2 ** 10 - 1"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "content": "1023",
                    }
                ],
            },
        ],
    }


class BrokenTool:
    name = "broken"
    description = "Always fails."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}

    async def call(self, args: Mapping[str, Any]) -> Any:
        raise RuntimeError("disk on fire")


async def test_tool_error_and_input_without_deltas(server: ScriptedServer) -> None:
    """A tool_use block with no input_json_delta (no arguments) whose tool raises."""
    stream = (
        message_start("msg_03")
        + sse(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use",'
            '"id":"toolu_02","name":"broken","input":{}}}',
        )
        + sse("content_block_stop", '{"type":"content_block_stop","index":0}')
        + stop("tool_use")
    )
    server.replies += [Reply(stream.encode()), Reply(TEXT_STREAM)]
    events = await run(runtime(server), Turn("r", "s", "break it", tools=[BrokenTool()]))
    assert events[:2] == [
        ToolCallStart("toolu_02", "broken", {}),
        ToolCallResult("toolu_02", "broken", "disk on fire", True),
    ]
    body = server.requests[1].body
    assert "thinking" not in body and "system" not in body
    assert body["messages"][-2:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_02", "name": "broken", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": "Error: disk on fire",
                    "is_error": True,
                }
            ],
        },
    ]


async def test_max_tokens_stop_does_not_run_truncated_tools(server: ScriptedServer) -> None:
    stream = (
        message_start("msg_04")
        + sse(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use",'
            '"id":"toolu_03","name":"calculator","input":{}}}',
        )
        + sse(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"ex"}}',
        )
        + stop("max_tokens")
    )
    server.replies.append(Reply(stream.encode()))
    assert await run(runtime(server), Turn("r", "s", "x", tools=[CalculatorTool()])) == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
            },
            "anthropic API error (HTTP 401, authentication_error): invalid x-api-key",
        ),
        (
            500,
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
            "anthropic API error (HTTP 500, api_error): Internal server error",
        ),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "anthropic API error (HTTP 529, overloaded_error): Overloaded",
        ),
    ],
)
async def test_http_errors_are_readable(
    server: ScriptedServer, status: int, body: dict[str, Any], expected: str
) -> None:
    server.replies.append(Reply(json.dumps(body).encode(), status=status, content_type="application/json"))
    with pytest.raises(ProviderError) as info:
        await run(runtime(server), Turn("r", "s", "hi"))
    assert str(info.value) == expected
    assert info.value.status == status


async def test_error_event_inside_the_stream(server: ScriptedServer) -> None:
    stream = (
        message_start("msg_05")
        + sse(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        )
        + sse(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
        )
        + sse("error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    )
    server.replies.append(Reply(stream.encode()))
    events: list[AgentEvent] = []
    with pytest.raises(ProviderError, match=r"^anthropic API error \(overloaded_error\): Overloaded$"):
        async for event in runtime(server).run_turn(Turn("r", "s", "hi")):
            events.append(event)
    assert events == [TextDelta("Hel")]


def test_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="thinking_budget"):
        AnthropicRuntime("https://api.anthropic.com", API_KEY, "m", max_tokens=1024, thinking_budget=1024)
    with pytest.raises(ValueError, match="base_url"):
        AnthropicRuntime("api.anthropic.com", API_KEY, "m")
    assert API_KEY not in repr(AnthropicRuntime("https://api.anthropic.com", API_KEY, "m"))


async def test_images_go_as_image_blocks_before_the_text(server: ScriptedServer) -> None:
    """Anthropic's image blocks: base64 with its media type, or a url source; then the text (never empty)."""
    answer = (
        message_start("msg_img")
        + sse(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        )
        + sse(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"A cat."}}',
        )
        + sse("content_block_stop", '{"type":"content_block_stop","index":0}')
        + stop("end_turn")
    )
    server.replies += [Reply(answer.encode()), Reply(answer.encode())]
    png = ImagePart(media_type="image/png", data="iVBORw0KGgo=", size=8)
    url = ImagePart(url="https://example.com/cat.jpg")
    turn = Turn("r", "s", "what is this?")
    turn.images = [png, url]
    assert runtime(server).accepts_images
    assert await run(runtime(server), turn) == [TextDelta("A cat.")]
    only_image = Turn("r2", "s", "")
    only_image.images = [png]
    await run(runtime(server), only_image)
    first, second = server.requests
    assert first.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "what is this?"},
            ],
        }
    ]
    assert second.body["messages"][-1]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    ]
