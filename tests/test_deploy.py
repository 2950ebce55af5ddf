"""``deploy/``: the compose file, its nginx config and the systemd unit, checked against the CLI.

Docker cannot run on this machine, so ``docker compose up`` is not exercised here (the README says
so). Instead the files are parsed and held to what the gateway really accepts: every flag is one
``agenthub gateway`` has, every ``AGENTHUB_...`` variable names a setting, the settings they make
together validate, the URLs point at services the file defines, and nginx routes WebSockets to the
gateway's port without sticky sessions.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from agenthub.cli.gateway import gateway
from agenthub.config import ENV_ALIASES, GatewaySettings, env_names, setting_fields

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
README = Path(__file__).resolve().parents[1] / "README.md"


def _flags() -> set[str]:
    return {opt for p in gateway.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}


def _known_env() -> set[str]:
    names = set(ENV_ALIASES)
    for path, _info, _ in setting_fields():
        names.update(env_names(path))
    return names


def _settings(args: list[str], env: dict[str, str]) -> GatewaySettings:
    """The settings ``agenthub gateway <args>`` would run with under ``env`` (parsed by the real CLI)."""
    flags = _flags()
    layer: dict[str, Any] = {}
    for path, info, _ in setting_fields():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("flag") in args:
            value = args[args.index(str(extra["flag"])) + 1]
            node = layer
            *parents, key = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[key] = value
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            assert arg in flags, f"agenthub gateway has no {arg}"
        if arg == "--data-dir":
            layer["data_dir"] = args[i + 1]
    for name, value in env.items():
        if name in ENV_ALIASES:
            layer.setdefault(ENV_ALIASES[name], value)
    for path, _info, _ in setting_fields():
        canonical = env_names(path)[0]
        if canonical in env and "." not in path:
            layer.setdefault(path, env[canonical])
    return GatewaySettings.model_validate(layer)


def _expand(value: str) -> str:
    """``${NAME:?msg}`` and ``${NAME}`` as compose would expand them, with a stand-in secret."""
    return re.sub(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", lambda m: f"test-{m.group(1).lower()}", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_the_compose_gateway_runs_what_the_cli_accepts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gw = services["gateway"]
    command = [str(part) for part in gw["command"]]
    assert command[:2] == ["agenthub", "gateway"]
    env = {k: _expand(str(v)) for k, v in gw["environment"].items()}
    assert set(env) <= _known_env(), sorted(set(env) - _known_env())
    settings = _settings(command[2:], env)
    # Reachable from the load balancer, with a token (refused otherwise), several workers on Redis.
    assert settings.host == "0.0.0.0" and settings.token is not None
    assert settings.redis_url and settings.resolved_workers >= 2
    assert settings.database_url and settings.database_url.startswith("postgresql+asyncpg://")
    # The URLs name services of this file, which the gateway waits for.
    assert re.match(r"redis://redis:\d+/", settings.redis_url)
    assert "@postgres:5432/" in settings.database_url
    assert set(gw["depends_on"]) == {"redis", "postgres"}
    assert {"redis", "postgres", "lb"} <= set(services)
    assert gw["deploy"]["replicas"] >= 2 and gw["stop_signal"] == "SIGTERM"
    assert services["postgres"]["environment"]["POSTGRES_DB"] in settings.database_url


def test_nginx_routes_websockets_to_the_gateway_port_without_stickiness(compose: dict[str, Any]) -> None:
    conf = "\n".join(line.split("#", 1)[0] for line in (DEPLOY / "nginx.conf").read_text().splitlines())
    port = str(compose["services"]["gateway"]["command"][compose["services"]["gateway"]["command"].index("--port") + 1])
    assert f"server gateway:{port};" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf and "proxy_http_version 1.1;" in conf
    assert not re.search(r"\b(ip_hash|hash|sticky)\b", conf), "no sticky routing: any process serves any client"
    lb = compose["services"]["lb"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert any(p.endswith(f":{port}") for p in lb["ports"])


def test_the_dockerfile_builds_what_compose_asks_for(compose: dict[str, Any]) -> None:
    build = compose["services"]["gateway"]["build"]
    dockerfile = (DEPLOY / ".." / build["dockerfile"]).resolve()
    text = dockerfile.read_text()
    assert build["context"] == ".." and '"asyncpg>=' in text and "COPY src ./src" in text
    # The compose file's data dir is the image's volume, which its user owns.
    command = compose["services"]["gateway"]["command"]
    assert command[command.index("--data-dir") + 1] == "/data" and 'VOLUME ["/data"]' in text


def test_the_systemd_unit_runs_several_workers_with_what_the_cli_accepts() -> None:
    unit = (DEPLOY / "agenthub-cluster.service").read_text()
    lines = [line for line in unit.splitlines() if line and not line.startswith("#")]
    values: dict[str, list[str]] = {}
    for line in lines:
        if "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    (exec_start,) = values["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/agenthub") and argv[1] == "gateway"
    env = dict(v.split("=", 1) for v in values.get("Environment", []))
    assert set(env) <= _known_env()
    env["AGENTHUB_GATEWAY_TOKEN"] = "from-the-environment-file"
    settings = _settings(argv[2:], env)
    assert settings.redis_url and settings.resolved_workers >= 2 and settings.token is not None
    assert values["KillMode"] == ["mixed"] and values["KillSignal"] == ["SIGTERM"]
    assert values["EnvironmentFile"] == ["/etc/agenthub/agenthub.env"]


def test_the_readme_shows_how_to_run_them_and_says_what_was_not_run_here() -> None:
    text = README.read_text()
    section = " ".join(text[text.index("## Scaling out") :].split())
    assert "docker compose up" in section and "deploy/agenthub-cluster.service" in section
    assert "not run on this project's machines" in section
