"""``deploy/Dockerfile`` and ``deploy/agenthub.service``, tried without a container engine or a running systemd.

No Docker engine runs here, so the image's steps are run in a venv instead: the build stage's command is
the ``wheel`` fixture's (``python -m build``), the run stage's ``pip install`` of the wheel is ``installed``;
then the image's ``CMD`` starts the gateway and its ``HEALTHCHECK`` command must pass against it (and fail
once it stopped). The unit file goes through ``systemd-analyze verify`` and its ``ExecStart`` is run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GatewayProc
from tests.e2e._util import free_port

from .conftest import ROOT, Installed

pytestmark = pytest.mark.packaging

DOCKERFILE = ROOT / "deploy/Dockerfile"
UNIT = ROOT / "deploy/agenthub.service"
TOKEN = "deploy-test-token-0123456789abcdef"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def _final_stage(text: str) -> list[tuple[str, str]]:
    steps = _instructions(text)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    steps = _instructions(text)
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms and all(re.match(r"python:3\.1[1-9]-slim\b", f) for f in froms), froms
    final = _final_stage(text)
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the gateway must not run as root"
    assert any(op == "HEALTHCHECK" for op, _ in final)
    assert ("EXPOSE", "18789") in final
    # No Node.js anywhere: the UI comes prebuilt inside the wheel.
    assert "node" not in " ".join(arg for op, arg in steps if op == "RUN").lower()
    assert "python -m build --wheel" in text and "pip install --no-cache-dir /dist/*.whl" in text


def _exec_form(arg: str) -> list[str]:
    """The JSON array of an exec-form CMD (``HEALTHCHECK ... CMD [...]`` too)."""
    command: list[str] = json.loads(arg[arg.index("[") :])
    return command


def test_dockerfile_cmd_and_healthcheck_run_against_the_installed_wheel(installed: Installed, tmp_path: Path) -> None:
    final = _final_stage(DOCKERFILE.read_text())
    cmd = _exec_form(next(arg for op, arg in final if op == "CMD"))
    health = _exec_form(next(arg for op, arg in final if op == "HEALTHCHECK"))
    assert cmd[:2] == ["agenthub", "gateway"] and "--host" in cmd
    port = free_port()
    # The container's command, from the venv the wheel went into; loopback here instead of 0.0.0.0,
    # and the container's port exchanged for a free one.
    command = [str(installed.bin / cmd[0]), *(str(port) if a == "18789" else a for a in cmd[1:])]
    data = tmp_path / "data"
    data.mkdir()
    gw = GatewayProc(data, args=["--host", "127.0.0.1"], env={"AGENTHUB_GATEWAY_TOKEN": TOKEN}, command=command)
    gw.start(port)
    assert b'"msg":"agenthub gateway ready on ws://127.0.0.1:' in b"".join(gw.log)  # JSON logs, as in the image
    probe = [str(installed.bin / "python"), *health[1:]]
    probe = [a.replace("18789", str(port)) for a in probe]
    assert subprocess.run(probe, timeout=30).returncode == 0
    assert gw.stop() == 0
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies_and_its_execstart_runs(installed: Installed, tmp_path: Path) -> None:
    text = UNIT.read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert exec_start is not None
    assert re.search(r"^DynamicUser=yes$", text, re.M) and re.search(r"^StateDirectory=agenthub$", text, re.M)
    # systemd-analyze checks every directive and that the executable exists: point it at the venv's.
    unit = tmp_path / "agenthub.service"
    unit.write_text(text.replace("/opt/agenthub/bin/agenthub", str(installed.bin / "agenthub")))
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    # The command line itself, with the state directory systemd would create.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    argv = exec_start.group(1).replace("${STATE_DIRECTORY}", str(state)).split()
    argv[0] = str(installed.bin / "agenthub")
    gw = GatewayProc(state, command=argv)
    gw.start(0)
    assert (state / "agenthub.db").exists()
    assert gw.stop() == 0  # SIGTERM (KillSignal) is a clean stop
