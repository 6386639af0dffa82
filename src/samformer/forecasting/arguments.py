"""Checks and conversions of `Forecaster`'s arguments (constructor and methods): each refusal one line naming the
argument and what is accepted, before the value reaches pandas, torch or pathlib."""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samformer.checks import check_path
from samformer.data.channels import ChannelSpec
from samformer.errors import ConfigError, shown


def check_positive_int(name: str, value: object, optional: bool = False) -> int | None:
    """`value` if it is an integer >= 1 (or None when `optional`); else a `ConfigError` naming `name`."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        accepted = "a positive integer" + (" or None" if optional else "")
        raise ConfigError(f"{name} must be {accepted}, got {shown(value)}")
    return int(value)


def check_quantile_levels(quantiles: object) -> tuple[float, ...] | None:
    """The distinct levels of `quantiles` with 0.5 added, sorted; None stays None.

    Accepted: a sequence (list, tuple, array) of numbers strictly between 0 and 1 (empty: the median
    alone). A string such as '0.1,0.9', a bare number, or a level outside (0, 1) is a `ConfigError`.
    """
    if quantiles is None:
        return None
    accepted = "quantiles must be strictly increasing levels in (0, 1), e.g. quantiles=(0.1, 0.5, 0.9) (sorted and 0.5 added for you)"
    if isinstance(quantiles, str | bytes) or not isinstance(quantiles, Iterable):
        raise ConfigError(f"{accepted}; got {quantiles!r}, not a sequence of numbers")
    levels = list(quantiles)
    bad = [q for q in levels if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < q < 1]
    if bad:
        raise ConfigError(f"{accepted}; got {quantiles!r}, where {bad[0]!r} is not a number in (0, 1)")
    return tuple(sorted({float(q) for q in levels} | {0.5}))


def check_model_path(path: object, name: str = "path") -> Path:
    """`path` as a Path if it is a str or os.PathLike naming a directory (for `Forecaster.load`, `save` and
    `export_onnx`); else a `ConfigError` — pathlib's own TypeError does not say which argument was wrong."""
    return check_path(name, path)


def check_backtest_start(start: object) -> int | float | pd.Timestamp | None:
    """`backtest`'s `start` in the form `Forecaster._start_row` reads: None; a row number as an int (NumPy integers
    too, which pandas would otherwise read as nanoseconds since 1970); a fraction as a float; anything else parsed
    as a timestamp. A value that is none of these (a bool, 'soon', a list, NaT) is a `ConfigError` naming it."""
    accepted = "start must be None, a row number, a fraction in (0, 1) or a timestamp such as '2021-03-01 00:00'"
    if start is None:
        return None
    if isinstance(start, bool | np.bool_):
        raise ConfigError(f"{accepted}; got {shown(start)}")
    if isinstance(start, numbers.Integral):
        return int(start)
    if isinstance(start, numbers.Real):
        if not 0 < start < 1:
            raise ConfigError(f"{accepted}; got {shown(start)}, a number that is neither a whole row number nor in (0, 1)")
        return float(start)
    if not isinstance(start, str | datetime.date | np.datetime64 | pd.Timestamp):
        raise ConfigError(f"{accepted}; got {shown(start)} ({type(start).__name__})")
    try:
        timestamp = pd.Timestamp(start)
    except (ValueError, TypeError, OverflowError):
        raise ConfigError(f"{accepted}; got {shown(start)}, which does not parse as a date") from None
    if pd.isna(timestamp):
        raise ConfigError(f"{accepted}; got {shown(start)}, a missing time (NaT)")
    return timestamp


def check_model_options(model_options: object) -> dict[str, Any]:
    """`model_options` as a dict keyed by option names (None: empty); else a `ConfigError`. The option names and values
    are judged where they are used (the Forecaster's list of options, `SAMformerConfig`)."""
    if model_options is None:
        return {}
    if not isinstance(model_options, Mapping) or not all(isinstance(key, str) for key in model_options):
        raise ConfigError(f"model_options must be a dict of option names to values, e.g. {{'value_dim': 16}}; got {shown(model_options)}")
    return dict(model_options)


def check_column_list(name: str, columns: object) -> list[Any] | None:
    """`columns` (a list, tuple or other collection of column labels, or None) as a list; a bare label is a
    `ConfigError` that shows how to write it as a list."""
    if columns is None:
        return None
    if isinstance(columns, str | bytes | numbers.Number) or not isinstance(columns, Iterable) or isinstance(columns, Mapping):
        raise ConfigError(f"{name} must be a list of column names, got {shown(columns)}; write [{shown(columns)}]")
    return list(columns)


def count_rows(size: int | float, n: int, name: str) -> int:
    """A row count given as an int, or as a fraction in (0, 1) of `n` rows."""
    if isinstance(size, bool) or not isinstance(size, int | float):
        raise ValueError(f"{name} must be a row count or a fraction in (0, 1), got {size!r}")
    if isinstance(size, float):
        if not 0 < size < 1:
            raise ValueError(f"{name} as a fraction must lie in (0, 1), got {size}")
        return math.ceil(size * n)
    if size < 1:
        raise ValueError(f"{name} must be at least 1 row, got {size}")
    return size


def channel_spec(
    target: str | list[str] | None, past_covariates: list[str] | None, future_covariates: list[str] | None, calendar: bool
) -> ChannelSpec:
    """`Forecaster.fit`'s target and covariate arguments as a `ChannelSpec` (see `fit` for the rules)."""
    past_covariates = check_column_list("past_covariates", past_covariates)
    future_covariates = check_column_list("future_covariates", future_covariates)
    targets = () if target is None else tuple(target) if isinstance(target, list | tuple) else (target,)  # 0 is a label too
    past, future = tuple(map(str, past_covariates or ())), tuple(map(str, future_covariates or ()))
    if not targets:
        return ChannelSpec("M", (), past, future, calendar)
    mode = "MS" if past_covariates is None else "S"
    return ChannelSpec(mode, tuple(map(str, targets)), past, future, calendar)
