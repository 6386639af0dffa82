"""Sweeps on Ray: the benchmark grid as Ray tasks, or a grid search over training settings with Ray Tune.

Every run trains in a Ray worker exactly as `samformer benchmark` trains it (`scheduler.train_record`:
`progress` off and a fixed number of torch threads) and sends its record back; the driver stores
it in the grid's run-file store (`store.store_run`) as soon as it arrives. So the run files have the
layout and content of `samformer benchmark` (only timings differ), `samformer table` reads either,
and a restarted sweep skips what is stored (`store.pending_jobs`). A task whose worker dies, or that
fails with a transient error (`RETRIED`), is retried; one that still fails is reported at the end,
after every other run has been stored.

Ray is an optional dependency (`pip install 'samformer[ray]'`), imported only when a sweep starts.
Workers need samformer installed and the data available (`data_dir` on every node, or the download
cache); they do not need the output directory, which only the driver writes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from samformer.errors import SamformerError
from samformer.experiments.run import RunSpec
from samformer.experiments.scheduler import GridReport, train_record
from samformer.experiments.store import iter_runs, pending_jobs, store_run
from samformer.files import write_json
from samformer.threads import default_threads

# Failures worth another attempt: I/O and torch runtime errors (e.g. out of memory). Bad input
# (SamformerError) and a diverging loss (FloatingPointError) would fail again, so they are not retried.
RETRIED: tuple[type[BaseException], ...] = (OSError, RuntimeError)
# Settings `--search` may vary, with their types.
SEARCHABLE: dict[str, type] = {"rho": float, "lr": float, "weight_decay": float, "batch_size": int}
SUMMARY_FILE = "search-summary.json"

Task = Callable[[RunSpec, "str | None", int], dict[str, Any]]


def import_ray() -> Any:
    """The `ray` module, or a one-line SamformerError telling how to install it."""
    try:
        import ray
    except ImportError:
        raise SamformerError("samformer sweep needs Ray, an optional extra: pip install 'samformer[ray]'") from None
    return ray


def _absolute_data_dir(data_dir: str | os.PathLike | None) -> str | None:
    """`data_dir`, else $SAMFORMER_DATA, as an absolute path: workers and Tune trials run in other directories."""
    data_dir = data_dir if data_dir is not None else os.environ.get("SAMFORMER_DATA")
    return None if data_dir is None else str(Path(data_dir).resolve())


def connect(address: str | None, cpus: int) -> bool:
    """Join Ray: the cluster at `address` ('auto', 'ray://head:10001', 'head:6379'), else a new local
    instance with `cpus` CPUs. Returns True when this call started Ray (and should shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, **options)
    except ConnectionError as exc:
        raise SamformerError(f"cannot reach the Ray cluster at {address!r} ({exc}); check --address") from None
    return True


def _absolute(spec: RunSpec) -> RunSpec:
    """`spec` with a CSV path made absolute: workers may run in another directory."""
    path = Path(spec.dataset)
    return replace(spec, dataset=str(path.resolve())) if path.suffix and path.exists() else spec


def _label(spec: RunSpec) -> str:
    return f"{spec.variant}/{Path(spec.dataset).stem}/H{spec.horizon}/seed{spec.seed} ({spec.protocol()})"


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"


def _raise_failures(failed: list[str], todo: int) -> None:
    if failed:
        for line in failed:
            print(f"samformer: run failed: {line}", file=sys.stderr)
        raise SamformerError(f"{len(failed)} of {todo} runs failed (see above); the others are stored, re-run the same command to retry")


def run_sweep(
    specs: list[RunSpec],
    out: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    workers: int = 2,
    address: str | None = None,
    threads: int | None = None,
    max_retries: int = 2,
    progress: bool = True,
    task: Task = train_record,
) -> GridReport:
    """Run every pending spec as a Ray task, storing each result under `out` as soon as it arrives.

    Locally (no `address`) Ray gets `workers × threads` CPUs; each task reserves `threads` CPUs and trains
    with as many torch threads (default: this machine's cores / `workers`, as `samformer benchmark
    --workers`). A task is retried up to `max_retries` times if its worker dies or it raises one of
    `RETRIED`. `task` is what runs per spec (tests inject failures through it). Raises SamformerError
    at the end if some runs still failed; the others are stored.
    """
    ray = import_ray()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data_dir = _absolute_data_dir(data_dir)
    todo = [spec for spec, _ in pending_jobs({out: specs}, data_dir)]
    threads = threads or default_threads(workers)
    failed: list[str] = []
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="sweep runs", unit="run", disable=not progress)
    created = connect(address, workers * threads) if todo else False
    try:
        remote = ray.remote(task).options(num_cpus=threads, max_retries=max_retries, retry_exceptions=list(RETRIED))
        futures = {remote.remote(_absolute(spec), data_dir, threads): spec for spec in todo}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            spec = futures.pop(done[0])
            try:
                record = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                failed.append(f"{_label(spec)}: {_cause(exc)}")
                continue
            store_run(out, spec, record)
            bar.update()
    finally:
        bar.close()
        if created:
            ray.shutdown()
    _raise_failures(failed, len(todo))
    return GridReport(len(specs), len(specs) - len(todo), len(todo), time.perf_counter() - started)


