"""``agenthub ws-test``: the LangBot multi-connection test client (seed 004's test_websocket_client.py).

Each connection sends one message to the pipeline and reads reply chunks until
``is_final``; ``--multi N`` runs N connections at once and prints a summary.
The exit code is 0 only if every connection got its final reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import websockets

__all__ = ["add_parser", "run_client"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("ws-test", help="LangBot WebSocket test client")
    p.add_argument("pipeline_uuid")
    p.add_argument("--session-type", choices=["person", "group"], default="person")
    p.add_argument("--multi", type=int, default=1, metavar="N", help="run N connections concurrently")
    p.add_argument("--url", default="ws://127.0.0.1:18789", help="gateway base URL")
    p.add_argument("--message", default="你好", help="text to send")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    url = f"{base}/api/v1/pipelines/{args.pipeline_uuid}/ws/connect?session_type={args.session_type}"

    async def main() -> int:
        n = max(1, args.multi)
        results = await asyncio.gather(
            *(run_client(url, args.message, args.timeout, f"conn-{i + 1}", n == 1) for i in range(n)),
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
