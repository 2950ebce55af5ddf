"""``agenthub pipelines``: create, list and delete LangBot pipelines in the gateway's database.

That is the data dir's SQLite file, or the database ``--database-url`` (or
``AGENTHUB_DATABASE_URL``) names, as for ``agenthub gateway``. Like ``agenthub keys``,
safe beside a running gateway: the database serialises the writes, and the gateway
reads a pipeline when a socket opens.

``create`` prints the new uuid; a pipeline is private unless ``--public``, and a
private one also gets its own key, printed once on the next line (clients send it as
``?token=`` or ``Authorization: Bearer``; the gateway token works too). ``list`` shows
each pipeline's access: ``public``, ``key`` (its key or the gateway token), ``token``
(the gateway token only), or ``auto`` for the ``default`` pipeline (public on a
gateway without auth, else token; see ``security.langbot_default_public``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from .keys import with_store
from .options import CliError, shared, shared_options
from .remote import print_json

if TYPE_CHECKING:
    from ..storage.pipelines import Pipeline
    from ..storage.sql import SqlStore

__all__ = ["pipelines"]

PROVIDERS = ("demo", "openai", "anthropic")


@click.group()
@shared_options("data_dir", "database_url", "json")
def pipelines() -> None:
    """Manage LangBot pipelines."""


@pipelines.command()
@click.option("--name", required=True)
@click.option("--provider", type=click.Choice(PROVIDERS), help="agent provider [default: the gateway's]")
@click.option(
    "--public",
    is_flag=True,
    help="anyone who reaches the port may chat, with no credential [default: gateway token or pipeline key]",
)
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def create(ctx: click.Context, name: str, provider: str | None, public: bool) -> int:
    """Create a pipeline and print its uuid (and, unless --public, its key, shown only once)."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqlStore) -> int:
        found = SqlitePipelines(store.engine)
        created = await found.create(name, provider, time.time_ns() // 1_000_000, public=public)
        key = None if created.public else await found.new_key(created.uuid)
        if sh.json:
            out = {"uuid": created.uuid, "name": created.name, "provider": created.provider, "public": created.public}
            print_json(out if key is None else {**out, "key": key}, True)
            return 0
        print(created.uuid)
        if key is not None:
            print(key)
            click.echo(
                "agenthub: the pipeline key (second line) is shown only this once; clients send it as "
                "?token=KEY or 'Authorization: Bearer KEY'",
                err=True,
            )
        return 0

    return with_store(sh.database, action)


@pipelines.command("list")
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def list_(ctx: click.Context) -> int:
    """List pipelines (uuid, name, provider, access)."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqlStore) -> int:
        found = await SqlitePipelines(store.engine).list()
        if sh.json:
            rows = [{"uuid": p.uuid, "name": p.name, "provider": p.provider, "access": _access(p)} for p in found]
            print_json(rows, True)
        for p in found if not sh.json else ():
            print(f"{p.uuid}\t{p.name}\t{p.provider or '(gateway default)'}\t{_access(p)}")
        return 0

    return with_store(sh.database, action)


@pipelines.command()
@click.argument("uuid")
@shared_options("data_dir", "database_url", "json")
@click.pass_context
def delete(ctx: click.Context, uuid: str) -> int:
    """Delete a pipeline."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqlStore) -> int:
        if not await SqlitePipelines(store.engine).delete(uuid):
            raise CliError(f"no pipeline {uuid}")
        return 0

    return with_store(sh.database, action)


def _access(p: Pipeline) -> str:
    """``public``, ``key``, ``token``; ``auto`` for ``default`` (the gateway decides, see the module doc)."""
    return "auto" if p.uuid == "default" and not p.public else p.access
