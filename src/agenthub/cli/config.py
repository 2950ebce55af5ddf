"""``agenthub config schema|show|validate|reference``: the settings model, seen from the shell.

``show`` and ``validate`` take the gateway's own flags, so they answer for exactly
the command line you would start it with; the stored overrides are read from the
data dir's database when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ..config import GatewaySettings, reference_markdown, validation_messages
from ..protocol import _json
from .gateway import settings_layers
from .keys import with_store
from .options import CliError, settings_options, shared, shared_options
from .remote import print_json

__all__ = ["config", "settings_service", "stored_overrides"]

_OPTS = ("data_dir", "config", "token", "token_file", "password", "password_file", "json")


def stored_overrides(database: str | Path) -> dict[str, Any]:
    """The overrides ``config.patch`` stored in the gateway's database ({} when there is none yet).

    Never creates a SQLite file; beside a running gateway it only reads (the database serialises).
    """
    if isinstance(database, Path) and not database.exists():
        return {}
    found: dict[str, Any] = {}

    async def read(store: Any) -> int:
        found.update(await store.get_config())
        return 0

    with_store(database, read)
    return found


def settings_service(ctx: click.Context, params: dict[str, Any]) -> Any:
    from ..app import SettingsService

    base, env, flags = settings_layers(ctx, params)
    try:
        service = SettingsService(base, flags, None, env=env)
    except ValidationError as exc:
        raise CliError("invalid config: " + "; ".join(validation_messages(exc)), 2) from None
    settings = service.settings
    stored = stored_overrides(settings.database_url or Path(settings.resolved_data_dir) / "agenthub.db")
    try:
        service.use_stored(stored)
    except ValidationError as exc:
        raise CliError("invalid stored config (config.patch): " + "; ".join(validation_messages(exc)), 2) from None
    return service


@click.group()
@shared_options(*_OPTS)
def config() -> None:
    """Show, check and document the gateway's settings."""


@config.command()
def schema() -> int:
    """Print the settings' JSON Schema (the config file's format)."""
    print(_json.dumps_pretty(GatewaySettings.model_json_schema()))
    return 0


@config.command()
@settings_options
@shared_options(*_OPTS)
@click.pass_context
def show(ctx: click.Context, /, **params: Any) -> int:
    """Print the effective settings and where each value came from.

    Sources: default, file (--config), stored (config.patch), env, flag.
    """
    service = settings_service(ctx, params)
    described = service.describe()
    if shared(ctx).json:
        print_json(described, False)
        return 0
    console = Console(highlight=False)
    table = Table("setting", "value", "source")
    from ..config import flatten

    values = flatten(described["config"])
    for path, source in described["sources"].items():
        table.add_row(path, _json.dumps_str(values.get(path)), source)
    console.print(table)
    for warning in described["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", markup=True)
    return 0


@config.command()
@settings_options
@shared_options(*_OPTS)
@click.pass_context
def validate(ctx: click.Context, /, **params: Any) -> int:
    """Check the config file, the environment, the flags and the stored overrides.

    Prints each error on its own line and exits 1, or "config ok".
    """
    from ..app import ConfigError, check_startup

    try:
        service = settings_service(ctx, params)
        check_startup(service.settings, service.sources)
    except CliError as exc:
        click.echo(exc.format_message(), err=True)
        return 1
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        return 1
    for warning in service.warnings():
        click.echo(f"warning: {warning}", err=True)
    click.echo("config ok")
    return 0


@config.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to this file instead of stdout")
@click.option("--check", is_flag=True, help="exit 1 if --output differs from what would be written")
def reference(output: str | None, check: bool) -> int:
    """Generate the Markdown configuration reference (docs/config.md) from the model."""
    text = reference_markdown()
    if output is None:
        click.echo(text, nl=False)
        return 0
    path = Path(output)
    if check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            raise CliError(f"{path} is out of date: run `agenthub config reference -o {path}`")
        click.echo(f"{path} is up to date")
        return 0
    path.write_text(text)
    click.echo(f"wrote {path}")
    return 0
