"""The README's SDK example runs, unchanged, against a real gateway."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sdk_example_runs(make_gateway: Any) -> None:
    text = README.read_text()
    section = text[text.index("### Python SDK (`agenthub.client`)") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    gw = make_gateway()
    out = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        env={**os.environ, "AGENTHUB_URL": gw.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "health: True" in out and "84" in out and "status: ok" in out and "NotFoundError INVALID_REQUEST" in out
