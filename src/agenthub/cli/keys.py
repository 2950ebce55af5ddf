"""``agenthub keys create|list|revoke``: user API keys for the AgentBox dialect.

These work on the gateway's database directly (the data dir's SQLite file, or
the database ``--database-url`` or ``AGENTHUB_DATABASE_URL`` names), so they need no running
gateway (and a running one sees changes at the next ``auth``: keys are looked
up on every use). The key itself is printed once, at creation; only its
SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..storage.sql import SqlStore

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("keys", help="manage AgentBox user API keys (ab_...)")
    p.add_argument("--data-dir", help="the gateway's state directory (default ~/.agenthub)")
    p.add_argument("--database-url", help="the gateway's database URL (or AGENTHUB_DATABASE_URL; default: SQLite)")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--user", required=True, help="the user the key acts as")
    create.add_argument("--scope", action="append", default=[], help="extra scope, e.g. admin (repeatable)")
    create.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    create.add_argument("--database-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lst = actions.add_parser("list", help="list keys (ids, users, scopes; never the keys)")
    lst.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lst.add_argument("--database-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    revoke = actions.add_parser("revoke", help="revoke a key by its id (or by the key itself)")
    revoke.add_argument("key_id")
    revoke.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    revoke.add_argument("--database-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _database(args: argparse.Namespace) -> str:
    """The database URL if one is given, else the data dir's SQLite file."""
    url: str | None = args.database_url or os.environ.get("AGENTHUB_DATABASE_URL")
    return url or str(Path(args.data_dir or "~/.agenthub").expanduser() / "agenthub.db")


def _fmt_ms(ms: int | None) -> str:
    return "-" if ms is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


async def _with_store(database: str, action: Callable[[SqlStore], Awaitable[int]]) -> int:
    from ..core.store import StoreOpenError
    from ..storage.sql import SqlStore  # imported here: other sub-commands need not load SQLAlchemy

    store = SqlStore(database)
    try:
        await store.open()
    except StoreOpenError as exc:
        print(f"agenthub: {exc}", file=sys.stderr)
        return 1
    try:
        return await action(store)
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    from ..dialects.agentbox import new_api_key

    now = time.time_ns() // 1_000_000

    async def create(store: SqlStore) -> int:
        try:
            key, record = new_api_key(args.user, ["tasks", *args.scope], now)
        except ValueError as exc:
            print(f"agenthub: {exc}", file=sys.stderr)
            return 2
        await store.put_api_key(record)
        print(key)
        print(f"key id {record.key_id} for user {record.user_id} (scopes: {', '.join(record.scopes)})", file=sys.stderr)
        return 0

    async def list_keys(store: SqlStore) -> int:
        keys = await store.list_api_keys()
        print(f"{'KEY ID':<14}{'USER':<24}{'SCOPES':<20}{'CREATED':<22}REVOKED")
        for k in keys:
            scopes = ",".join(k.scopes)
            print(f"{k.key_id:<14}{k.user_id:<24}{scopes:<20}{_fmt_ms(k.created_ms):<22}{_fmt_ms(k.revoked_ms)}")
        return 0

    async def revoke(store: SqlStore) -> int:
        key_id = args.key_id[3:15] if args.key_id.startswith("ab_") else args.key_id
        if await store.revoke_api_key(key_id, now):
            print(f"revoked {key_id}")
            return 0
        print(f"agenthub: no active key {key_id}", file=sys.stderr)
        return 1

    actions = {"create": create, "list": list_keys, "revoke": revoke}
    return asyncio.run(_with_store(_database(args), actions[args.action]))
