"""``agenthub devices list|approve|reject|remove|rotate|revoke``: pairing from the shell.

A client of the gateway through the SDK, like ``agenthub call``. It connects
without a device identity (it is an admin tool holding the gateway credential,
so it needs no pairing itself) and asks for ``operator.pairing`` plus read; with
the gateway token or password it also asks for ``operator.admin``, because an
approval can only grant scopes the approver holds and OpenClaw's clients ask for
admin (as OpenClaw's own ``openclaw devices approve`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from ..protocol import _json
from ..protocol.methods import ADMIN, PAIRING, READ

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("devices", help="list, approve and manage paired devices")
    p.add_argument("--url", default=os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789"))
    p.add_argument("--token", default=None, help="gateway token (or AGENTHUB_GATEWAY_TOKEN)")
    p.add_argument("--password", default=None, help="gateway password (or AGENTHUB_GATEWAY_PASSWORD)")
    p.add_argument("--tls-fingerprint", default=None, help="SHA-256 hex of the gateway's certificate (wss://)")
    p.add_argument("--json", action="store_true", help="compact JSON")
    p.add_argument("--timeout", type=float, default=30.0)
    dsub = p.add_subparsers(dest="devices_command", required=True)
    dsub.add_parser("list", help="pending requests and paired devices")
    for name in ("approve", "reject"):
        a = dsub.add_parser(name, help=f"{name} a pairing request")
        a.add_argument("request_id")
    r = dsub.add_parser("remove", help="unpair a device (closes its sockets)")
    r.add_argument("device_id")
    rot = dsub.add_parser("rotate", help="issue a new device token (the old one stops working)")
    rot.add_argument("device_id")
    rot.add_argument("--role", default="operator")
    rot.add_argument("--scope", action="append", dest="scopes", help="scopes of the new token (repeatable)")
    rev = dsub.add_parser("revoke", help="revoke a device token (closes its sockets)")
    rev.add_argument("device_id")
    rev.add_argument("--role", default="operator")
    p.set_defaults(func=run)


def request_of(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The method and params a ``devices`` sub-command sends."""
    cmd = args.devices_command
    if cmd == "list":
        return "device.pair.list", {}
    if cmd in ("approve", "reject"):
        return f"device.pair.{cmd}", {"requestId": args.request_id}
    if cmd == "remove":
        return "device.pair.remove", {"deviceId": args.device_id}
    params: dict[str, Any] = {"deviceId": args.device_id, "role": args.role}
    if cmd == "rotate":
        if args.scopes:
            params["scopes"] = list(args.scopes)
        return "device.token.rotate", params
    return "device.token.revoke", params


def scopes_for(token: str | None, password: str | None) -> tuple[str, ...]:
    """The scopes the CLI asks for: admin only when it holds the gateway's shared secret."""
    return (READ, PAIRING, ADMIN) if token or password else (READ, PAIRING)


def run(args: argparse.Namespace) -> int:
    from ..client import GatewayClient, GatewayError

    method, params = request_of(args)
    token = args.token or os.environ.get("AGENTHUB_GATEWAY_TOKEN")
    password = args.password or os.environ.get("AGENTHUB_GATEWAY_PASSWORD")

    async def go() -> Any:
        async with GatewayClient(
            args.url,
            token=token,
            password=password,
            scopes=scopes_for(token, password),
            request_timeout=args.timeout,
            reconnect=False,
            heartbeat_interval=0,
            tls_fingerprint=args.tls_fingerprint,
        ) as gw:
            return await gw.call(method, params)

    try:
        result = asyncio.run(go())
    except GatewayError as exc:
        err = {"ok": False, "error": {"code": str(exc.code), "message": exc.message, "details": exc.details}}
        print(_json.dumps_str(err) if args.json else _json.dumps_pretty(err), flush=True)
        return 1
    except OSError as exc:
        print(f"agenthub: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(_json.dumps_str(result) if args.json else _json.dumps_pretty(result), flush=True)
    return 0
