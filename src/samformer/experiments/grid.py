"""The benchmark grid behind `samformer benchmark`: every combination of datasets, horizons, seeds and variants,
each run stored in its own file as soon as it finishes, so a killed grid resumes where it stopped.

This module composes the three parts: the run-file store (`samformer.experiments.store`: what is
stored, what is pending), the scheduler (`samformer.experiments.scheduler`: stacks, order, worker
processes) and, for `samformer table`, the tables (`samformer.experiments.tables`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from samformer.experiments.run import RunSpec
from samformer.experiments.scheduler import GridReport, run_stacks, stacks
from samformer.experiments.store import pending_jobs
from samformer.threads import default_threads


def grid(
    datasets: Iterable[str],
    horizons: Iterable[int],
    seeds: Iterable[int],
    variants: Iterable[str] = ("samformer",),
    seq_len: int = 512,
    model_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
) -> list[RunSpec]:
    """Every combination, variant-major then dataset, horizon and seed."""
    return [
        RunSpec(d, h, v, seq_len, s, dict(model_options or {}), dict(train_options or {}))
        for v in variants
        for d in datasets
        for h in horizons
        for s in seeds
    ]


def run_grid(specs: list[RunSpec], out: str | os.PathLike, **options: Any) -> GridReport:
    """Run every pending spec, storing each result under `out` as soon as it finishes (`options` as `run_grids`)."""
    return run_grids({Path(out): specs}, **options)


def run_grids(
    grids: dict[Path, list[RunSpec]],
    data_dir: str | None = None,
    workers: int = 1,
    progress: bool = True,
    stack: bool = False,
    threads: int | None = None,
) -> GridReport:
    """Run every pending spec of each directory of run files (in `workers` processes, `threads` torch threads each;
    default the cores shared by the workers), storing each result as soon as it finishes.

    Parallel workers take the runs (or stacks) largest first (`longest_first`). With `stack`, the pending seeds of a
    cell train as one stack (`stacks`), across directories too (e.g. one per rho): each record is the one a run
    alone stores up to rounding (a stack sums in another order), and the cell's ensemble is stored too.
    """
    started = time.perf_counter()
    for out in grids:
        out.mkdir(parents=True, exist_ok=True)
    jobs = pending_jobs(grids, data_dir)
    total = sum(len(specs) for specs in grids.values())
    threads = threads or default_threads(workers)
    groups = stacks(jobs) if stack else [[job] for job in jobs]
    bar = tqdm(total=total, initial=total - len(jobs), desc="benchmark runs", unit="run", disable=not progress)
    try:
        run_stacks(groups, data_dir, workers, threads, bar)
    finally:
        bar.close()
    return GridReport(total, total - len(jobs), len(jobs), time.perf_counter() - started)
