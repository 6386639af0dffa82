"""Internal: the grid runner behind `samformer benchmark` and `samformer table` — one result file per run.

Files are written atomically, so a killed grid resumes. Layout:
`OUT/<variant>/<dataset>/H<horizon>/seed<seed>.json`, where `<dataset>` is a benchmark's name, or a
CSV's name, `-` and the first 8 hex digits of the SHA-256 of its resolved path (two files both
called data.csv never share a directory).
A run whose file holds a complete record of the same full configuration (every training option, the
model options, the dataset's resolved path and content hash) is skipped; a record of another
configuration stops the grid before any training, with one line saying so; a corrupt, half-written
or mistyped file is reported, moved aside to `*.corrupt` and the run is done again — never silently
used. Records written by older versions lack some keys: those are compared with today's defaults,
or not at all for the dataset's identity, and stay readable for tables.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from samformer.data.benchmarks import get_benchmark, is_benchmark_name
from samformer.data.loading import resolve_source, source_identity
from samformer.errors import DataError, SamformerError
from samformer.experiments.paper import TRANSFORMER_MSE, TSMIXER_MSE, paper_mse
from samformer.experiments.run import RunSpec, StackOutcome, execute, execute_stacked
from samformer.files import exclusive_lock, require_regular_file, write_json
from samformer.training.config import TrainConfig, train_config_problems

_TEXT_KEYS = ("dataset", "variant", "protocol")
_INTEGER_KEYS = ("horizon", "seq_len", "seed")
_METRIC_KEYS = ("test_mse", "test_mae", "val_mse")
REQUIRED_KEYS = (*_TEXT_KEYS, *_INTEGER_KEYS, *_METRIC_KEYS)
_DISPLAY_ONLY = {"progress"}  # training options that change nothing but what is printed
STACKABLE_OPTIONS = {"seed", "rho", "progress"}  # training options in which the runs of one stack may differ
UNSTACKABLE_VARIANTS = {"sigma-reparam"}  # σReparam's power-iteration state is per model


def dataset_directory(dataset: str) -> str:
    """The directory name of a dataset's runs: a benchmark's name, or a CSV's name and a hash of its resolved path."""
    name = Path(dataset).stem.removesuffix(".csv")
    if is_benchmark_name(dataset):
        return name
    return f"{name}-{hashlib.sha256(str(Path(dataset).resolve()).encode()).hexdigest()[:8]}"


def run_path(out: Path, spec: RunSpec) -> Path:
    """Where the result of `spec` is stored under `out`."""
    return Path(out) / spec.variant / dataset_directory(spec.dataset) / f"H{spec.horizon}" / f"seed{spec.seed}.json"


def ensemble_path(out: Path, spec: RunSpec, seeds: list[int]) -> Path:
    """Where the ensemble (mean forecast) of `seeds` of the cell of `spec` is stored under `out`, beside its run files."""
    return run_path(out, spec).with_name(f"ensemble-seeds{'-'.join(map(str, sorted(seeds)))}.json")


def ensemble_record(outcome: StackOutcome) -> dict[str, Any]:
    """The record of a stack's ensemble: its cell, its seeds, the mean forecast's test metrics and its members'."""
    first = outcome.records[0]
    cell = {k: first[k] for k in ("dataset", "horizon", "seq_len", "variant", "protocol", "data_protocol")}
    members = {"seeds": [r["seed"] for r in outcome.records], "members_test_mse": [r["test_mse"] for r in outcome.records]}
    train_config = {k: v for k, v in first["train_config"].items() if k != "seed"}
    members["members_test_mae"] = [r["test_mae"] for r in outcome.records]
    metrics = {"test_mse": outcome.ensemble["test_mse"], "test_mae": outcome.ensemble["test_mae"]}
    return {"kind": "ensemble", **cell, **members, **metrics, "train_config": train_config}


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


