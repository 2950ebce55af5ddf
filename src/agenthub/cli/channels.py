"""``agenthub channels status|pairing|approve``: messaging channels from the shell.

A client of the gateway through the SDK, like ``agenthub devices``: ``approve
telegram CODE`` approves the sender who got that pairing code (OpenClaw's
``openclaw pairing approve telegram CODE``), through ``channels.pairing.approve``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from ..protocol import _json
from ..protocol.methods import PAIRING, READ

__all__ = ["add_parser", "request_of"]


def _connection_options(p: argparse.ArgumentParser, *, here: bool) -> None:
    """Where the gateway is; accepted before or after the sub-command (``here``: this parser owns the defaults)."""

    def default(value: Any) -> Any:
        return value if here else argparse.SUPPRESS

    p.add_argument("--url", default=default(os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789")))
    p.add_argument("--token", default=default(None), help="gateway token (or AGENTHUB_GATEWAY_TOKEN)")
    p.add_argument("--password", default=default(None), help="gateway password (or AGENTHUB_GATEWAY_PASSWORD)")
    p.add_argument("--tls-fingerprint", default=default(None), help="SHA-256 hex of the gateway's certificate")
    p.add_argument("--json", action="store_true", default=default(False), help="compact JSON")
    p.add_argument("--timeout", type=float, default=default(30.0))


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("channels", help="messaging channels: status and DM pairing")
    _connection_options(p, here=True)
    csub = p.add_subparsers(dest="channels_command", required=True)
    status = csub.add_parser("status", help="each channel account's state")
    status.add_argument("--channel", default=None)
    status.add_argument("--probe", action="store_true", help="check each account's credentials live")
    pairing = csub.add_parser("pairing", help="pending DM pairing requests")
    pairing.add_argument("channel", nargs="?", default=None)
    pairing.add_argument("--account", default=None)
    approve = csub.add_parser("approve", help="allow the sender who got this pairing code")
    approve.add_argument("channel")
    approve.add_argument("code")
    approve.add_argument("--account", default=None)
    approve.add_argument("--notify", action="store_true", help="tell the sender on the same channel")
    for command in (status, pairing, approve):
        _connection_options(command, here=False)
    p.set_defaults(func=run)


def request_of(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The method and params a ``channels`` sub-command sends."""
    cmd = args.channels_command
    if cmd == "status":
        params: dict[str, Any] = {"probe": bool(args.probe)}
        if args.channel:
            params["channel"] = args.channel
        return "channels.status", params
    if cmd == "pairing":
        params = {k: v for k, v in (("channel", args.channel), ("accountId", args.account)) if v}
        return "channels.pairing.list", params
    params = {"channel": args.channel, "code": args.code.strip().upper(), "notify": bool(args.notify)}
    if args.account:
        params["accountId"] = args.account
    return "channels.pairing.approve", params


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
            scopes=(READ, PAIRING),
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
