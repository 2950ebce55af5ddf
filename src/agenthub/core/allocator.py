"""Handing the C allocator's free memory back to the operating system (glibc).

glibc's ``malloc`` keeps what the process frees. Two things make that grow
under the gateway's load although its live objects do not (measured under
``python -m soak``: between two identical rounds the Python heap, tracemalloc,
and malloc's bytes in use stayed flat while RSS rose 10 to 35 MiB a round):

- each thread that allocates gets an arena of its own, up to 8 per core. The
  database's threads (one per SQLite connection) read whole transcripts, so
  each of their arenas swells by a burst's size (~12 MiB under the soak) and
  keeps it as its free top chunk, which ``malloc_trim`` does not shrink (only
  the main arena's top is trimmed). New connection threads bring new arenas,
  so every round inflated one or two more;
- the free holes inside a heap stay resident until ``malloc_trim`` is called.

So the gateway caps the arenas (``limits.malloc_arenas``, ``mallopt(M_ARENA_MAX)``
at start, before its threads exist), and calls ``malloc_trim(0)`` every
``limits.malloc_trim_interval_s``, as jemalloc and tcmalloc return free memory
on their own after a few seconds. Without glibc (musl, macOS, Windows) both do nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["cap_arenas", "malloc_trim", "trim_periodically"]

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h
# Slept between checks while trimming is off (0), so turning it on takes effect without a restart.
_OFF_RECHECK_S = 60.0


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library the process already runs on
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):  # no dlopen(NULL), or not glibc (musl has no malloc_trim)
        return None
    return libc


_LIBC = _glibc()


def malloc_trim() -> bool | None:
    """Give malloc's free pages back to the OS: True if some were, False if none, None without glibc."""
    if _LIBC is None:
        return None
    return bool(_LIBC.malloc_trim(0))


def cap_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas for threads started from now on (0: glibc's default).

    ``MALLOC_ARENA_MAX`` in the environment, the operator's own choice, wins.
    Returns whether the cap was set.
    """
    if _LIBC is None or arenas <= 0 or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, arenas))


async def trim_periodically(interval_s: Callable[[], float]) -> None:
    """``malloc_trim`` every ``interval_s()`` seconds (read each time; 0: off), in a worker thread.

    The trim walks every arena (milliseconds for a heap of 100 MiB): off the
    event loop it delays no client, and ctypes lets go of the GIL meanwhile.
    """
    if _LIBC is None:
        log.debug("no malloc_trim in this C library: freed memory stays with the allocator")
        return
    while True:
        interval = interval_s()
        if interval <= 0:
            await asyncio.sleep(_OFF_RECHECK_S)
            continue
        await asyncio.sleep(interval)
        await asyncio.to_thread(malloc_trim)
