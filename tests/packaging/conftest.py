"""The wheel, built once per session with ``python -m build``, and a clean venv it is installed in."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` (sdist, then the wheel from the sdist): what CI and the Dockerfile build."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wheels = sorted(out.glob("agenthub-*.whl"))
    assert len(wheels) == 1, sorted(out.iterdir())
    return wheels[0]


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv (no system site-packages) with the wheel and its dependencies, nothing else."""
    target = tmp_path_factory.mktemp("venv") / "agenthub"
    venv.create(target, with_pip=True, clear=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [str(target / "bin/pip"), "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    return Installed(wheel, target)
