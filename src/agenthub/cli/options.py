"""Options every command shares, in any position, and the gateway's settings flags.

Shared options (``--url``, ``--token``, ``--data-dir``, ``--json``, ...) are declared on
every group and on each command that uses them, so ``agenthub --json devices list``,
``agenthub devices --json list`` and ``agenthub devices list --json`` mean the same. Each
occurrence only records its value in the root context; ``shared(ctx)`` reads them back.
A value typed on the command line beats one from the environment, which beats the
default; between two command-line values the one nearer the end wins.

The gateway's settings flags (``--host``, ``--auth``, ``--tls-cert``, ...) are generated
from ``GatewaySettings`` (fields with a ``flag``), so the flags, their environment
variables and ``docs/config.md`` cannot drift apart.
"""

from __future__ import annotations

import types
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click
from click.core import ParameterSource

from ..config import ConfigFileError, env_names, load_file, setting_fields

__all__ = [
    "DEFAULT_URL",
    "CliError",
    "Shared",
    "flag_layer",
    "settings_options",
    "shared",
    "shared_options",
]

DEFAULT_URL = "ws://127.0.0.1:18789"
F = TypeVar("F", bound=Callable[..., Any])
_KEY = "agenthub.shared"
_RANK = {ParameterSource.COMMANDLINE: 3, ParameterSource.ENVIRONMENT: 2, ParameterSource.DEFAULT_MAP: 1}


