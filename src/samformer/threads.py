"""How many CPU threads torch uses in a command: `--threads N`, else `OMP_NUM_THREADS`, else the cores.

SAMformer's matrices are small: on a machine whose cores are already busy, more threads than idle
cores make each step wait for the others (an epoch 19x slower on a loaded 2-core machine with the
default thread count than with one thread). `choose_threads` therefore uses one thread per process
when the load average exceeds the cores and no count was asked for, and says so.
"""

from __future__ import annotations

import os

ENV = "OMP_NUM_THREADS"


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_threads(workers: int = 1) -> int:
    """Torch threads per process when nothing was asked for: the available cores shared by `workers` processes (>= 1)."""
    return max(1, available_cores() // max(1, workers))


def threads_from_environment() -> int | None:
    """`OMP_NUM_THREADS` as a positive integer, or None when it is unset or not one."""
    text = os.environ.get(ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def load_average() -> float:
    """The 1-minute load average (0 where the platform does not report one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(requested: int | None = None, workers: int = 1, adapt_to_load: bool = True) -> tuple[int, str | None]:
    """Threads per process for `workers` processes, and a one-line note when the machine's load lowered the count.

    An explicit `requested` count wins, then `OMP_NUM_THREADS`; otherwise the cores are shared among
    the workers, and with `adapt_to_load` a machine whose load average exceeds its cores gets one
    thread per process.
    """
    if requested is not None:
        return requested, None
    from_env = threads_from_environment()
    if from_env is not None:
        return from_env, None
    cores = available_cores()
    share = default_threads(workers)
    load = load_average() if adapt_to_load else 0.0
    if load <= cores or share == 1:
        return share, None
    note = (
        f"samformer: note: the machine is busy (load average {load:.1f} on {cores} cores): using 1 thread per process "
        f"instead of {share}; choose with --threads N or {ENV}"
    )
    return 1, note
