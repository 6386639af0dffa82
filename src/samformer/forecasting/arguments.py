"""Checks and conversions of `Forecaster`'s arguments: each refusal one line naming the argument and what is accepted."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from samformer.data.channels import ChannelSpec
from samformer.errors import ConfigError


def check_positive_int(name: str, value: object, optional: bool = False) -> int | None:
    """`value` if it is an integer >= 1 (or None when `optional`); else a `ConfigError` naming `name`."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        accepted = "a positive integer" + (" or None" if optional else "")
        raise ConfigError(f"{name} must be {accepted}, got {value!r}")
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
    for name, value in (("past_covariates", past_covariates), ("future_covariates", future_covariates)):
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list of column names, got the string {value!r}; write [{value!r}]")
    targets = () if target is None else tuple(target) if isinstance(target, list | tuple) else (target,)  # 0 is a label too
    past, future = tuple(map(str, past_covariates or ())), tuple(map(str, future_covariates or ()))
    if not targets:
        return ChannelSpec("M", (), past, future, calendar)
    mode = "MS" if past_covariates is None else "S"
    return ChannelSpec(mode, tuple(map(str, targets)), past, future, calendar)
