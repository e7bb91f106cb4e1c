"""How the server's process allocates memory: freed result memory goes back to the system.

A result's per-layer captures (a 512-token SmolLM2 layer is 9.4 MB of attention) are allocated and freed by many
script threads. With glibc's defaults, freeing such a block raises the size above which blocks are mapped on their
own (up to 32 MB), so later ones come from per-thread arenas that keep freed memory: measured on 256-token SmolLM2
runs in fresh threads, resident memory grew by ~80 MB per run with one result kept. A fixed 1 MB threshold and two
arenas kept it flat (1,248 -> 1,267 MB over six runs). Called once at server start (``serve.py``); nothing happens on
a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENAS = 2


def return_freed_memory() -> bool:
    """Makes glibc map every block of 1 MB or more on its own (freed at once) and use at most two arenas; returns
    whether the settings were applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has no such call)
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENAS))
