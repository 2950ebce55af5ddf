"""``agenthub devices list|approve|reject|remove|rotate|revoke``: pairing from the shell.

A client of the gateway through the SDK, like ``agenthub call``. It connects
without a device identity (it is an admin tool holding the gateway credential,
so it needs no pairing itself) and asks for ``operator.pairing`` plus read; with
the gateway token or password it also asks for ``operator.admin``, because an
approval can only grant scopes the approver holds and OpenClaw's clients ask for
admin (as OpenClaw's own ``openclaw devices approve`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..protocol.methods import ADMIN, PAIRING, READ
from .options import shared, shared_options
from .remote import make_client, print_json, run_remote

__all__ = ["devices"]

_OPTS = ("url", "token", "token_file", "password", "password_file", "json", "timeout", "tls_fingerprint", "ca_file")


@click.group()
@shared_options(*_OPTS)
def devices() -> None:
    """List, approve and manage paired devices (through the running gateway)."""


def scopes_for(token: str | None, password: str | None) -> tuple[str, ...]:
    """The scopes the CLI asks for: admin only when it holds the gateway's shared secret.

    OpenClaw's CLI asks for admin, so an owner approving its device must hold admin to grant it.
    """
    return (READ, PAIRING, ADMIN) if token or password else (READ, PAIRING)


def _send(ctx: click.Context, method: str, params: dict[str, Any], render: Callable[[Any], None] | None = None) -> int:
    sh = shared(ctx)

    async def go() -> Any:
        async with make_client(
            sh, scopes=scopes_for(sh.token, sh.password), reconnect=False, heartbeat_interval=0
        ) as gw:
            return await gw.call(method, params)

    result = run_remote(sh, go)
    if render is None or sh.json:
        print_json(result, sh.json)
    else:
        render(result)
    return 0


def _render_list(result: dict[str, Any]) -> None:
    console = Console(highlight=False)
    pending = Table("request", "device", "name", "role", "scopes", "remote", title="pending requests")
    paired = Table("device", "name", "platform", "roles", "scopes", title="paired devices")
    for col in (*pending.columns[:2], paired.columns[0]):
        col.overflow = "fold"  # ids are copied into approve/remove: never cut them
    for r in result.get("pending") or []:
        pending.add_row(
            str(r.get("requestId")),
            str(r.get("deviceId", "")),
            str(r.get("displayName") or ""),
            str(r.get("role") or ""),
            ",".join(r.get("scopes") or []),
            str(r.get("remoteIp") or ""),
        )
    for d in result.get("paired") or []:
        paired.add_row(
            str(d.get("deviceId", "")),
            str(d.get("displayName") or ""),
            str(d.get("platform") or ""),
            ",".join(d.get("roles") or ([d["role"]] if d.get("role") else [])),
            ",".join(d.get("scopes") or []),
        )
    console.print(pending)
    console.print(paired)


@devices.command("list")
@shared_options(*_OPTS)
@click.pass_context
def list_(ctx: click.Context) -> int:
    """Pending requests and paired devices."""
    return _send(ctx, "device.pair.list", {}, _render_list)


@devices.command()
@click.argument("request_id")
@shared_options(*_OPTS)
@click.pass_context
def approve(ctx: click.Context, request_id: str) -> int:
    """Approve a pairing request."""
    return _send(ctx, "device.pair.approve", {"requestId": request_id})


@devices.command()
@click.argument("request_id")
@shared_options(*_OPTS)
@click.pass_context
def reject(ctx: click.Context, request_id: str) -> int:
    """Reject a pairing request."""
    return _send(ctx, "device.pair.reject", {"requestId": request_id})


@devices.command()
@click.argument("device_id")
@shared_options(*_OPTS)
@click.pass_context
def remove(ctx: click.Context, device_id: str) -> int:
    """Unpair a device (closes its sockets)."""
    return _send(ctx, "device.pair.remove", {"deviceId": device_id})


@devices.command()
@click.argument("device_id")
@click.option("--role", default="operator", show_default=True)
@click.option("--scope", "scopes", multiple=True, help="scopes of the new token (repeatable)")
@shared_options(*_OPTS)
@click.pass_context
def rotate(ctx: click.Context, device_id: str, role: str, scopes: tuple[str, ...]) -> int:
    """Issue a new device token (the old one stops working)."""
    params: dict[str, Any] = {"deviceId": device_id, "role": role}
    if scopes:
        params["scopes"] = list(scopes)
    return _send(ctx, "device.token.rotate", params)


@devices.command()
@click.argument("device_id")
@click.option("--role", default="operator", show_default=True)
@shared_options(*_OPTS)
@click.pass_context
def revoke(ctx: click.Context, device_id: str, role: str) -> int:
    """Revoke a device token (closes its sockets)."""
    return _send(ctx, "device.token.revoke", {"deviceId": device_id, "role": role})
