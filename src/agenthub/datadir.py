"""The data directory: private permissions, and one gateway at a time (an ``fcntl.flock`` lock file).

Two gateways on one data dir would fail each other's live runs at start and keep
their own caches of the same database, so the second one must refuse to start.
The lock dies with its process (even on SIGKILL), so there is nothing to clean up.
CLI commands that only write rows (``agenthub keys``, ``agenthub pipelines``) do
not take it: SQLite's own locking (WAL and a busy timeout) serialises them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

__all__ = ["LOCK_NAME", "DataDirBusyError", "DataDirLock", "lock_holder", "secure_dir", "secure_file"]

LOCK_NAME = "gateway.lock"


class DataDirBusyError(RuntimeError):
    """Another process holds the data dir's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"data dir {data_dir} is in use by another gateway ({who}): stop it, or give this one another --data-dir"
        )
        self.data_dir = data_dir
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class DataDirLock:
    """An exclusive, non-blocking lock on ``data_dir/gateway.lock`` holding the owner's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``DataDirBusyError`` naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirBusyError(self.data_dir, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lock_holder(data_dir: Path) -> int | None:
    """The pid of the gateway holding ``data_dir`` (0 if unknown), or None when it is free."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def secure_dir(path: Path) -> str | None:
    """Create ``path`` 0700, or take group/other access away from an existing data dir.

    Only a directory that is ours (our uid, no sticky bit, and empty or already holding
    agenthub's files) is tightened: ``--data-dir /tmp`` must not lock everyone out of /tmp.
    Returns what was done or what the operator should do, or None when nothing was needed.
    """
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        return f"created data dir {path} (0700)"
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        return None
    names = {p.name for p in path.iterdir()}
    ours = st.st_uid == os.getuid() and not mode & stat.S_ISVTX and (not names or names & {"agenthub.db", LOCK_NAME})
    if ours:
        os.chmod(path, mode & 0o700)
        return f"data dir {path} was mode {mode:o}: now {mode & 0o700:o}"
    return f"data dir {path} is mode {mode:o} (readable by other users): chmod 700 {path}, or use another --data-dir"


def secure_file(path: Path, create: bool = False) -> bool:
    """Make ``path`` 0600 (created empty when ``create``); True if it changed."""
    if not path.exists():
        if not create:
            return False
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        return True
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, mode & 0o600)
        return True
    return False