class CliError(click.ClickException):
    """A clean one-line failure: ``agenthub: <message>`` on stderr and a non-zero exit."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it per class

    def show(self, file: Any = None) -> None:
        click.echo(f"agenthub: {self.format_message()}", err=True)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    assert param.name is not None
    source = ctx.get_parameter_source(param.name) or ParameterSource.DEFAULT
    if source == ParameterSource.DEFAULT and value in (None, False, ()):
        return value
    seen: dict[str, tuple[Any, ParameterSource]] = ctx.find_root().meta.setdefault(_KEY, {})
    prev = seen.get(param.name)
    if prev is None or _RANK.get(source, 0) >= _RANK.get(prev[1], 0):
        seen[param.name] = (value, source)
    return value


# name -> (declarations, environment variables, help, click options)
_SHARED: dict[str, tuple[list[str], list[str], str, dict[str, Any]]] = {
    "url": (["--url"], ["AGENTHUB_URL"], f"gateway URL, ws:// or wss:// [default: {DEFAULT_URL}]", {}),
    "token": (["--token"], ["AGENTHUB_GATEWAY_TOKEN"], "gateway token", {}),
    "token_file": (["--token-file"], ["AGENTHUB_GATEWAY_TOKEN_FILE"], "file holding the gateway token", {}),
    "password": (["--password"], ["AGENTHUB_GATEWAY_PASSWORD"], "gateway password", {}),
    "password_file": (["--password-file"], ["AGENTHUB_GATEWAY_PASSWORD_FILE"], "file holding the password", {}),
    "data_dir": (["--data-dir"], ["AGENTHUB_DATA_DIR"], "state directory [default: ~/.agenthub]", {}),
    "config": (["--config"], ["AGENTHUB_CONFIG"], "config file (JSON or TOML)", {}),
    "database_url": (
        ["--database-url"],
        ["AGENTHUB_DATABASE_URL"],
        "the gateway's database URL [default: SQLite agenthub.db in the data dir]",
        {},
    ),
    "json": (["--json"], ["AGENTHUB_JSON"], "machine-readable JSON output", {"is_flag": True}),
    "timeout": (["--timeout"], ["AGENTHUB_TIMEOUT"], "request timeout in seconds [default: 30]", {"type": float}),
    "tls_fingerprint": (
        ["--tls-fingerprint"],
        ["AGENTHUB_TLS_FINGERPRINT"],
        "pin the gateway certificate by its SHA-256 (wss://, e.g. self-signed)",
        {},
    ),
    "ca_file": (
        ["--ca-file"],
        ["AGENTHUB_CA_FILE"],
        "CA certificates (PEM) to verify a wss:// gateway [default: the system store, or SSL_CERT_FILE]",
        {},
    ),
}
CONNECTION = ("url", "token", "token_file", "password", "password_file", "timeout", "tls_fingerprint", "ca_file")


def shared_options(*names: str) -> Callable[[F], F]:
    """Add the named shared options (all of them when none is named) to a command or group."""

    def decorate(f: F) -> F:
        for name in reversed(names or tuple(_SHARED)):
            decls, envvar, help_text, extra = _SHARED[name]
            click.option(
                *decls,
                name,
                envvar=envvar,
                show_envvar=True,
                help=help_text,
                expose_value=False,
                callback=_remember,
                **extra,
            )(f)
        return f

    return decorate


def _read_secret(path: str, what: str) -> str:
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise CliError(f"{what}: cannot read {path}: {exc.strerror or exc}", 2) from None
    return text[:-1] if text.endswith("\n") else text


@dataclass
class Shared:
    """The shared options' values, resolved (``shared(ctx)``)."""

    values: dict[str, tuple[Any, ParameterSource]]

    def get(self, name: str, default: Any = None) -> Any:
        entry = self.values.get(name)
        return default if entry is None or entry[0] is None else entry[0]

    def from_command_line(self, name: str) -> bool:
        entry = self.values.get(name)
        return entry is not None and entry[1] == ParameterSource.COMMANDLINE

    @property
    def url(self) -> str:
        url: str = self.get("url", DEFAULT_URL)
        try:
            parts = urllib.parse.urlsplit(url)
            ok = parts.scheme in ("ws", "wss") and bool(parts.hostname)
            _ = parts.port  # a malformed port raises ValueError
        except ValueError:
            ok = False
        if not ok:
            hint = " (use ws:// or wss://)" if url.startswith(("http://", "https://")) else ""
            raise CliError(f"invalid --url {url!r}: expected ws://HOST:PORT or wss://HOST[:PORT]{hint}", 2)
        return url

    @property
    def token(self) -> str | None:
        if self.get("token"):
            return str(self.get("token"))
        path = self.get("token_file")
        return _read_secret(path, "--token-file") if path else None

    @property
    def password(self) -> str | None:
        if self.get("password"):
            return str(self.get("password"))
        path = self.get("password_file")
        return _read_secret(path, "--password-file") if path else None

    @property
    def data_dir(self) -> Path:
        return Path(self.get("data_dir", "~/.agenthub")).expanduser()

    @property
    def database(self) -> str | Path:
        """The database the gateway uses: ``--database-url``, else the data dir's SQLite file."""
        url: str | None = self.get("database_url")
        return url or self.data_dir / "agenthub.db"

    @property
    def json(self) -> bool:
        return bool(self.get("json", False))

    @property
    def timeout(self) -> float:
        return float(self.get("timeout", 30.0))

    def config_file(self) -> dict[str, Any]:
        """The ``--config`` file's settings ({} without one); a bad file is a clean error."""
        path = self.get("config")
        if not path:
            return {}
        try:
            return load_file(Path(path))
        except ConfigFileError as exc:
            raise CliError(str(exc), 2) from None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``GatewayClient`` from the connection options."""
        return {
            "token": self.token,
            "password": self.password,
            "request_timeout": self.timeout,
            "tls_fingerprint": self.get("tls_fingerprint"),
            "ca_file": self.get("ca_file"),
        }


def shared(ctx: click.Context) -> Shared:
    return Shared(ctx.find_root().meta.get(_KEY, {}))


# -- the gateway's settings flags, generated from the model --------------------------------------
# Shared options that are settings too: their command-line values join the flag layer.
_SHARED_SETTINGS = {
    "data_dir": "data_dir",
    "token": "token",
    "token_file": "token_file",
    "password": "security.password",
    "password_file": "security.password_file",
}


def _param_name(path: str) -> str:
    return "set__" + path.replace(".", "__")


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """The click type for a field, and whether it repeats."""
    base = annotation
    if get_origin(annotation) in (Union, types.UnionType):  # X | None
        base = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is list:
        return str, True
    if get_origin(base) is Literal:
        return click.Choice([str(a) for a in get_args(base)]), False
    if base in (int, float):
        return base, False
    return str, False


def settings_options(f: F) -> F:
    """Add one option per settings field that declares a ``flag`` (except the shared ones)."""
    shared_flags = {_SHARED[n][0][0] for n in _SHARED_SETTINGS}
    fields = [(p, i) for p, i, _ in setting_fields() if isinstance(i.json_schema_extra, dict)]
    for path, info in reversed(fields):
        extra = info.json_schema_extra
        assert isinstance(extra, dict)
        flag = str(extra["flag"])
        if flag in shared_flags:
            continue
        kind, multiple = _click_type(info.annotation)
        help_text = info.description or ""
        common: dict[str, Any] = {"envvar": env_names(path), "show_envvar": True, "help": help_text}
        if info.annotation is bool:
            click.option(f"{flag}/--no-{flag[2:]}", _param_name(path), default=None, **common)(f)
        else:
            click.option(flag, _param_name(path), type=kind, multiple=multiple, **common)(f)
    return f


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, key = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[key] = value


def flag_layer(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """The settings typed on the command line (environment values come from ``config.env_layer``)."""
    layer: dict[str, Any] = {}
    for name, value in params.items():
        if not name.startswith("set__") or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        _set_path(layer, name[5:].replace("__", "."), list(value) if isinstance(value, tuple) else value)
    sh = shared(ctx)
    for name, path in _SHARED_SETTINGS.items():
        if sh.from_command_line(name):
            _set_path(layer, path, sh.get(name))
    return layer
