"""The CLI as one tool: shared options in every position, env vars, --version, completion, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from agenthub import __version__
from agenthub.cli.main import cli

from ..conftest import GatewayProc


def agenthub(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m agenthub ARGS`` with a clean environment (plus ``env``)."""
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "agenthub", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        input=stdin,
    )


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = [(prefix, group)]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append(((*prefix, name), cmd))
    return out


def test_every_option_shows_its_environment_variable() -> None:
    runner = CliRunner()
    names = {path[0] for path, _ in _commands(cli) if path}
    assert {
        "gateway",
        "call",
        "chat",
        "devices",
        "keys",
        "node",
        "pipelines",
        "protocol",
        "serve-agent",
        "ws-test",
        "config",
        "doctor",
        "completion",
    } <= names
    for path, cmd in _commands(cli):
        res = runner.invoke(cli, [*path, "--help"], terminal_width=400)
        assert res.exit_code == 0, (path, res.output)
        # Hidden options (the --workers supervisor's --worker-index and --worker-of) are not for operators.
        options = [p for p in cmd.params if isinstance(p, click.Option) and p.name != "version" and not p.hidden]
        for opt in options:
            lines = res.output.splitlines()
            at = next(i for i, li in enumerate(lines) if li.lstrip().startswith(opt.opts[0]))
            end = next((j for j in range(at + 1, len(lines)) if lines[j].lstrip().startswith("-")), len(lines))
            entry = " ".join(lines[at:end])
            assert "env var:" in entry, (path, opt.opts, entry)
    gateway_help = runner.invoke(cli, ["gateway", "--help"], terminal_width=400).output
    assert "AGENTHUB_SECURITY__AUTH_MODE" in gateway_help and "AGENTHUB_MYAGENT_SECRET" in gateway_help


