"""Agent providers: the offline ``demo`` agent and the OpenAI-compatible and Anthropic APIs.

``build_runtime`` is the one place that turns configuration into a runtime, so
the CLI, the config file and tests agree on names, defaults and validation.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from agenthub.agents._shared import ProviderError
from agenthub.agents.anthropic import AnthropicRuntime
from agenthub.agents.demo import DemoRuntime
from agenthub.agents.openai import OpenAIRuntime
from agenthub.agents.tools import CalculatorTool, ClockTool, default_tools
from agenthub.core.runtime import AgentRuntime

__all__ = [
    "DEFAULTS",
    "PROVIDERS",
    "AnthropicRuntime",
    "CalculatorTool",
    "ClockTool",
    "DemoRuntime",
    "OpenAIRuntime",
    "ProviderError",
    "build_runtime",
    "default_tools",
]

PROVIDERS = ("demo", "openai", "anthropic")

#: provider -> (base_url, model)
DEFAULTS: dict[str, tuple[str, str]] = {
    "openai": ("https://api.openai.com/v1", "gpt-4o-mini"),
    "anthropic": ("https://api.anthropic.com", "claude-sonnet-4-5"),
}


def build_runtime(
    provider: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    word_delay_s: float = 0.02,
) -> AgentRuntime:
    """Build a provider by name; ValueError says what is unknown or missing.

    An API key is required only for the providers' own hosted endpoints: local
    OpenAI-compatible servers (Ollama, vLLM, llama.cpp) usually need none.
    """
    name = provider.strip().lower()
    if name == "demo":
        return DemoRuntime(word_delay_s=word_delay_s)
    if name not in DEFAULTS:
        raise ValueError(f"unknown agent provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    default_url, default_model = DEFAULTS[name]
    url = base_url or default_url
    if not api_key and urlsplit(url).hostname == urlsplit(default_url).hostname:
        raise ValueError(f"the {name} provider needs an API key for {url}")
    if name == "openai":
        return OpenAIRuntime(url, api_key, model or default_model)
    return AnthropicRuntime(url, api_key, model or default_model)