def parse_search(items: list[str]) -> dict[str, list[float | int]]:
    """`["rho=0.1,0.3", "lr=1e-3,1e-4"]` → `{"rho": [0.1, 0.3], "lr": [0.001, 0.0001]}` (raises SamformerError)."""
    space: dict[str, list[float | int]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SEARCHABLE:
            raise SamformerError(f"bad --search {item!r}: expected NAME=V1,V2,... with NAME one of {', '.join(SEARCHABLE)}")
        try:
            parsed = [SEARCHABLE[name](v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise SamformerError(f"bad --search {item!r}: values of {name} must be {SEARCHABLE[name].__name__}s") from None
        smallest = 0 if name in ("rho", "weight_decay") else 1e-300  # lr and batch_size must be positive
        if not parsed or min(parsed) < smallest:
            raise SamformerError(f"bad --search {item!r}: give one or more non-negative values (positive for lr and batch_size)")
        space[name] = parsed
    return space


def search_trials(specs: list[RunSpec], space: dict[str, list[float | int]]) -> list[tuple[str, RunSpec]]:
    """Every (setting label, spec) of the full grid: each spec under each combination of `space`.

    The label (e.g. 'lr=0.001,rho=0.3') is the directory under which the trial's run file is stored,
    and its settings make the run's protocol 'custom(...)'.
    """
    names = sorted(space)
    trials = []
    for values in itertools.product(*(space[n] for n in names)):
        setting = dict(zip(names, values, strict=True))
        label = ",".join(f"{n}={v}" for n, v in setting.items())
        trials += [(label, replace(spec, train_options={**spec.train_options, **setting})) for spec in specs]
    return trials


def _best_settings(out: Path, labels: list[str]) -> list[dict[str, Any]]:
    """Per (variant, dataset, horizon): the setting with the lowest mean validation MSE over seeds."""
    scores: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for label in labels:
        for _, record in iter_runs(out / label):
            cell = (record["variant"], record["dataset"], record["horizon"])
            scores.setdefault(cell, {}).setdefault(label, []).append(record)
    best = []
    for (variant, dataset, horizon), by_label in sorted(scores.items()):
        ranked = sorted(by_label.items(), key=lambda kv: statistics.fmean(r["val_mse"] for r in kv[1]))
        label, records = ranked[0]
        best.append(
            {
                "variant": variant,
                "dataset": dataset,
                "horizon": horizon,
                "best": label,
                "val_mse": statistics.fmean(r["val_mse"] for r in records),
                "test_mse": statistics.fmean(r["test_mse"] for r in records),
                "n_seeds": len(records),
                "val_mse_by_setting": {lab: statistics.fmean(r["val_mse"] for r in recs) for lab, recs in ranked},
            }
        )
    return best


def run_search(
    specs: list[RunSpec],
    space: dict[str, list[float | int]],
    out: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    workers: int = 2,
    address: str | None = None,
    threads: int | None = None,
    max_retries: int = 2,
    progress: bool = True,
) -> GridReport:
    """Grid search with Ray Tune: every spec under every combination of `space`, selected on validation MSE.

    Each trial's run file goes to `out/<setting>/<variant>/<dataset>/H<h>/seed<s>.json` (written by the
    driver as the trial reports, so finished trials survive an interruption and are skipped next time);
    `out/search-summary.json` holds the best setting per (variant, dataset, horizon). Tune restarts a
    failed trial up to `max_retries` times.
    """
    ray = import_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trials = search_trials(specs, space)
    data_dir = _absolute_data_dir(data_dir)
    by_setting: dict[Path, list[RunSpec]] = {}
    for label, spec in trials:
        by_setting.setdefault(out / label, []).append(spec)
    todo = [(directory.name, _absolute(spec)) for spec, directory in pending_jobs(by_setting, data_dir)]
    threads = threads or default_threads(workers)
    bar = tqdm(total=len(trials), initial=len(trials) - len(todo), desc="search trials", unit="trial", disable=not progress)
    created = connect(address, workers * threads) if todo else False
    try:
        failed = _run_trials(todo, out, data_dir, threads, workers, address, max_retries, bar) if todo else []
    finally:
        bar.close()
        if created:
            ray.shutdown()
    _raise_failures(failed, len(todo))
    labels = sorted({label for label, _ in trials})
    best = _best_settings(out, labels)
    write_json(out / SUMMARY_FILE, {"space": space, "selected_on": "val_mse", "best": best})
    return GridReport(len(trials), len(trials) - len(todo), len(todo), time.perf_counter() - started, best=best)


def _run_trials(
    todo: list[tuple[str, RunSpec]],
    out: Path,
    data_dir: str | None,
    threads: int,
    workers: int,
    address: str | None,
    max_retries: int,
    bar: tqdm,
) -> list[str]:
    """Run the `todo` trials under Ray Tune, storing each run file as its trial reports; returns the failures."""
    from ray import tune

    class _Store(tune.Callback):
        """Stores each trial's run file on the driver as soon as the trial reports."""

        def on_trial_result(self, iteration, trials, trial, result, **info):
            label, spec = todo[trial.config["trial"]]
            store_run(out / label, spec, json.loads(result["record"]))
            bar.update()

    def trainable(config: dict[str, Any]) -> None:
        label, spec = todo[config["trial"]]
        record = train_record(spec, data_dir, threads)  # Tune runs each trial in its own directory: paths are absolute
        tune.report({"val_mse": record["val_mse"], "test_mse": record["test_mse"], "setting": label, "record": json.dumps(record)})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": threads}),
        param_space={"trial": tune.grid_search(list(range(len(todo))))},
        tune_config=tune.TuneConfig(metric="val_mse", mode="min", max_concurrent_trials=workers if not address else None),
        run_config=tune.RunConfig(
            name="search",
            storage_path=str(out / ".tune"),
            failure_config=tune.FailureConfig(max_failures=max_retries),
            callbacks=[_Store()],
            verbose=0,
        ),
    )
    with contextlib.redirect_stdout(sys.stderr):  # Tune's notices; stdout keeps only the summary line
        results = tuner.fit()
    failed = []
    for result in results:
        if result.error is not None:
            label, spec = todo[result.config["trial"]]
            failed.append(f"{_label(spec)} [{label}]: {_cause(result.error)}")
    return failed
