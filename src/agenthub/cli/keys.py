"""``agenthub keys create|list|revoke``: user API keys for the AgentBox dialect.

These work on the data dir's database directly, so they need no running gateway,
and they are safe beside a running one: SQLite's locking (WAL and a busy timeout)
serialises the writes, and the gateway looks a key up on every use (no cache), so
a created key works at once and a revoked one is refused at once. The key itself
is printed once, at creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .options import CliError, shared, shared_options
from .remote import print_json

if TYPE_CHECKING:
    from ..storage.sql import SqlStore

__all__ = ["keys", "with_store"]


def _fmt_ms(ms: int | None) -> str:
    return "-" if ms is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def with_store(database: str | Path, action: Callable[[SqlStore], Awaitable[int]]) -> int:
    """Open the gateway's database (a URL, or the data dir's SQLite file), run ``action``, close it."""
    from ..core.store import StoreOpenError
    from ..storage.sql import SqlStore  # imported here: other sub-commands need not load SQLAlchemy

    async def go() -> int:
        store = SqlStore(database)
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except StoreOpenError as exc:  # names the database and what to do
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot open the database {database}: {exc}") from None


@click.group()
@shared_options("data_dir", "database_url", "json")
def keys() -> None:
    """Manage AgentBox user API keys (ab_...)."""


@keys.command()
@click.option("--user", required=True, help="the user the key acts as")
@click.option("--scope", "scopes", multiple=True, help="extra scope, e.g. admin (repeatable)")
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def create(ctx: click.Context, user: str, scopes: tuple[str, ...]) -> int:
    """Create a key and print it (shown only once)."""
    from ..dialects.agentbox import new_api_key

    sh = shared(ctx)
    try:
        key, record = new_api_key(user, ["tasks", *scopes], time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None

    async def action(store: SqlStore) -> int:
        await store.put_api_key(record)
        if sh.json:
            print_json({"key": key, "keyId": record.key_id, "user": record.user_id, "scopes": record.scopes}, True)
        else:
            print(key)
            print(
                f"key id {record.key_id} for user {record.user_id} (scopes: {', '.join(record.scopes)})",
                file=sys.stderr,
            )
        return 0

    return with_store(sh.database, action)


@keys.command("list")
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def list_(ctx: click.Context) -> int:
    """List keys (ids, users, scopes; never the keys)."""
    sh = shared(ctx)

    async def action(store: SqlStore) -> int:
        found = await store.list_api_keys()
        if sh.json:
            rows: list[dict[str, Any]] = [
                {
                    "keyId": k.key_id,
                    "user": k.user_id,
                    "scopes": k.scopes,
                    "createdMs": k.created_ms,
                    "revokedMs": k.revoked_ms,
                }
                for k in found
            ]
            print_json(rows, True)
            return 0
        print(f"{'KEY ID':<14}{'USER':<24}{'SCOPES':<20}{'CREATED':<22}REVOKED")
        for k in found:
            scopes = ",".join(k.scopes)
            print(f"{k.key_id:<14}{k.user_id:<24}{scopes:<20}{_fmt_ms(k.created_ms):<22}{_fmt_ms(k.revoked_ms)}")
        return 0

    return with_store(sh.database, action)


@keys.command()
@click.argument("key_id")
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> int:
    """Revoke a key by its id (or by the key itself)."""
    sh = shared(ctx)
    kid = key_id[3:15] if key_id.startswith("ab_") else key_id

    async def action(store: SqlStore) -> int:
        if await store.revoke_api_key(kid, time.time_ns() // 1_000_000):
            print(f"revoked {kid}")
            return 0
        print(f"agenthub: no active key {kid}", file=sys.stderr)
        return 1

    return with_store(sh.database, action)
