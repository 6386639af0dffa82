"""The run-file store of the benchmark grid and of sweeps: one JSON record per run, written atomically.

Layout: `OUT/<variant>/<dataset>/H<horizon>/seed<seed>.json`, where `<dataset>` is a benchmark's name, or a
CSV's name, `-` and the first 8 hex digits of the SHA-256 of its resolved path (two files both
called data.csv never share a directory); a stack's ensemble is stored beside its seeds' files.
A run whose file holds a complete record of the same full configuration (every training option, the
model options, the dataset's resolved path and content hash) is skipped; a record of another
configuration stops the grid before any training, with one line saying so; a corrupt, half-written
or mistyped file is reported, moved aside to `*.corrupt` and the run is done again — never silently
used. Records written by older versions lack some keys: those are compared with today's defaults,
or not at all for the dataset's identity, and stay readable for tables.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from samformer.data.benchmarks import is_benchmark_name
from samformer.data.loading import resolve_source, source_identity
from samformer.errors import DataError, SamformerError
from samformer.experiments.run import RunSpec, StackOutcome
from samformer.files import require_regular_file, write_json
from samformer.training.config import TrainConfig, train_config_problems

_TEXT_KEYS = ("dataset", "variant", "protocol")
_INTEGER_KEYS = ("horizon", "seq_len", "seed")
_METRIC_KEYS = ("test_mse", "test_mae", "val_mse")
REQUIRED_KEYS = (*_TEXT_KEYS, *_INTEGER_KEYS, *_METRIC_KEYS)
_DISPLAY_ONLY = {"progress"}  # training options that change nothing but what is printed

Job = tuple[RunSpec, Path]  # a run and the directory of run files it is stored under


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


def store_run(out: Path, spec: RunSpec, record: dict[str, Any]) -> Path:
    """Write the record of `spec` to its run file under `out` (atomically, creating its directories); returns the path."""
    path = run_path(out, spec)
    write_json(path, record, make_dirs=True)
    return path


def pending_jobs(grids: dict[Path, list[RunSpec]], data_dir: str | os.PathLike | None = None) -> list[Job]:
    """The runs of every directory of run files in `grids` not yet stored there (`pending`, its notes on stderr)."""
    jobs: list[Job] = []
    for out, specs in grids.items():
        jobs += [(spec, out) for spec in pending(specs, out, log=lambda m: print(m, file=sys.stderr), data_dir=data_dir)]
    return jobs


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
