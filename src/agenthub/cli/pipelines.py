"""``agenthub pipelines``: create, list and delete LangBot pipelines in the data dir's database.

Like ``agenthub keys``, safe beside a running gateway: SQLite serialises the writes,
and the gateway reads a pipeline from the database when a socket opens.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from .keys import with_store
from .options import CliError, shared, shared_options
from .remote import print_json

if TYPE_CHECKING:
    from ..storage.sqlite import SqliteStore

__all__ = ["pipelines"]

PROVIDERS = ("demo", "openai", "anthropic")


@click.group()
@shared_options("data_dir", "json")
def pipelines() -> None:
    """Manage LangBot pipelines."""


@pipelines.command()
@click.option("--name", required=True)
@click.option("--provider", type=click.Choice(PROVIDERS), help="agent provider [default: the gateway's]")
@shared_options("data_dir", "json")
@click.pass_context
def create(ctx: click.Context, name: str, provider: str | None) -> int:
    """Create a pipeline and print its uuid."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqliteStore) -> int:
        created = await SqlitePipelines(store.engine).create(name, provider, time.time_ns() // 1_000_000)
        if sh.json:
            print_json({"uuid": created.uuid, "name": created.name, "provider": created.provider}, True)
        else:
            print(created.uuid)
        return 0

    return with_store(sh.data_dir, action)


@pipelines.command("list")
@shared_options("data_dir", "json")
@click.pass_context
def list_(ctx: click.Context) -> int:
    """List pipelines (uuid, name, provider)."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqliteStore) -> int:
        found = await SqlitePipelines(store.engine).list()
        if sh.json:
            print_json([{"uuid": p.uuid, "name": p.name, "provider": p.provider} for p in found], True)
        for p in found if not sh.json else ():
            print(f"{p.uuid}\t{p.name}\t{p.provider or '(gateway default)'}")
        return 0

    return with_store(sh.data_dir, action)


@pipelines.command()
@click.argument("uuid")
@shared_options("data_dir", "json")
@click.pass_context
def delete(ctx: click.Context, uuid: str) -> int:
    """Delete a pipeline."""
    from ..storage.pipelines import SqlitePipelines

    sh = shared(ctx)

    async def action(store: SqliteStore) -> int:
        if not await SqlitePipelines(store.engine).delete(uuid):
            raise CliError(f"no pipeline {uuid}")
        return 0

    return with_store(sh.data_dir, action)
