"""A node: a device that offers commands to operators and agents (role "node").

It connects with a signed device identity, declares ``weather.get``, and answers each
``node.invoke.request`` with ``node.invoke.result``. On loopback its first connect pairs silently;
from elsewhere an operator approves it (``agenthub devices list`` / ``approve``). Then:

    python examples/node.py &
    agenthub call node.list
    agenthub call node.invoke --params '{"nodeId": "<id>", "command": "weather.get", "params": {"city": "Paris"}}'

Agent runs can call it too: every declared command of a connected node is a tool of the agent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from agenthub.client import GatewayClient
from agenthub.client.identity import DeviceIdentity

WEATHER = {"paris": "cloudy, 14°C", "tokyo": "partly cloudy, 19°C", "london": "drizzle, 12°C"}


async def weather_get(params: dict[str, Any]) -> dict[str, Any]:
    city = str(params.get("city", "")).strip()
    return {"city": city, "weather": WEATHER.get(city.lower(), "unknown")}


async def main(key: Path) -> None:
    url = os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789")
    client = GatewayClient(
        url,
        token=os.environ.get("AGENTHUB_GATEWAY_TOKEN"),
        device=DeviceIdentity.load_or_create(key),  # the node's identity: keep it to stay paired
        role="node",
        client_id="example-node",
        client_mode="node",
        display_name="weather node",
        commands=("weather.get",),
        caps=("weather",),
    )

    async def answer(request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request["id"], "nodeId": request["nodeId"], "ok": True}
        try:
            if request["command"] != "weather.get":
                raise LookupError(f"unknown command {request['command']}")
            params = json.loads(request.get("paramsJSON") or "{}")
            reply["payload"] = await weather_get(params)
        except Exception as exc:
            reply = {**reply, "ok": False, "error": {"code": "COMMAND_FAILED", "message": str(exc)}}
        await client.call("node.invoke.result", reply)

    tasks: set[asyncio.Task[None]] = set()

    def on_invoke(frame: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(answer(frame["payload"]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    client.on("node.invoke.request", on_invoke)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with client:
        print(f"node {client.device.device_id if client.device else '?'} connected to {url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(Path(os.environ.get("NODE_KEY_FILE", "~/.agenthub-example-node.pem")).expanduser()))
