"""The agent's canvas tool: write HTML (and its assets) into the folder the canvas host serves.

Every path is confined to the canvas root: absolute paths, ``..`` and symlinks
that lead outside are refused, and a file is at most ``max_bytes``. The write
runs in a worker thread, off the event loop. The canvas host
(``web/canvas.py``) sees the change and reloads the open pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["CanvasWriteTool", "confined_path"]


def confined_path(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` (symlinks resolved), else None."""
    rel = PurePosixPath(relative.replace("\\", "/").lstrip("/"))
    if ".." in rel.parts:
        return None
    base = root.resolve()
    target = (base / rel).resolve()
    return target if target == base or target.is_relative_to(base) else None


class CanvasWriteTool:
    """``canvas_write {path, content}``: create or replace one file of the canvas."""

    name = "canvas_write"
    description = (
        "Write a file (HTML, CSS, JS, SVG, text) into the canvas workspace that the canvas host serves; "
        "open pages reload when it changes. path is relative to the canvas root, e.g. index.html."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "file path inside the canvas, e.g. index.html"},
            "content": {"type": "string", "description": "the full file content"},
        },
        "required": ["path", "content"],
    }

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def call(self, args: Mapping[str, Any]) -> Any:
        path, content = args.get("path"), args.get("content")
        if not isinstance(path, str) or not path.strip() or not isinstance(content, str):
            raise ValueError("path and content must be strings")
        data = content.encode()
        if len(data) > self.max_bytes:
            raise ValueError(f"content is larger than {self.max_bytes} bytes")
        target = confined_path(self.root, path)
        if target is None or target == self.root.resolve():
            raise ValueError(f"path must stay inside the canvas: {path!r}")
        await asyncio.to_thread(_write, target, data)
        return {"path": "/" + target.relative_to(self.root.resolve()).as_posix(), "bytes": len(data)}


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)  # atomic: a page never reloads into a half-written file
