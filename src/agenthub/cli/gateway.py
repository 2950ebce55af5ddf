"""``agenthub gateway``: run the gateway in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ..config import load_file
from ..log import configure

__all__ = ["add_parser", "overrides_from_args"]

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("gateway", help="run the gateway")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 18789; 0 picks a free one)")
    p.add_argument("--data-dir", help="state directory (default ~/.agenthub)")
    p.add_argument(
        "--database-url",
        help="database URL, e.g. postgresql+asyncpg://user@host:5432/agenthub (or AGENTHUB_DATABASE_URL, "
        "which keeps a password out of the process list; default: SQLite in the data dir)",
    )
    p.add_argument("--token", help="shared token (or AGENTHUB_GATEWAY_TOKEN)")
    p.add_argument("--config", help="config file (JSON or TOML)")
    p.add_argument("--provider", choices=["demo", "openai", "anthropic"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.add_argument("--log-level", default=None)
    p.add_argument("--myagent-port", type=int, help="serve the MyAgent protocol (seed 003) on this port")
    p.add_argument("--myagent-secret", help="MyAgent state signing key (or AGENTHUB_MYAGENT_SECRET)")
    p.add_argument("--agentbox-port", type=int, help="also serve AgentBox (seed 002) on this port")
    p.add_argument("--dev", action="store_true", default=None, help="development mode (ephemeral secrets)")
    _add_security_args(p)
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Env and CLI settings, the top layer of the config."""
    out: dict[str, Any] = {}
    token = args.token or env.get("AGENTHUB_GATEWAY_TOKEN")
    if token:
        out["token"] = token
    for key in ("host", "port", "data_dir", "provider", "log_format", "log_level"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    database_url = getattr(args, "database_url", None) or env.get("AGENTHUB_DATABASE_URL")
    if database_url:
        out["database_url"] = database_url
    openai: dict[str, Any] = {}
    anthropic: dict[str, Any] = {}
    for env_key, section, field in (
        ("OPENAI_API_KEY", openai, "api_key"),
        ("OPENAI_BASE_URL", openai, "base_url"),
        ("AGENTHUB_OPENAI_MODEL", openai, "model"),
        ("ANTHROPIC_API_KEY", anthropic, "api_key"),
        ("ANTHROPIC_BASE_URL", anthropic, "base_url"),
        ("AGENTHUB_ANTHROPIC_MODEL", anthropic, "model"),
    ):
        if env.get(env_key):
            section[field] = env[env_key]
    myagent: dict[str, Any] = {}
    if getattr(args, "myagent_port", None) is not None:
        myagent["port"] = args.myagent_port
    secret = getattr(args, "myagent_secret", None) or env.get("AGENTHUB_MYAGENT_SECRET")
    if secret:
        myagent["state_secret_key"] = secret
    if myagent:
        out["myagent"] = myagent
    if getattr(args, "dev", None):
        out["dev"] = True
    security = _security_overrides(args, env)
    if security:
        out["security"] = security
    if getattr(args, "agentbox_port", None) is not None:
        out["agentbox"] = {"port": args.agentbox_port}
    if openai:
        out["openai"] = openai
    if anthropic:
        out["anthropic"] = anthropic
    return out


def run(args: argparse.Namespace) -> int:
    from ..app import ConfigError, Gateway
    from ..core.store import StoreOpenError

    base = load_file(Path(args.config)) if args.config else {}
    overrides = overrides_from_args(args, dict(os.environ))
    configure(
        overrides.get("log_format", base.get("log_format", "text")),
        overrides.get("log_level", base.get("log_level", "INFO")),
    )

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with Gateway(base, overrides) as gw:
                print(f"agenthub gateway ready on {gw.scheme}://{gw.settings.host}:{gw.port}", flush=True)
                for name, port in gw.edge.bound.items() if gw.edge else ():
                    if name != "main":
                        print(f"agenthub {name} listener on port {port}", flush=True)
                await stop.wait()
                log.info("stopping")
        except ConfigError as exc:
            print(f"agenthub: {exc}", file=sys.stderr)
            return 2
        except StoreOpenError as exc:  # the message names the database and what to do; no traceback
            print(f"agenthub: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"agenthub: cannot start: {exc}", file=sys.stderr)
            return 1
        log.info("stopped")
        return 0

    try:
        import uvloop

        return uvloop.run(serve())
    except ImportError:  # pragma: no cover - uvloop is a Linux/macOS dependency
        return asyncio.run(serve())


def _add_security_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auth",
        dest="auth_mode",
        choices=["auto", "none", "token", "password", "trusted-proxy"],
        help="auth mode (default auto: password if set, else token if set, else none)",
    )
    p.add_argument("--password", help="shared password for --auth password (or AGENTHUB_GATEWAY_PASSWORD)")
    p.add_argument(
        "--trusted-proxy",
        action="append",
        dest="trusted_proxies",
        metavar="ADDR",
        help="proxy address or network trusted for the identity header and X-Forwarded-For (repeatable)",
    )
    p.add_argument("--trusted-proxy-header", help="identity header set by the proxy (default x-forwarded-user)")
    p.add_argument(
        "--require-pairing",
        action="store_true",
        default=None,
        help="unknown devices need operator approval even on loopback",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="browser origin allowed to open a WebSocket (repeatable; default: the gateway's own)",
    )
    p.add_argument("--tls-cert", help="PEM certificate: serve wss:// and https://")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")


def _security_overrides(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in (
        "auth_mode",
        "trusted_proxies",
        "trusted_proxy_header",
        "require_pairing",
        "allowed_origins",
        "tls_cert",
        "tls_key",
    ):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    password = getattr(args, "password", None) or env.get("AGENTHUB_GATEWAY_PASSWORD")
    if password:
        out["password"] = password
    return out
