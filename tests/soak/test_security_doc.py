"""SECURITY.md's limits table is generated from the settings model: it must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from soak.security_doc import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[2]


def test_security_md_limits_table_is_current() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "soak.security_doc", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr


def test_the_table_lists_every_bounding_setting_and_no_port() -> None:
    schema = {
        "properties": {
            "port": {"type": "integer", "default": 1},
            "limits": {"$ref": "#/$defs/Limits"},
            "token": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "$defs": {
            "Limits": {
                "properties": {
                    "max_payload": {
                        "type": "integer",
                        "default": 2048,
                        "minimum": 1024,
                        "description": "largest (bytes)",
                    },
                    "tick_interval_ms": {"type": "integer", "default": 15000},
                    "run_timeout_s": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": 600},
                }
            }
        },
    }
    doc = render(f"head\n{BEGIN}\nold\n{END}\ntail\n", schema)
    assert doc.startswith("head\n") and doc.endswith(f"{END}\ntail\n") and "old" not in doc
    assert "| `limits.max_payload` | 2,048 (2 KiB) | >= 1,024 | largest (bytes) |" in doc
    assert "`limits.run_timeout_s` | 600 s" in doc
    assert "port" not in doc and "tick_interval_ms" not in doc and "token" not in doc
