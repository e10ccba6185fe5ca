"""Handing freed memory back to the operating system after a large computation.

glibc keeps the arenas a process has used: after one large attribution a server stays gigabytes larger than
it needs until it exits. ``malloc_trim(0)`` returns the free parts; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)
_libc = None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)


def _c_library():
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    return _libc


def bound_heap_growth(threshold: int = 1 << 20) -> None:
    """Serve every allocation of ``threshold`` bytes or more with its own mapping, returned to the system when freed.

    glibc raises its mmap threshold after the first large free (up to 32 MB), after which a long computation's
    big tensors come from the heap and fragment it: the process peaks far above what it ever holds at once.
    Fixing the threshold keeps the peak at the live memory (measured in bench/memory.py). glibc only."""
    libc = _c_library()
    if libc and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, threshold)
        libc.mallopt(M_TRIM_THRESHOLD, threshold)


def release_memory(full: bool = True) -> None:
    """Collect garbage, then return free heap memory to the operating system (glibc only).

    ``full=False`` collects only the young generations (the objects of a short computation): a full collection
    walks every object of the process, ~0.2 s in the app's server with torch and transformers loaded, more than
    a whole attribution of a small model."""
    if full:
        gc.collect()
    else:
        gc.collect(1)
    libc = _c_library()
    if libc and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB; 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field))
    except (OSError, StopIteration):
        return 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``VmHWM``), in MB."""
    return _status_mb("VmHWM")


def rss_mb() -> float:
    """This process's resident memory now (``VmRSS``), in MB."""
    return _status_mb("VmRSS")
