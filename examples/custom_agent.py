"""Embed agenthub in your program and plug in your own agent: the documented public entry.

``agenthub.app.Gateway`` is the whole gateway (every dialect, the Control UI, /metrics, storage) as an
async context manager; ``runtime_factory`` builds the agent every run uses, anything that implements
``agenthub.core.runtime.AgentRuntime``: a ``name`` and ``run_turn(turn)``, an async iterator of
``Thinking``, ``TextDelta``, ``ToolCallStart`` and ``ToolCallResult`` events. The gateway owns the
rest: run lifecycle, streaming to every client, abort, history, replay.

    python examples/custom_agent.py --port 18790 --data-dir /tmp/custom-agent
    agenthub call agent --url ws://127.0.0.1:18790 --params '{"message": "hello there"}' --expect-final
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

from agenthub.app import Gateway
from agenthub.config import GatewaySettings
from agenthub.core.runtime import AgentEvent, AgentRuntime, TextDelta, Thinking, ToolCallResult, ToolCallStart, Turn


class ReverseAgent:
    """Answers with the message reversed, showing a thinking step and a (local) tool call on the way."""

    name = "reverse"

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        yield Thinking(f"{len(turn.history)} earlier message(s) in {turn.session_key}; reversing the new one.")
        yield ToolCallStart("call-1", "reverse", {"text": turn.message})
        reversed_text = turn.message[::-1]
        yield ToolCallResult("call-1", "reverse", reversed_text)
        for word in f"Reversed: {reversed_text}".split(" "):
            yield TextDelta(word + " ")
            await asyncio.sleep(0.01)  # a real agent awaits its model here; aborts cancel this task


def make_runtime(settings: GatewaySettings) -> AgentRuntime:
    """Called with the effective settings; again only when the provider settings change."""
    return ReverseAgent()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=18790)
    parser.add_argument("--data-dir", default="~/.agenthub-custom-agent")
    args = parser.parse_args()
    # The first dict is what a --config file would hold; every setting of `agenthub config schema` works.
    settings = {"port": args.port, "data_dir": args.data_dir}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(settings, runtime_factory=make_runtime) as gw:
        print(f"custom agent gateway ready on ws://127.0.0.1:{gw.port} (UI: http://127.0.0.1:{gw.port}/)", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
