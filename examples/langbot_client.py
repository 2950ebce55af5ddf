"""LangBot (seed 004) from Python: a pipeline socket, one message, the streamed reply chunks.

    python examples/langbot_client.py "hello"

LANGBOT_URL defaults to the `default` pipeline on ws://127.0.0.1:18789 (public on a gateway without a
token); add `&token=...` (the gateway token or the pipeline's key) for a private one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import websockets


async def main(text: str) -> int:
    url = os.environ.get("LANGBOT_URL", "ws://127.0.0.1:18789/api/v1/pipelines/default/ws/connect?session_type=person")
    async with websockets.connect(url) as ws:
        connected = json.loads(await ws.recv())
        print("connected:", connected["data"]["connection_id"])
        await ws.send(json.dumps({"type": "message", "message": [{"type": "Plain", "text": text}]}))
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "response":
                data = msg["data"]  # content is cumulative; is_final marks the last chunk
                if data["is_final"]:
                    print("final:", data["content"])
                    return 0
            elif msg["type"] == "error":
                print("error:", msg["data"]["message"])
                return 1
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "hello")))
