"""Loading a series for training, in one downward path: locate -> read -> validate -> split.

`load_dataset` is the only place that turns a benchmark name or a CSV path into `SplitData`:

1. `resolve_source`: a benchmark name becomes its spec and the file found for it (`samformer.data.benchmarks`,
   downloading if allowed); a path is the user's own series (70/10/20 splits, named after the file).
2. `read_source`: the CSV is read and validated (`samformer.data.series.read_series_csv`); a file under a
   benchmark's name is checked against the published one (`samformer.data.benchmarks.check_benchmark_file`).
3. channel roles, if any, are applied to that frame (`samformer.data.channels.ChannelSpec.apply`).
4. `samformer.data.series.split_frame` cuts and scales it; the result records the file's identity
   (resolved path and content SHA-256) for the run files.

The modules below this one never import it, nor each other upwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from samformer.checks import check_bool, check_int, check_path
from samformer.data.benchmarks import BenchmarkSpec, check_benchmark_file, content_sha256, get_benchmark, is_benchmark_name, locate
from samformer.data.channels import ChannelSpec
from samformer.data.series import SplitData, SplitKind, read_series_csv, split_frame
from samformer.errors import ConfigError, DataError, quoted


@dataclass(frozen=True)
class DataSource:
    """Where a series comes from and which border rule cuts it."""

    name: str  # the benchmark's name, or the file's name without .csv/.gz
    path: Path  # as found or given (messages quote it so)
    split: SplitKind
    benchmark: BenchmarkSpec | None  # None for a user's CSV given by path


def resolve_source(source: str | os.PathLike, data_dir: str | os.PathLike | None = None, download: bool = True) -> DataSource:
    """The file behind a benchmark name (found or downloaded) or a CSV path, with its split rule."""
    if is_benchmark_name(source):
        spec = get_benchmark(str(source))
        return DataSource(spec.name, locate(spec.name, data_dir, download), spec.split, spec)
    path = Path(source)
    if path.suffix.lower() not in (".csv", ".gz") and not path.exists():
        get_benchmark(str(source))  # raises the "unknown dataset" error with the list of names
    return DataSource(path.stem.removesuffix(".csv"), path, "ratio", None)


def read_source(source: DataSource) -> tuple[pd.DataFrame, dict[str, str]]:
    """The validated frame of `source` and its identity (`source_identity`).

    A benchmark's file must be the published one; it is used as published, row for row (weather
    repeats one timestamp and skips a few), because the literature's splits are defined on rows.
    """
    frame = read_series_csv(source.path, check_time=source.benchmark is None)
    identity = source_identity(source)
    if source.benchmark is not None:
        check_benchmark_file(source.benchmark, source.path, [str(c) for c in frame.columns], len(frame), identity["sha256"])
    return frame, identity


def source_identity(source: DataSource) -> dict[str, str]:
    """What identifies the data of a run: the resolved path and the SHA-256 of the content."""
    return {"path": str(source.path.resolve()), "sha256": content_sha256(source.path)}


def load_dataset(
    source: str | os.PathLike,
    seq_len: int = 512,
    horizon: int = 96,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    channels: ChannelSpec | None = None,
) -> SplitData:
    """Load a benchmark by name (see `samformer.data.benchmarks`) or a CSV by path, split and scaled.

    `channels` picks targets and covariates (`ChannelSpec`); without it every column is forecast. Each
    argument of the wrong type or range is a `ConfigError` naming it, before any file is touched.
    """
    check_path("source", source)
    seq_len, horizon = check_int("seq_len", seq_len), check_int("horizon", horizon)
    if data_dir is not None:
        check_path("data_dir", data_dir)
    check_bool("download", download)
    if channels is not None and not isinstance(channels, ChannelSpec):
        raise ConfigError(f"channels must be a ChannelSpec or None, got {channels!r}; e.g. ChannelSpec(mode='MS', targets=('OT',))")
    resolved = resolve_source(source, data_dir, download)
    frame, identity = read_source(resolved)
    roles = None
    if channels is not None:
        frame, roles = channels.apply(frame)
    with np.errstate(over="ignore"):  # an overflow to float32 is reported below, as a DataError
        data = split_frame(frame, seq_len, horizon, resolved.split, resolved.name)
    check_finite_after_scaling(data)
    data.source = identity
    if roles is not None:
        data.roles = roles
    return data


def check_finite_after_scaling(data: SplitData) -> None:
    """Refuse (DataError) columns whose standardised values leave float32's range (e.g. 1e300 beside small values)."""
    bad = torch.zeros(data.n_channels, dtype=torch.bool)
    for split in (data.train, data.val, data.test):  # each (T, D); a Forecaster's data have no test split
        if split is not None:
            bad |= ~torch.isfinite(split).all(dim=0)
    if bad.any():
        names = ", ".join(quoted(name) for name, is_bad in zip(data.columns, bad.tolist(), strict=True) if is_bad)
        raise DataError(
            f"{quoted(data.name)}: column(s) {names} become non-finite once standardised (values far outside the training "
            "rows' range, beyond float32); rescale or clip them first"
        )


def load_dataset_with_roles(
    source: str | os.PathLike,
    spec: ChannelSpec,
    seq_len: int = 512,
    horizon: int = 96,
    data_dir: str | os.PathLike | None = None,
) -> SplitData:
    """Like `load_dataset`, with the columns and channel roles of `spec`."""
    return load_dataset(source, seq_len, horizon, data_dir, channels=spec)
