from __future__ import annotations

import pytest

import agenthub.agents as agents
from agenthub.agents import AnthropicRuntime, DemoRuntime, OpenAIRuntime, build_runtime


def test_demo() -> None:
    rt = build_runtime("demo", word_delay_s=0.0)
    assert isinstance(rt, DemoRuntime)
    assert (rt.name, rt.word_delay_s) == ("demo", 0.0)


def test_openai_defaults() -> None:
    rt = build_runtime("OpenAI", api_key="sk-x")
    assert isinstance(rt, OpenAIRuntime)
    assert (rt.name, rt.base_url, rt.model) == ("openai", "https://api.openai.com/v1", "gpt-4o-mini")


def test_openai_compatible_local_server_needs_no_key() -> None:
    rt = build_runtime("openai", base_url="http://localhost:11434/v1", model="llama3.2")
    assert isinstance(rt, OpenAIRuntime)
    assert (rt.url, rt.model) == ("http://localhost:11434/v1/chat/completions", "llama3.2")


def test_anthropic_defaults() -> None:
    rt = build_runtime("anthropic", api_key="sk-ant-x")
    assert isinstance(rt, AnthropicRuntime)
    assert (rt.name, rt.url, rt.model) == (
        "anthropic",
        "https://api.anthropic.com/v1/messages",
        "claude-sonnet-4-5",
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_hosted_endpoints_need_a_key(provider: str) -> None:
    with pytest.raises(ValueError, match="needs an API key"):
        build_runtime(provider)


@pytest.mark.parametrize(
    ("provider", "kwargs", "message"),
    [
        ("gemini", {}, "unknown agent provider 'gemini'"),
        ("openai", {"base_url": "localhost:8000"}, "base_url must be an absolute"),
        ("demo", {"word_delay_s": -0.1}, "word_delay_s"),
    ],
)
def test_bad_config(provider: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_runtime(provider, **kwargs)  # type: ignore[arg-type]


def test_all_is_exported() -> None:
    for name in agents.__all__:
        assert hasattr(agents, name)
