"""MyAgent (seed 003) from Python: a session, a question, the thinking and the final answer.

    make run ARGS="--myagent-port 8080 --dev"      # or: agenthub serve-agent examples/weather_agent.py --dev ...
    python examples/myagent_client.py "what's the weather in Paris?"

MYAGENT_URL defaults to ws://127.0.0.1:8080 (add ?token=... when the gateway has a token).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import websockets


async def main(text: str) -> int:
    url = os.environ.get("MYAGENT_URL", "ws://127.0.0.1:8080")
    async with websockets.connect(url) as ws:
        print(json.loads(await ws.recv())["event"])  # system.connected
        await ws.send(json.dumps({"event": "user.create_session"}))
        while (msg := json.loads(await ws.recv()))["event"] != "agent.session_created":
            pass
        session_id = msg["session_id"]
        await ws.send(json.dumps({"event": "user.message", "session_id": session_id, "content": text}))
        async for raw in ws:
            msg = json.loads(raw)
            event = msg["event"]
            if event == "agent.thinking":
                print("thinking:", msg.get("content"))
            elif event in ("agent.tool_call", "agent.tool_result"):
                print(f"{event}:", msg.get("content"))
            elif event == "agent.final_answer":
                print("answer:", msg["content"])
                # Acknowledge what we read: a reconnect with user.reconnect resumes after it.
                await ws.send(json.dumps({"event": "user.ack", "content": {"last_seq": msg["seq"]}}))
                return 0
            elif event == "system.error":
                print("error:", msg.get("content"))
                return 1
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "what's the weather in Paris?")))
