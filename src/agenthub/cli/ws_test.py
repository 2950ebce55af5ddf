"""``agenthub ws-test``: the LangBot multi-connection test client (seed 004's test_websocket_client.py).

Each connection sends one message to the pipeline and reads reply chunks until
``is_final``; ``--multi N`` runs N connections at once and prints a summary.
The exit code is 0 only if every connection got its final reply.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

import click
import websockets

from .options import shared, shared_options

__all__ = ["run_client", "ws_test"]


@click.command("ws-test")
@click.argument("pipeline_uuid")
@click.option("--session-type", type=click.Choice(["person", "group"]), default="person", show_default=True)
@click.option("--multi", type=int, default=1, metavar="N", help="run N connections concurrently")
@click.option("--message", default="你好", show_default=True, help="text to send")
@shared_options("url", "token", "timeout")
@click.pass_context
def ws_test(ctx: click.Context, pipeline_uuid: str, session_type: str, multi: int, message: str) -> int:
    """LangBot WebSocket test client (seed 004's test_websocket_client.py).

    Sends MESSAGE on each connection and reads reply chunks until is_final; exit 0
    only if every connection got its final reply.
    """
    sh = shared(ctx)
    base = sh.url.rstrip("/")
    url = f"{base}/api/v1/pipelines/{pipeline_uuid}/ws/connect?session_type={session_type}"
    token = sh.token
    if token:
        url += "&" + urllib.parse.urlencode({"token": token})
    timeout = float(sh.get("timeout", 60.0))

    async def main() -> int:
        n = max(1, multi)
        results = await asyncio.gather(
            *(run_client(url, message, timeout, f"conn-{i + 1}", n == 1) for i in range(n)),
            return_exceptions=True,
        )
        ok = 0
        for i, res in enumerate(results):
            if isinstance(res, BaseException):
                print(f"[conn-{i + 1}] failed: {res!r}")
            else:
                ok += res["final"] is not None
                if n > 1:
                    print(f"[{res['label']}] {res['chunks']} chunk(s) in {res['seconds']:.2f}s: {res['final']}")
        print(f"{ok}/{n} connection(s) got a final reply")
        return 0 if ok == n else 1

    return asyncio.run(main())


async def run_client(url: str, message: str, timeout: float, label: str, verbose: bool) -> dict[str, Any]:
    """One connection: send ``message``, collect chunks until the final one."""
    started = time.monotonic()
    chunks = 0
    final: str | None = None
    async with asyncio.timeout(timeout), websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "message", "message": [{"type": "Plain", "text": message}]}))
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "response":
                data = frame["data"]
                chunks += 1
                if data.get("is_final"):
                    final = data["content"]
                    break
            elif kind == "error":
                raise RuntimeError(frame.get("data", {}).get("message", "error"))
            elif verbose:
                print(f"[{label}] {kind}: {frame.get('data')}")
    if verbose and final is not None:
        print(f"[{label}] assistant: {final}")
    return {"label": label, "chunks": chunks, "final": final, "seconds": time.monotonic() - started}