def read_run(path: Path) -> dict[str, Any] | None:
    """A stored run record, or None if the file is absent. Raises ValueError if it is corrupt."""
    if not require_regular_file(path, "run file (delete what stands in its place)").exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    missing = [k for k in REQUIRED_KEYS if k not in record] if isinstance(record, dict) else list(REQUIRED_KEYS)
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    mistyped = [k for k in _TEXT_KEYS if not isinstance(record[k], str)]
    mistyped += [k for k in _INTEGER_KEYS if not _is_integer(record[k])]
    mistyped += [k for k in _METRIC_KEYS if not _is_number(record[k])]
    if mistyped:
        raise ValueError(f"{path} holds {', '.join(f'{k}={record[k]!r}' for k in mistyped)} (wrong type)")
    if not all(math.isfinite(record[k]) for k in _METRIC_KEYS):
        raise ValueError(f"{path} holds non-finite metrics")
    settings = record.get("train_config")
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"{path} holds train_config={settings!r}, not a JSON object of training options")
    problems = train_config_problems(settings or {})
    if problems:
        raise ValueError(f"{path} holds train_config {problems[0]}")
    return record


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def configuration_difference(record: dict[str, Any], spec: RunSpec, dataset: dict[str, str] | None) -> str | None:
    """How a stored run's configuration differs from `spec` on `dataset` (its `source_identity`), or None if it matches.

    Compared: horizon, look-back, seed, variant, every training option (those an older version did
    not record count as today's defaults), the protocol label (which names model options and
    channels) and the dataset's resolved path and content hash (when the record and the caller both
    know them).
    """
    for key, wanted in {"horizon": spec.horizon, "seq_len": spec.seq_len, "seed": spec.seed, "variant": spec.variant}.items():
        if record[key] != wanted:
            return f"{key} {record[key]!r} there, {wanted!r} here"
    stored = record.get("train_config")
    if isinstance(stored, dict):
        defaults = asdict(TrainConfig())
        for key, wanted in json.loads(json.dumps(asdict(spec.train_config()))).items():
            if key not in _DISPLAY_ONLY and stored.get(key, defaults.get(key)) != wanted:
                return f"{key} {stored.get(key, defaults.get(key))!r} there, {wanted!r} here"
    if record["protocol"] != spec.protocol():  # model options and channels are named in it
        return f"protocol {record['protocol']} there, {spec.protocol()} here"
    source = (record.get("data_protocol") or {}).get("source")
    if dataset and isinstance(source, dict):
        for key in ("path", "sha256"):
            if source.get(key) != dataset[key]:
                return f"dataset {key} {source.get(key)!r} there, {dataset[key]!r} here"
    return None


def _dataset_identity(dataset: str, data_dir: str | os.PathLike | None) -> dict[str, str] | None:
    """The `source_identity` of a local dataset file; None when it is not here yet (it is compared once it is)."""
    try:
        return source_identity(resolve_source(dataset, data_dir, download=False))
    except DataError:
        return None


def pending(specs: list[RunSpec], out: Path, log=print, data_dir: str | os.PathLike | None = None) -> list[RunSpec]:
    """The runs of `specs` not yet stored under `out`; corrupt files are reported and moved aside.

    Raises a `SamformerError` if a run of another configuration is stored where one of `specs` goes.
    """
    todo, identities = [], {}
    for spec in specs:
        path = run_path(out, spec)
        try:
            record = read_run(path)
        except ValueError as exc:
            log(f"samformer: warning: {exc}; moved to {path.name}.corrupt and the run will be redone")
            os.replace(path, path.with_name(path.name + ".corrupt"))
            record = None
        if record is None:
            todo.append(spec)
            continue
        if spec.dataset not in identities:
            identities[spec.dataset] = _dataset_identity(spec.dataset, data_dir)
        difference = configuration_difference(record, spec, identities[spec.dataset])
        if difference:
            raise SamformerError(f"a different configuration is stored at {path} ({difference}); use another --out or remove it")
    return todo


