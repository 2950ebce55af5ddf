"""``agenthub pipelines``: create, list and delete LangBot pipelines in the gateway's database.

That is the data dir's SQLite file, or the database ``--database-url`` (or
``AGENTHUB_DATABASE_URL``) names, as for ``agenthub gateway``.

``create`` prints the new uuid; a pipeline is private unless ``--public``, and
a private one also gets its own key, printed once on the next line (clients
send it as ``?token=`` or ``Authorization: Bearer``; the gateway token works
too). ``list`` shows each pipeline's access: ``public``, ``key`` (its key or
the gateway token), ``token`` (the gateway token only), or ``auto`` for the
``default`` pipeline (public on a gateway without auth, else token; see
``security.langbot_default_public``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..core.store import StoreOpenError
from ..storage.pipelines import SqlitePipelines
from ..storage.sql import SqlStore

__all__ = ["add_parser"]

PROVIDERS = ("demo", "openai", "anthropic")


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("pipelines", help="manage LangBot pipelines")
    p.add_argument("--data-dir", default="~/.agenthub", help="state directory (default ~/.agenthub)")
    p.add_argument("--database-url", help="the gateway's database URL (or AGENTHUB_DATABASE_URL; default: SQLite)")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a pipeline and print its uuid")
    create.add_argument("--name", required=True)
    create.add_argument("--provider", choices=PROVIDERS, help="agent provider (default: the gateway's)")
    create.add_argument(
        "--public",
        action="store_true",
        help="anyone who reaches the port may chat, with no credential (default: gateway token or pipeline key)",
    )
    actions.add_parser("list", help="list pipelines")
    delete = actions.add_parser("delete", help="delete a pipeline")
    delete.add_argument("uuid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    database = args.database_url or os.environ.get("AGENTHUB_DATABASE_URL")
    return asyncio.run(_run(args, database or str(Path(args.data_dir).expanduser() / "agenthub.db")))


async def _run(args: argparse.Namespace, database: str) -> int:
    store = SqlStore(database)
    try:
        await store.open()
    except StoreOpenError as exc:
        print(f"agenthub: {exc}", file=sys.stderr)
        return 1
    try:
        pipelines = SqlitePipelines(store.engine)
        if args.action == "create":
            created = await pipelines.create(args.name, args.provider, time.time_ns() // 1_000_000, public=args.public)
            print(created.uuid)
            if not created.public:
                print(await pipelines.new_key(created.uuid))
                print(
                    "agenthub: the pipeline key (second line) is shown only this once; clients send it as "
                    "?token=KEY or 'Authorization: Bearer KEY'",
                    file=sys.stderr,
                )
        elif args.action == "list":
            for p in await pipelines.list():
                access = "auto" if p.uuid == "default" and not p.public else p.access
                print(f"{p.uuid}\t{p.name}\t{p.provider or '(gateway default)'}\t{access}")
        elif not await pipelines.delete(args.uuid):
            print(f"agenthub: no pipeline {args.uuid}", file=sys.stderr)
            return 1
        return 0
    finally:
        await store.close()
