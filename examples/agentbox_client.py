"""AgentBox (seed 002) from Python: an API key, a task over REST, its events over the WebSocket.

    KEY=$(agenthub keys create --user alice)
    AGENTBOX_KEY=$KEY python examples/agentbox_client.py "what is 2+2"

AGENTBOX_URL defaults to http://127.0.0.1:18789 (the main port serves AgentBox; `--agentbox-port` adds one).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any

import httpx
import websockets


def frame(kind: str, payload: dict[str, Any]) -> str:
    """AgentBox's envelope: {id, type, payload, timestamp}."""
    return json.dumps({"id": uuid.uuid4().hex, "type": kind, "payload": payload, "timestamp": int(time.time() * 1000)})


async def main(prompt: str) -> int:
    base = os.environ.get("AGENTBOX_URL", "http://127.0.0.1:18789")
    key = os.environ["AGENTBOX_KEY"]
    async with websockets.connect(base.replace("http", "ws", 1) + "/api/v1/gateway/ws") as ws:
        await ws.send(frame("auth", {"token": key}))
        print("auth:", json.loads(await ws.recv())["payload"])
        await ws.send(frame("subscribe", {"channel": "task", "topics": []}))  # [] = every task of this user
        json.loads(await ws.recv())
        async with httpx.AsyncClient(base_url=base) as http:
            res = await http.post("/api/v1/tasks", json={"prompt": prompt}, headers={"Authorization": f"Bearer {key}"})
            res.raise_for_status()
            task = res.json()
        print("task:", task["task_id"], task["status"])
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] != "event":
                continue
            event, data = msg["payload"]["event_type"], msg["payload"]["data"]
            if event == "agent.message":
                print(data["content"], end="", flush=True)
            elif event in ("task.completed", "task.failed", "task.cancelled"):
                print(f"\n{event}: {data.get('result') or data.get('error')}")
                return 0 if event == "task.completed" else 1
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "what is 2+2")))
