"""The scheduler of the benchmark grid: which runs train together as one stack, in which order, in which process.

Each run (or stack) trains in this process or in a pool of spawned worker processes, with a fixed
number of torch threads, and its records are stored (`samformer.experiments.store`) as soon as it ends.
`train_record` is the one way a run is trained for the store: by the grid's workers and by sweeps' Ray tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import torch
from tqdm.auto import tqdm

from samformer.data.benchmarks import get_benchmark, is_benchmark_name
from samformer.experiments.run import RunSpec, execute, execute_stacked
from samformer.experiments.store import Job, ensemble_path, ensemble_record, run_path, store_run
from samformer.files import exclusive_lock, write_json
from samformer.training.stacked.stackable import stack_key

STACKED_TOGETHER = {"seed", "rho", "progress"}  # a grid stack: a cell's seeds and its rho values


@dataclass
class GridReport:
    """What a run of a grid or a sweep did."""

    total: int
    skipped: int
    ran: int
    wall_seconds: float
    failed: list[str] = field(default_factory=list)  # sweeps only: the runs that failed, one line each
    best: list[dict[str, Any]] = field(default_factory=list)  # searches only: the best setting per cell


def train_record(spec: RunSpec, data_dir: str | None, threads: int) -> dict[str, Any]:
    """Train `spec` in this process with `threads` torch threads and no progress bar; returns its result record."""
    torch.set_num_threads(threads)
    spec.train_options.setdefault("progress", False)
    _, _, record = execute(spec, data_dir=data_dir)
    return record


def _stack_key(job: Job) -> Hashable | None:
    """Runs with equal keys train as one stack (the stacking rule, `training.stacked.stackable`, narrowed to a cell's
    seeds and rho values); None for a run the rule keeps out of any stack."""
    spec, _ = job
    key = stack_key(spec.network_options(), spec.train_config(), per_model=STACKED_TOGETHER)
    return None if key is None else (spec.variant, spec.dataset, spec.horizon, spec.seq_len, repr(spec.channels), key)


def stacks(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped into stacks (a cell's seeds, and its rho values), in the order of their first job.

    A run the stacking rule refuses (σReparam, compile) is a stack of its own.
    """
    groups: dict[Hashable, list[Job]] = {}
    for job in jobs:
        key = _stack_key(job)
        groups.setdefault((id(job),) if key is None else key, []).append(job)
    return list(groups.values())


def expected_cost(group: list[Job]) -> float:
    """A stack's training cost relative to other stacks (models x rows x channels x window length), or 0 when its
    dataset is a user's file; epoch counts, which early stopping decides, are unknown beforehand."""
    spec = group[0][0]
    if not is_benchmark_name(spec.dataset):
        return 0.0
    benchmark = get_benchmark(spec.dataset)
    return float(len(group) * benchmark.n_rows * benchmark.n_channels * (spec.seq_len + spec.horizon))


def longest_first(groups: list[list[Job]]) -> list[list[Job]]:
    """The stacks in decreasing expected cost (stable), so that parallel workers finish close together instead of
    one worker starting the largest stack when the others are done."""
    return sorted(groups, key=expected_cost, reverse=True)


def _run_stack(jobs: list[Job], data_dir: str | None, threads: int) -> int:
    """Train the runs of `jobs` as one stack and store each record, and the ensemble of each cell whose seeds all trained here."""
    torch.set_num_threads(threads)
    with contextlib.ExitStack() as locks:  # two benchmarks into one --out never train and store the same run at once
        for spec, out in jobs:
            locks.enter_context(exclusive_lock(run_path(out, spec)))
        return _train_and_store(jobs, data_dir, threads)


def _train_and_store(jobs: list[Job], data_dir: str | None, threads: int) -> int:
    if len(jobs) == 1:
        spec, out = jobs[0]
        store_run(out, spec, train_record(spec, data_dir, threads))
        return 1
    for spec, _ in jobs:
        spec.train_options.setdefault("progress", False)
    outcome = execute_stacked([spec for spec, _ in jobs], data_dir=data_dir)
    for (spec, out), record in zip(jobs, outcome.records, strict=True):
        store_run(out, spec, record)
    outs = {out for _, out in jobs}
    if len(outs) == 1:  # one cell, one setting: its seeds' mean forecast
        write_json(ensemble_path(outs.pop(), jobs[0][0], [spec.seed for spec, _ in jobs]), ensemble_record(outcome), make_dirs=True)
    return len(jobs)


def run_stacks(groups: list[list[Job]], data_dir: str | None, workers: int, threads: int, bar: tqdm) -> None:
    """Train and store every stack of `groups`: in this process, or in `workers` spawned processes largest first."""
    if workers <= 1:
        for group in groups:
            bar.update(_run_stack(group, data_dir, threads))
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_run_stack, group, data_dir, threads) for group in longest_first(groups)}
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                bar.update(future.result())  # re-raises a worker's error
