"""``agenthub channels status|pairing|approve``: messaging channels from the shell.

A client of the gateway through the SDK, like ``agenthub devices``: ``approve
telegram CODE`` approves the sender who got that pairing code (OpenClaw's
``openclaw pairing approve telegram CODE``), through ``channels.pairing.approve``.
"""

from __future__ import annotations

from typing import Any

import click

from ..protocol.methods import PAIRING, READ
from .options import shared, shared_options
from .remote import make_client, print_json, run_remote

__all__ = ["channels"]

_OPTS = ("url", "token", "token_file", "password", "password_file", "json", "timeout", "tls_fingerprint", "ca_file")


@click.group()
@shared_options(*_OPTS)
def channels() -> None:
    """Messaging channels: status and DM pairing (through the running gateway)."""


def _send(ctx: click.Context, method: str, params: dict[str, Any]) -> int:
    sh = shared(ctx)

    async def go() -> Any:
        async with make_client(sh, scopes=(READ, PAIRING), reconnect=False, heartbeat_interval=0) as gw:
            return await gw.call(method, params)

    print_json(run_remote(sh, go), sh.json)
    return 0


@channels.command()
@click.option("--channel", default=None, help="only this channel (telegram, slack, discord, webchat)")
@click.option("--probe", is_flag=True, help="check each account's credentials live")
@shared_options(*_OPTS)
@click.pass_context
def status(ctx: click.Context, channel: str | None, probe: bool) -> int:
    """Each channel account's state."""
    params: dict[str, Any] = {"probe": probe}
    if channel:
        params["channel"] = channel
    return _send(ctx, "channels.status", params)


@channels.command()
@click.argument("channel", required=False)
@click.option("--account", default=None, help="only this account")
@shared_options(*_OPTS)
@click.pass_context
def pairing(ctx: click.Context, channel: str | None, account: str | None) -> int:
    """Pending DM pairing requests."""
    params = {k: v for k, v in (("channel", channel), ("accountId", account)) if v}
    return _send(ctx, "channels.pairing.list", params)


@channels.command()
@click.argument("channel")
@click.argument("code")
@click.option("--account", default=None, help="the account the code was sent from")
@click.option("--notify", is_flag=True, help="tell the sender on the same channel")
@shared_options(*_OPTS)
@click.pass_context
def approve(ctx: click.Context, channel: str, code: str, account: str | None, notify: bool) -> int:
    """Allow the sender who got this pairing code."""
    params: dict[str, Any] = {"channel": channel, "code": code.strip().upper(), "notify": notify}
    if account:
        params["accountId"] = account
    return _send(ctx, "channels.pairing.approve", params)
