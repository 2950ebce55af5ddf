"""Run inside a private network namespace (see test_agentbox.py): ``agenthub gateway --agentbox`` alone,
then the seed's endpoint ``ws://localhost:18080/api/v1/gateway/ws`` and REST on 18080. Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import websockets


async def talk(key: str) -> tuple[dict[str, object], str, int]:
    async with websockets.connect("ws://localhost:18080/api/v1/gateway/ws") as ws:
        await ws.send(json.dumps({"id": "1", "type": "auth", "payload": {"token": key}}))
        auth = json.loads(await ws.recv())["payload"]
        await ws.send(json.dumps({"id": "2", "type": "ping"}))
        pong = json.loads(await ws.recv())["type"]
    async with httpx.AsyncClient() as http:
        res = await http.post(
            "http://localhost:18080/api/v1/tasks", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {key}"}
        )
    return auth, pong, res.status_code


def main(data_dir: str) -> dict[str, object]:
    agenthub = [sys.executable, "-m", "agenthub"]
    key = subprocess.run(
        [*agenthub, "keys", "create", "--user", "seed", "--data-dir", data_dir],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    proc = subprocess.Popen(
        [*agenthub, "gateway", "--port", "0", "--data-dir", data_dir, "--agentbox"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    log: list[str] = []
    try:
        while "ready on" not in (line := proc.stdout.readline().decode()):
            assert line, "".join(log)
            log.append(line)
        auth, pong, status = asyncio.run(talk(key))
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=20)
        log.append(rest.decode(errors="replace"))
    text = "".join(log)
    listening = "agentbox listening on ws://127.0.0.1:18080" in text
    return {"auth": auth, "pong": pong, "task_status": status, "listening": listening, "log": text}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
