"""``agenthub doctor``: check what a gateway start needs, and say how to fix what is wrong.

Checks the settings (file, environment, flags, stored overrides), the data dir
(permissions, the lock of a running gateway), the database, the ports, the TLS
files and the provider (a real request to its ``/models``). Takes the gateway's
own flags, so it checks exactly the start you are about to make. Exit 1 if any
check fails.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import ssl
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import GatewaySettings, is_loopback
from ..datadir import lock_holder
from .config import settings_service
from .options import CliError, settings_options, shared, shared_options
from .remote import print_json

__all__ = ["Check", "doctor"]

Status = Literal["ok", "warn", "fail"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _private(path: Path, want: int) -> Check | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(
            str(path), "warn", f"mode {mode:o}: readable by other users", f"chmod {want:o} {path} (the gateway does)"
        )
    return None


def check_data_dir(s: GatewaySettings) -> tuple[list[Check], int | None]:
    d = s.resolved_data_dir
    if not d.exists():
        parent = next((p for p in d.parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return [
                Check("data dir", "fail", f"{d} does not exist and {parent} is not writable", "use --data-dir")
            ], None
        return [Check("data dir", "ok", f"{d} will be created (0700) at the first start")], None
    if not d.is_dir():
        return [Check("data dir", "fail", f"{d} is not a directory", "use another --data-dir")], None
    if not os.access(d, os.W_OK):
        return [Check("data dir", "fail", f"{d} is not writable", f"chown or chmod u+w {d}")], None
    checks = [Check("data dir", "ok", f"{d}")]
    if (loose := _private(d, 0o700)) is not None:
        checks.append(loose)
    pid = lock_holder(d)
    if pid is not None:
        checks.append(Check("gateway", "ok", f"a gateway (pid {pid or '?'}) is running on this data dir"))
    return checks, pid


def check_database(s: GatewaySettings) -> list[Check]:
    if s.database_url is not None and not s.database_url.startswith("sqlite"):
        return [Check("database", "ok", "external database (not checked here)")]
    db = s.resolved_data_dir / "agenthub.db"
    if not db.exists():
        return [Check("database", "ok", f"{db} will be created (0600) at the first start")]
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            result = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        return [Check("database", "fail", f"{db}: {exc}", "restore it from a backup, or move it away to start afresh")]
    if not result or result[0] != "ok":
        return [Check("database", "fail", f"{db}: {result[0] if result else 'no answer'}", "restore it from a backup")]
    checks = [Check("database", "ok", f"{db} (quick_check ok)")]
    if (loose := _private(db, 0o600)) is not None:
        checks.append(loose)
    return checks


def _port_free(host: str, port: int) -> str | None:
    """None if ``host:port`` can be bound, else why not."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_ports(s: GatewaySettings, running: bool) -> list[Check]:
    ports = [("main port", s.host, s.port)]
    if s.myagent.port is not None:
        ports.append(("MyAgent port", s.myagent.host or s.host, s.myagent.port))
    if s.agentbox.enabled:
        ports.append(("AgentBox port", s.host, s.agentbox.port))
    checks = []
    for name, host, port in ports:
        if port == 0:
            checks.append(Check(name, "ok", "a free port is picked at start"))
            continue
        why = _port_free(host, port)
        if why is None:
            checks.append(Check(name, "ok", f"{host}:{port} is free"))
        elif running:
            checks.append(Check(name, "ok", f"{host}:{port} is held by the gateway running on this data dir"))
        else:
            checks.append(Check(name, "fail", f"{host}:{port}: {why}", "stop what holds it, or choose another port"))
    if not is_loopback(s.host):
        mode = s.security.resolved_auth_mode(s.token)
        checks.append(Check("exposure", "warn" if mode != "none" else "fail", f"binds {s.host} with auth {mode}"))
    return checks


