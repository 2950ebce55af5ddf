"""The wheel from ``python -m build``, installed in a clean venv: metadata, and a gateway that serves the UI."""

from __future__ import annotations

import re
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

import agenthub
from tests.conftest import GatewayProc

from .conftest import ROOT, Installed

pytestmark = pytest.mark.packaging


def test_wheel_metadata_license_version_urls(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
        license_files = [n for n in names if re.search(r"\.dist-info/licenses/LICENSE$", n)]
        assert license_files, names
        assert zf.read(license_files[0]).decode() == (ROOT / "LICENSE").read_text()
        # The Control UI is inside the package: running the wheel needs no Node.js.
        assert "agenthub/web/static/index.html" in names
        assert any(re.match(r"agenthub/web/static/assets/.+\.js$", n) for n in names)
        assert "agenthub/py.typed" in names
    assert meta["Name"] == "agenthub"
    assert meta["Version"] == agenthub.__version__  # single-sourced from agenthub/__init__.py
    assert meta["License-Expression"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX expression replaces them
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert "otel" in (meta.get_all("Provides-Extra") or [])


def test_installed_wheel_starts_and_serves_the_ui(installed: Installed, tmp_path: Path) -> None:
    # The venv's agenthub is the wheel's, not this checkout's.
    where = subprocess.run(
        [str(installed.bin / "python"), "-c", "import agenthub; print(agenthub.__file__, agenthub.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert where[0].startswith(str(installed.venv)) and where[1] == agenthub.__version__
    version = subprocess.run(
        [str(installed.bin / "agenthub"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert agenthub.__version__ in version
    gw = GatewayProc(tmp_path / "data", command=[str(installed.bin / "agenthub"), "gateway"])
    (tmp_path / "data").mkdir()
    gw.start(0)
    try:
        page = httpx.get(gw.http + "/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        scripts = re.findall(r'src="(/[^"]+\.js)"', page.text)
        assert scripts, page.text
        for src in scripts:
            asset = httpx.get(gw.http + src, timeout=10)
            assert asset.status_code == 200 and len(asset.content) > 1000
        assert httpx.get(gw.http + "/healthz", timeout=10).json()["version"] == agenthub.__version__
        call = subprocess.run(
            [str(installed.bin / "agenthub"), "call", "health", "--url", gw.url, "--data-dir", str(tmp_path / "cli")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert call.returncode == 0, call.stderr
        assert '"ok": true' in call.stdout
    finally:
        assert gw.stop() == 0