def _run_one(spec: RunSpec, out: Path, data_dir: str | None, threads: int) -> tuple[str, float]:
    """Train one run and store its record (in a worker process or in-process)."""
    torch.set_num_threads(threads)
    spec.train_options.setdefault("progress", False)
    _, _, record = execute(spec, data_dir=data_dir)
    path = run_path(out, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return str(path), record["test_mse"]


Job = tuple[RunSpec, Path]  # a run and the directory of run files it is stored under


def _stack_key(job: Job) -> tuple:
    """Runs with equal keys have one shape and share the settings a stack must share: they train as one stack."""
    spec, _ = job
    options = {k: v for k, v in spec.train_options.items() if k not in STACKABLE_OPTIONS}
    return (
        spec.variant,
        spec.dataset,
        spec.horizon,
        spec.seq_len,
        repr(sorted(spec.model_options.items())),
        repr(spec.channels),
        repr(sorted(options.items())),
    )


def stacks(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped into stacks (a cell's seeds, and its rho values), in the order of their first job.

    σReparam runs cannot be stacked: each is a stack of its own.
    """
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        key = _stack_key(job) if job[0].variant not in UNSTACKABLE_VARIANTS else (id(job),)
        groups.setdefault(key, []).append(job)
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
        _run_one(*jobs[0], data_dir, threads)
        return 1
    for spec, _ in jobs:
        spec.train_options.setdefault("progress", False)
    outcome = execute_stacked([spec for spec, _ in jobs], data_dir=data_dir)
    for (spec, out), record in zip(jobs, outcome.records, strict=True):
        write_json(run_path(out, spec), record, make_dirs=True)
    outs = {out for _, out in jobs}
    if len(outs) == 1:  # one cell, one setting: its seeds' mean forecast
        write_json(ensemble_path(outs.pop(), jobs[0][0], [spec.seed for spec, _ in jobs]), ensemble_record(outcome), make_dirs=True)
    return len(jobs)


@dataclass
class GridReport:
    """What a `run_grid` call did."""

    total: int
    skipped: int
    ran: int
    wall_seconds: float


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
    jobs: list[Job] = []
    for out, specs in grids.items():
        out.mkdir(parents=True, exist_ok=True)
        jobs += [(spec, out) for spec in pending(specs, out, log=lambda m: print(m, file=sys.stderr), data_dir=data_dir)]
    total = sum(len(specs) for specs in grids.values())
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, workers))
    groups = stacks(jobs) if stack else [[job] for job in jobs]
    bar = tqdm(total=total, initial=total - len(jobs), desc="benchmark runs", unit="run", disable=not progress)
    try:
        if workers <= 1:
            for group in groups:
                bar.update(_run_stack(group, data_dir, threads))
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_run_stack, group, data_dir, threads) for group in longest_first(groups)}
                while futures:
                    done, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        bar.update(future.result())  # re-raises a worker's error
    finally:
        bar.close()
    return GridReport(total, total - len(jobs), len(jobs), time.perf_counter() - started)


def iter_runs(root: str | os.PathLike) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every valid stored run under `root` (corrupt files are reported on stderr and skipped)."""
    for path in sorted(Path(root).rglob("seed*.json")):
        try:
            record = read_run(path)
        except ValueError as exc:
            print(f"samformer: warning: {exc}; not used (re-run the benchmark to redo it)", file=sys.stderr)
            continue
        if record is not None:
            yield path, record


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(root: str | os.PathLike) -> list[dict[str, Any]]:
    """One cell per (variant, dataset, horizon, protocol): mean ± sample std over seeds, with the paper's MSE."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for _, record in iter_runs(root):
        key = (record["variant"], record["dataset"], record["horizon"], record["protocol"])
        groups.setdefault(key, []).append(record)
    return [_cell(records, protocol) for (*_, protocol), records in sorted(groups.items(), key=_cell_order)]


def _cell(records: list[dict[str, Any]], protocol: str) -> dict[str, Any]:
    """The table cell of `records`: the runs (one per seed) of one variant, dataset and horizon under `protocol`."""
    variant, dataset, horizon = records[0]["variant"], records[0]["dataset"], records[0]["horizon"]
    mse_mean, mse_std = _mean_std([r["test_mse"] for r in records])
    mae_mean, mae_std = _mean_std([r["test_mae"] for r in records])
    return {
        "dataset": dataset,
        "horizon": horizon,
        "variant": variant,
        "protocol": protocol,
        "n_seeds": len(records),
        "mse_mean": mse_mean,
        "mse_std": mse_std,
        "mae_mean": mae_mean,
        "mae_std": mae_std,
        "paper_mse": paper_mse(variant, dataset, horizon),
        "paper_tsmixer_mse": TSMIXER_MSE.get(dataset, {}).get(horizon),
        "paper_transformer_mse": TRANSFORMER_MSE.get(dataset, {}).get(horizon),
        "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
        "seeds": sorted(r["seed"] for r in records),
        "data_protocol": records[0].get("data_protocol"),
        "train_config": records[0].get("train_config"),
        "selected": None,  # the setting chosen on validation, for tuned cells (see `summarise_tuned`)
    }


def _mean_validation(by_setting: dict[str, list[dict[str, Any]]], seeds: set[int], label: str) -> float:
    return statistics.fmean(r["val_mse"] for r in by_setting[label] if r["seed"] in seeds)


def summarise_tuned(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Cells with one setting per (variant, dataset, horizon) selected on validation MSE.

    `root` holds one directory of run files per setting, named like `rho=0.3` (as `samformer sweep
    --search` writes them, or `samformer benchmark --rho 0.3 --out root/rho=0.3`). For each cell the
    setting with the lowest mean validation MSE over the seeds that every setting has run is selected
    (test MSE never enters the choice); the cell then reports the test metrics of all of that
    setting's seeds. Its protocol is 'tuned(<name>)' and `selected` names the setting.
    """
    runs: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for setting in sorted(p for p in Path(root).iterdir() if p.is_dir() and "=" in p.name):
        for _, record in iter_runs(setting):
            key = (record["variant"], record["dataset"], record["horizon"])
            runs.setdefault(key, {}).setdefault(setting.name, []).append(record)
    cells = []
    for by_setting in runs.values():
        common = set.intersection(*({r["seed"] for r in records} for records in by_setting.values()))
        if not common:
            continue  # no seed run under every setting yet: nothing to select on

        validation = functools.partial(_mean_validation, by_setting, common)
        selected = min(sorted(by_setting), key=validation)
        names = sorted({label.split("=", 1)[0] for label in by_setting})
        cell = _cell(by_setting[selected], protocol=f"tuned({','.join(names)})")
        cell["selected"] = selected
        cell["selection_seeds"] = sorted(common)
        cell["val_mse_by_setting"] = {label: validation(label) for label in sorted(by_setting, key=validation)}
        cells.append(cell)
    return sorted(cells, key=lambda c: _cell_order(((c["variant"], c["dataset"], c["horizon"], c["protocol"]), None)))


_VARIANT_ORDER = ["samformer", "no-sam", "sigma-reparam", "linear", "no-revin"]
_DATASET_ORDER = ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "electricity", "exchange_rate", "traffic", "weather"]


def _cell_order(item: tuple[tuple, Any]) -> tuple:
    variant, dataset, horizon, protocol = item[0]
    v = _VARIANT_ORDER.index(variant) if variant in _VARIANT_ORDER else len(_VARIANT_ORDER)
    d = _DATASET_ORDER.index(dataset) if dataset in _DATASET_ORDER else len(_DATASET_ORDER)
    return (v, protocol, d, dataset, horizon)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _relative(ours: float, paper: float | None) -> str:
    return "–" if paper is None else f"{100 * (ours - paper) / paper:+.1f}%"


def by_variant_and_protocol(cells: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The cells in one block per (variant, protocol), in their order."""
    blocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        blocks.setdefault((cell["variant"], cell["protocol"]), []).append(cell)
    return blocks


def render_table(cells: list[dict[str, Any]], fmt: str = "md") -> str:
    """The comparison table (Markdown or CSV), one block per variant and protocol, with an average row."""
    header = ["dataset", "H", "seeds", "MSE (ours)", "MAE (ours)", "paper MSE", "vs paper", "TSMixer (paper)", "Transformer (paper)"]
    lines: list[str] = []
    if fmt == "csv":
        lines.append(",".join(["variant", "protocol", *header]))
    for (variant, protocol), block in by_variant_and_protocol(cells).items():
        rows = [
            [
                c["dataset"],
                str(c["horizon"]),
                str(c["n_seeds"]) + (f" ({c['selected']})" if c.get("selected") else ""),
                f"{c['mse_mean']:.3f} ± {c['mse_std']:.3f}",
                f"{c['mae_mean']:.3f} ± {c['mae_std']:.3f}",
                _fmt(c["paper_mse"]),
                _relative(c["mse_mean"], c["paper_mse"]),
                _fmt(c["paper_tsmixer_mse"]),
                _fmt(c["paper_transformer_mse"]),
            ]
            for c in block
        ]
        compared = [c for c in block if c["paper_mse"] is not None]
        ours_all = statistics.fmean(c["mse_mean"] for c in block)
        average = ["average", "", "", f"{ours_all:.3f}", f"{statistics.fmean(c['mae_mean'] for c in block):.3f}"]
        if compared:
            ours_cmp = statistics.fmean(c["mse_mean"] for c in compared)
            paper_cmp = statistics.fmean(c["paper_mse"] for c in compared)
            average += [f"{paper_cmp:.3f} (ours {ours_cmp:.3f} on these {len(compared)})", _relative(ours_cmp, paper_cmp), "", ""]
        else:
            average += ["–", "–", "", ""]
        rows.append(average)
        if fmt == "csv":
            lines += [",".join([variant, protocol, *(f'"{x}"' if "," in x else x for x in r)]) for r in rows]
        else:
            lines += [f"### {variant} (protocol: {protocol})", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines += ["", *_protocol_notes(block), ""]
    return "\n".join(lines).rstrip() + "\n"


def _protocol_notes(block: list[dict[str, Any]]) -> list[str]:
    """Markdown lines stating how the numbers of a table block were made: settings, seeds, splits, scaling."""
    notes = []
    tuned = [c for c in block if c.get("selected")]
    cfg = next((c["train_config"] for c in block if c.get("train_config")), None)
    if cfg:
        cfg = {**asdict(TrainConfig()), **cfg}  # a field an older version did not record: today's default
        lrs = {c["dataset"]: c["train_config"].get("lr", cfg["lr"]) for c in block if c.get("train_config")}
        settings = (
            "Adam (lr "
            + ", ".join(f"{d} {lr:g}" for d, lr in lrs.items())
            + ")"
            + (" in SAM" + (" (rho: see below)" if tuned else f" (rho {cfg['rho']:g})") if cfg["sam"] else " (no SAM)")
            + f", batch {cfg['batch_size']}, "
            f"≤ {cfg['epochs']} epochs, early stopping on validation MSE (patience {cfg['patience']}, best weights restored), "
            f"{cfg['lr_schedule']} (period {cfg['restart_period']}), {cfg['precision']}"
        )
        notes.append(f"Training: {settings}.")
    if tuned:
        settings = sorted({label for c in tuned for label in c.get("val_mse_by_setting", {})}, key=lambda x: (len(x), x))
        selection_seeds = sorted({s for c in tuned for s in c.get("selection_seeds", [])})
        notes.append(
            f"Selection: per dataset and horizon, the setting (in brackets after the seed count) with the lowest mean validation "
            f"MSE over seed(s) {', '.join(map(str, selection_seeds))} among {', '.join(settings)}; the test split plays no part in "
            "the choice. Its MSE/MAE are over all seeds run with it."
        )
    seeds = sorted({s for c in block for s in c.get("seeds", [])})
    if seeds:
        notes.append(f"Seeds: {', '.join(map(str, seeds))}; ± is the sample standard deviation over seeds (0 with one seed).")
    splits = {}
    for c in block:
        proto = c.get("data_protocol") or {}
        if proto.get("borders") and c["dataset"] not in splits:
            borders = ", ".join(f"{k} [{a}, {b})" for k, (a, b) in proto["borders"].items())
            fit = proto.get("scaler_fit_rows")
            windows = proto.get("windows", {}).get("test")
            splits[c["dataset"]] = f"{c['dataset']}: {borders}" + (f"; scaler fitted on rows [{fit[0]}, {fit[1]})" if fit else "")
            if windows:
                splits[c["dataset"]] += f"; {windows} test windows at H={c['horizon']}, all evaluated"
    if splits:
        notes.append("Splits (rows, input length included in val/test): " + " · ".join(splits.values()) + ".")
    return notes


def cells_as_json(cells: list[dict[str, Any]]) -> str:
    """The cells as one JSON list (the `--format json` output)."""
    keys = ("dataset", "horizon", "variant", "protocol", "n_seeds", "mse_mean", "mse_std", "mae_mean", "mae_std", "paper_mse", "selected")
    return json.dumps([{k: c[k] for k in keys} for c in cells])