def test_version_completion_and_one_line_errors(tmp_path: Path) -> None:
    version = agenthub("--version")
    assert version.returncode == 0 and __version__ in version.stdout
    script = agenthub("completion", "bash")
    assert script.returncode == 0 and "_AGENTHUB_COMPLETE" in script.stdout
    # The completion the script asks for, as bash would ask it.
    completed = agenthub(env={"_AGENTHUB_COMPLETE": "bash_complete", "COMP_WORDS": "agenthub dev", "COMP_CWORD": "1"})
    assert "devices" in completed.stdout
    completed = agenthub(
        env={"_AGENTHUB_COMPLETE": "bash_complete", "COMP_WORDS": "agenthub devices list --js", "COMP_CWORD": "3"}
    )
    assert "--json" in completed.stdout

    for url in ("not-a-url", "http://127.0.0.1:1", "ws://127.0.0.1:notaport"):
        bad = agenthub("call", "health", "--url", url, "--data-dir", str(tmp_path))
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.startswith("agenthub: invalid --url") and len(bad.stderr.splitlines()) == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"port": 1,')
    for cmd in (["gateway", "--port", "0"], ["config", "validate"], ["config", "show"]):
        res = agenthub(*cmd, "--config", str(broken), "--data-dir", str(tmp_path / "d"))
        assert res.returncode != 0
        assert "Traceback" not in res.stderr and str(broken) in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[limits]\nmax_payload = 10\n")
    res = agenthub("gateway", "--port", "0", "--config", str(wrong), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2 and "limits.max_payload" in res.stderr and "Traceback" not in res.stderr
    missing = agenthub("gateway", "--config", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path / "d"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr


def test_shared_options_work_in_every_position(make_gateway: Any, tmp_path: Path) -> None:
    gw: GatewayProc = make_gateway("--token", "pos-token")
    positions = [
        ["--url", gw.url, "--json", "devices", "list"],
        ["devices", "--url", gw.url, "--json", "list"],
        ["devices", "list", "--url", gw.url, "--json"],
        ["--json", "devices", "list", "--url", gw.url],
    ]
    for args in positions:
        res = agenthub(*args, env={"AGENTHUB_GATEWAY_TOKEN": "pos-token"})
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        assert set(json.loads(res.stdout)) >= {"pending", "paired"}
    # The environment works for every command; the command line beats it, wherever it stands.
    env = {"AGENTHUB_URL": gw.url, "AGENTHUB_GATEWAY_TOKEN": "wrong", "AGENTHUB_JSON": "1"}
    assert agenthub("devices", "list", env=env).returncode == 1
    assert agenthub("--token", "pos-token", "devices", "list", env=env).returncode == 0
    token_file = tmp_path / "token"
    token_file.write_text("pos-token\n")
    assert (
        agenthub(
            "devices", "list", "--token-file", str(token_file), env={**env, "AGENTHUB_GATEWAY_TOKEN": ""}
        ).returncode
        == 0
    )

    data = tmp_path / "state"
    created = agenthub("pipelines", "create", "--name", "p1", "--data-dir", str(data))
    assert created.returncode == 0, created.stderr
    uuid = created.stdout.splitlines()[0]  # the second line is the private pipeline's key
    for args, extra_env in (
        (["pipelines", "list", "--data-dir", str(data)], {}),
        (["--data-dir", str(data), "pipelines", "list"], {}),
        (["pipelines", "--data-dir", str(data), "list"], {}),
        (["pipelines", "list"], {"AGENTHUB_DATA_DIR": str(data)}),
    ):
        res = agenthub(*args, env=extra_env)
        assert res.returncode == 0 and uuid in res.stdout, (args, res.stderr)
    for args in (
        ["keys", "create", "--user", "u1", "--data-dir", str(data)],
        ["keys", "--data-dir", str(data), "list"],
    ):
        assert agenthub(*args).returncode == 0, args
    listed = agenthub("keys", "list", "--json", env={"AGENTHUB_DATA_DIR": str(data)})
    assert [k["user"] for k in json.loads(listed.stdout)] == ["u1"]
    # ws-test follows AGENTHUB_URL too.
    res = agenthub("ws-test", uuid, "--timeout", "20", env={"AGENTHUB_URL": gw.url})
    assert "connection(s) got a final reply" in res.stdout


def test_call_agent_expect_final_streams_text_and_fails_with_the_run(gateway: GatewayProc, tmp_path: Path) -> None:
    common = ["--url", gateway.url, "--data-dir", str(tmp_path)]
    ok = agenthub("call", "agent", *common, "--params", json.dumps({"message": "what is 7*6"}), "--expect-final")
    assert ok.returncode == 0, ok.stderr
    text, _, result = ok.stdout.partition("\n{")
    assert "42" in text and not text.lstrip().startswith("{")  # the reply as text, before the result
    final = json.loads("{" + result)
    assert final["type"] == "result" and final["status"] == "ok"
    failed = agenthub("call", "agent", *common, "--params", json.dumps({"message": "[fail] now"}), "--expect-final")
    assert failed.returncode == 1 and "ended error" in failed.stderr
    assert json.loads(failed.stdout[failed.stdout.index("{") :])["status"] == "error"
    # Without --expect-final the ack comes back; the idempotencyKey was filled in.
    ack = agenthub("call", "agent", *common, "--json", "--params", json.dumps({"message": "hi"}))
    assert ack.returncode == 0, ack.stdout + ack.stderr
    assert json.loads(ack.stdout)["runId"]
    invoke = agenthub(
        "call", "node.invoke", *common, "--json", "--params", json.dumps({"nodeId": "nope", "command": "system.info"})
    )
    err = json.loads(invoke.stdout)["error"]
    assert invoke.returncode == 1 and "idempotencyKey" not in err["message"] and err["code"] != "INVALID_REQUEST"


def test_node_run_stops_on_a_wrong_token(make_gateway: Any, tmp_path: Path) -> None:
    gw: GatewayProc = make_gateway("--token", "node-token")
    res = agenthub("node", "run", "--url", gw.url, "--token", "wrong", "--data-dir", str(tmp_path), timeout=30)
    assert res.returncode == 1
    assert "refused the credentials" in res.stderr and "AGENTHUB_GATEWAY_TOKEN" in res.stderr


def test_chat_refuses_unknown_commands_and_keeps_a_history(gateway: GatewayProc, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agenthub", "chat", "--url", gateway.url, "--data-dir", str(tmp_path), "--session", "cmds"],
        env={"PYTHONUNBUFFERED": "1", "TERM": "dumb", "COLUMNS": "120", "PATH": "/usr/bin:/bin"},
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 120),
    )
    try:
        child.expect("you>")
        child.sendline("/frobnicate now")
        child.expect("unknown command /frobnicate")
        child.expect("you>")
        child.sendline("/history")
        child.expect(r"\(empty\)")  # nothing was sent to the agent
        child.expect("you>")
        child.sendline("//slash as text")
        child.expect("demo agent")
        child.expect("you>")
        child.sendline("/history")
        child.expect("user:.*/slash as text")
        child.expect("you>")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    history = tmp_path / "chat_history"
    assert "/frobnicate now" in history.read_text() and oct(history.stat().st_mode & 0o777) == "0o600"
