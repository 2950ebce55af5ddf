"""Stream one agent run with the Python SDK: the reply word by word, then the run's result.

    python examples/sdk_streaming.py "what is 12*(3+4)?"

Talks to AGENTHUB_URL (default ws://127.0.0.1:18789, what `make run` starts), with AGENTHUB_GATEWAY_TOKEN
when the gateway has a token.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agenthub.client import GatewayClient


async def main(message: str) -> int:
    url = os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789")
    async with GatewayClient(url, token=os.environ.get("AGENTHUB_GATEWAY_TOKEN")) as gw:
        status = "?"
        async for item in gw.run_agent(message, session_key="examples"):
            if item["type"] == "accepted":
                print(f"run {item['runId']} accepted")
            elif item.get("event") == "agent":
                payload = item["payload"]
                if payload["stream"] == "thinking":
                    print(f"  (thinking) {payload['data']['delta']}")
                elif payload["stream"] == "tool":
                    data = payload["data"]
                    print(f"  (tool {data.get('name')}: {data.get('phase')})")
                elif payload["stream"] == "assistant":
                    print(payload["data"]["delta"], end="", flush=True)
            elif item["type"] == "gap":
                print("\n(some events were no longer available)")
            elif item["type"] == "result":  # always last
                status = item["status"]
                print(f"\nstatus: {status}")
        return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "what is 12*(3+4)?")))