def check_tls(s: GatewaySettings) -> list[Check]:
    sec = s.security
    if sec.tls_cert is None:
        return [Check("TLS", "ok", "off (ws://): put a TLS proxy in front, or give --tls-cert/--tls-key")]
    if sec.tls_key is None:
        return [Check("TLS", "fail", "--tls-cert without --tls-key", "give --tls-key")]
    cert, key = sec.tls_cert.expanduser(), sec.tls_key.expanduser()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return [Check("TLS", "fail", f"cannot load {cert} / {key}: {exc}", "check the files are PEM and match")]
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    left = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    checks = []
    if left.total_seconds() <= 0:
        checks.append(Check("TLS", "fail", f"{cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d}", "renew it"))
    elif left.days < 14:
        checks.append(Check("TLS", "warn", f"{cert} expires in {left.days} day(s)", "renew it soon"))
    else:
        checks.append(Check("TLS", "ok", f"{cert} valid until {leaf.not_valid_after_utc:%Y-%m-%d}"))
    if (loose := _private(key, 0o600)) is not None:
        checks.append(loose)
    return checks


def check_provider(s: GatewaySettings, timeout: float) -> list[Check]:
    """A real ``GET /models`` against the configured provider (the demo needs none)."""
    import httpx

    if s.provider == "demo":
        return [Check("provider", "ok", "demo (built in, no network)")]
    section = s.openai if s.provider == "openai" else s.anthropic
    env = "OPENAI_API_KEY" if s.provider == "openai" else "ANTHROPIC_API_KEY"
    if section.api_key is None:
        return [Check("provider", "fail", f"{s.provider}: no API key", f"set {env} or {s.provider}.api_key_file")]
    key = section.api_key.get_secret_value()
    base = section.base_url.rstrip("/")
    if s.provider == "openai":
        url, headers = f"{base}/models", {"Authorization": f"Bearer {key}"}
    else:
        url, headers = f"{base}/v1/models", {"x-api-key": key, "anthropic-version": "2023-06-01"}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return [Check("provider", "fail", f"{s.provider}: cannot reach {url}: {exc}", "check base_url and network")]
    if resp.status_code in (401, 403):
        return [Check("provider", "fail", f"{s.provider}: the API key was refused (HTTP {resp.status_code})", env)]
    if resp.status_code >= 400:
        return [Check("provider", "warn", f"{s.provider}: {url} answered HTTP {resp.status_code}")]
    try:
        ids = [m.get("id") for m in resp.json().get("data", [])]
    except ValueError:
        ids = []
    note = "" if not ids or section.model in ids else f" (model {section.model} not listed)"
    return [Check("provider", "ok" if not note else "warn", f"{s.provider}: {url} answered{note}")]


def check_secret_files(s: GatewaySettings) -> list[Check]:
    files = [s.token_file, s.security.password_file, s.openai.api_key_file, s.anthropic.api_key_file]
    files.append(s.myagent.state_secret_key_file)
    return [c for f in files if f is not None and (c := _private(f.expanduser(), 0o600)) is not None]


@click.command()
@settings_options
@shared_options("data_dir", "config", "token", "token_file", "password", "password_file", "json", "timeout")
@click.pass_context
def doctor(ctx: click.Context, /, **params: Any) -> int:
    """Check the settings, data dir, database, ports, TLS files and provider; print what to fix."""
    sh = shared(ctx)
    try:
        service = settings_service(ctx, params)
    except CliError as exc:
        checks = [Check("config", "fail", exc.format_message(), "agenthub config validate")]
        return _report(checks, sh.json)
    from ..app import ConfigError, check_startup

    s: GatewaySettings = service.settings
    checks = [Check("config", "ok", "file, environment, flags and stored overrides are valid")]
    try:
        check_startup(s, service.sources)
    except ConfigError as exc:
        checks.append(Check("start rules", "fail", str(exc)))
    checks += [Check("config", "warn", w) for w in service.warnings()]
    dir_checks, pid = check_data_dir(s)
    checks += dir_checks
    checks += check_database(s)
    checks += check_ports(s, pid is not None)
    checks += check_tls(s)
    checks += check_secret_files(s)
    checks += check_provider(s, min(sh.timeout, 10.0))
    return _report(checks, sh.json)


def _report(checks: list[Check], as_json: bool) -> int:
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]}, False)
        return 1 if failed else 0
    style = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    table = Table("check", "status", "detail", "fix")
    for c in checks:
        table.add_row(escape(c.name), style[c.status], escape(c.detail), escape(c.fix))
    console = Console(highlight=False)
    console.print(table)
    console.print("[red]some checks failed[/]" if failed else "[green]all checks passed[/]")
    return 1 if failed else 0
