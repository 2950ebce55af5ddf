"""The ``agenthub`` command, built on Click.

Click rather than Typer: the shared options must work in every position
(``agenthub --json devices list`` and ``agenthub devices list --json``), which
takes per-parameter callbacks and parameter sources (``options.py``); Typer wraps
exactly those Click parts behind function signatures and adds nothing we use.
Click also brings shell completion and ``--version``; output is rendered with rich.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from click.shell_completion import get_completion_class

from .. import __version__
from . import (
    call,
    channels,
    chat,
    config,
    devices,
    doctor,
    gateway,
    keys,
    node,
    pipelines,
    protocol,
    serve_agent,
    ws_test,
)
from .options import shared_options

__all__ = ["cli", "main"]

# Every option without an explicit variable gets AGENTHUB_<COMMAND>_<OPTION> (e.g. AGENTHUB_CALL_PARAMS).
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110, "auto_envvar_prefix": "AGENTHUB"}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="agenthub")
@shared_options()
def cli() -> None:
    """A real-time WebSocket gateway for AI agents.

    Shared options (--url, --token, --data-dir, --json, ...) work before or after any
    sub-command, and each has an environment variable (shown in every --help).
    """


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script, e.g. `eval "$(agenthub completion bash)"`."""
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "agenthub", "_AGENTHUB_COMPLETE").source())


for command in (
    gateway.gateway,
    call.call,
    chat.chat,
    devices.devices,
    channels.channels,
    keys.keys,
    node.node,
    pipelines.pipelines,
    protocol.protocol,
    serve_agent.serve_agent,
    serve_agent.myagent,
    ws_test.ws_test,
    config.config,
    doctor.doctor,
):
    cli.add_command(command)


def _show_envvars(command: click.Command) -> None:
    """Show each option's environment variable in --help (explicit or automatic)."""
    for param in command.params:
        if isinstance(param, click.Option):
            if param.name == "version":
                param.allow_from_autoenv = False
            else:
                param.show_envvar = True
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _show_envvars(sub)


_show_envvars(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors are one line on stderr and a non-zero exit code, never a traceback."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="agenthub", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
