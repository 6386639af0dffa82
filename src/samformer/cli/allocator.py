"""Keep freed memory in the process for reuse (glibc's malloc), for the samformer CLI's own process.

PyTorch on CPU allocates every intermediate tensor with `malloc`. Above a threshold glibc serves
blocks by `mmap` and returns freed memory to the system (unmaps, or trims the heap), so the next
intermediate of the same size is fresh memory again and faults in page by page: a batch-256 training
step on ETTh1 took 2 600–7 900 minor page faults, and none with the memory kept, which was faster in four
of five paired runs (median 1.26×; `benchmarks/malloc.py`, `benchmarks/README.md` "Page faults").
`keep_freed_memory` raises glibc's mmap threshold to 32 MiB and its trim threshold to 1 GiB: blocks up
to 32 MiB come from the heap and freed memory stays there.

It changes how the whole process allocates, so the library never calls it by itself: `samformer`'s
CLI does (opt out with `SAMFORMER_KEEP_FREED_MEMORY=0`), and a script may call it first thing. The
same effect without code: `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
OPT_OUT = "SAMFORMER_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Set glibc malloc's mmap and trim thresholds (see the module docstring); True if they were set.

    Does nothing and returns False off Linux, with a C library other than glibc, or when the environment
    variable `SAMFORMER_KEEP_FREED_MEMORY` is "0".
    """
    if os.environ.get(OPT_OUT) == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (e.g. musl, whose mallopt ignores these options)
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
