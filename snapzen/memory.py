"""Process memory tuning for a pass, where the C library allows it.

glibc gives each thread that allocates its own malloc arena (up to 8 per core), and an arena
keeps the peak of what its thread once held. A pass has up to nine such threads (the pass's,
four page readers, four submit workers), each briefly holding a page or an import body of
~0.5-1 MB: at 100,000 chats the arenas added ~8 MB to the peak RSS of the pass's process
(bench/RESULTS.md, v7). Two arenas are enough for threads that mostly wait on sockets.

By hand (ctypes): the standard library has no binding for mallopt, and the environment
variable (MALLOC_ARENA_MAX) must be set before the process starts, which a cron line or a
container image may not do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # glibc's malloc.h
PASS_MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = PASS_MALLOC_ARENAS) -> bool:
    """Cap the number of malloc arenas (glibc only; arenas already made are kept). Returns
    whether the C library took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
