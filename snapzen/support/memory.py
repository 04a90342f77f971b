"""Process memory tuning for a pass, where the C library allows it.

glibc gives each thread that allocates its own malloc arena (up to 8 per core), and an arena
keeps the peak of what its thread once held. A pass has up to ten such threads (the pass's,
four page readers, four submit workers, the poller), each briefly holding a page or an
import body of ~0.5-1 MB: at 100,000 chats the extra arenas held ~10-20 MB of the peak RSS
of the pass's process (bench/RESULTS.md, v7; v9: without this module a 100,000-chat backfill
peaked at 153 MB against 139 MB with it, over the 150 MB bound). One arena is enough for
threads that mostly wait on sockets (two: ~8 MB more at 100,000 chats, no faster).

By hand (ctypes): the standard library has no binding for mallopt, and the environment
variable (MALLOC_ARENA_MAX) must be set before the process starts, which a cron line or a
container image may not do.
"""

from __future__ import annotations

import ctypes
import sys
import time
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h
PASS_MALLOC_ARENAS = 1


def _glibc(name: str, *argtypes: Any) -> Any:
    """The C library's function ``name`` (returning int), or None where there is none (not
    Linux, or not glibc: musl has neither mallopt nor malloc_trim): nothing to tune then."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols (libc is linked in), not ctypes.util.find_library: that
        # runs ldconfig in a forked copy of this process, itself ~50 MB of RSS for a moment.
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


def limit_malloc_arenas(arenas: int = PASS_MALLOC_ARENAS) -> bool:
    """Cap the number of malloc arenas (glibc only; arenas already made are kept). Returns
    whether the C library took the setting."""
    mallopt = _glibc("mallopt", ctypes.c_int, ctypes.c_int)
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))


_trim: Any = None
_last_trim = 0.0
TRIM_EVERY_SECONDS = 1.0


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``), at most once a
    second. A long pass frees and reallocates hundreds of MB of page and import buffers;
    without it the freed pages stay resident, and the peak RSS of a 100,000-chat backfill
    was ~20 MB above a 10,000-chat one for the same live data (bench/RESULTS.md, v7)."""
    global _trim, _last_trim
    now = time.monotonic()
    if now - _last_trim < TRIM_EVERY_SECONDS:
        return
    _last_trim = now
    if _trim is None:
        _trim = _glibc("malloc_trim", ctypes.c_size_t) or False
    if _trim:
        _trim(0)
