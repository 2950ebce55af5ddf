"""``agenthub call METHOD``: one request over a real handshake, printed as JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ..protocol import _json

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("call", help="call a gateway method")
    p.add_argument("method")
    p.add_argument("--params", default="{}", help="JSON object of params")
    p.add_argument("--url", default=os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789"))
    p.add_argument("--token", default=None, help="gateway token (or AGENTHUB_GATEWAY_TOKEN)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("AGENTHUB_DATA_DIR", "~/.agenthub"),
        help="where the device identity is kept",
    )
    p.add_argument("--expect-final", action="store_true", help="for agent: stream events until the final result")
    p.add_argument("--json", action="store_true", help="compact JSON, one object per line")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--tls-fingerprint", default=None, help="SHA-256 hex of the gateway's certificate (wss://)")
    p.set_defaults(func=run)


def _print(obj: Any, compact: bool) -> None:
    print(_json.dumps_str(obj) if compact else _json.dumps_pretty(obj), flush=True)


def run(args: argparse.Namespace) -> int:
    from ..client import DeviceIdentity, GatewayClient, GatewayError

    try:
        params = _json.loads(args.params)
    except _json.JSONDecodeError:
        print("agenthub: --params is not valid JSON", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("AGENTHUB_GATEWAY_TOKEN")
    device = DeviceIdentity.load_or_create(Path(args.data_dir).expanduser() / "identity" / "device.pem")

    async def go() -> int:
        async with GatewayClient(
            args.url, token=token, device=device, request_timeout=args.timeout, tls_fingerprint=args.tls_fingerprint
        ) as gw:
            if args.method == "agent" and args.expect_final:
                if "idempotencyKey" not in params:
                    import uuid

                    params["idempotencyKey"] = uuid.uuid4().hex
                async for item in gw.run_agent(
                    params["message"],
                    session_key=params.get("sessionKey"),
                    idempotency_key=params["idempotencyKey"],
                    timeout=max(args.timeout, 600),
                ):
                    _print(item, True if args.json else item.get("type") != "result")
                return 0
            _print(await gw.call(args.method, params, timeout=args.timeout), args.json)
            return 0

    try:
        return asyncio.run(go())
    except GatewayError as exc:
        _print(
            {"ok": False, "error": {"code": str(exc.code), "message": exc.message, "details": exc.details}}, args.json
        )
        return 1
    except OSError as exc:
        print(f"agenthub: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
