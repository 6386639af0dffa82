"""Naive baselines and the skill of a forecast against them.

Two forecasts every model should beat: **naive** repeats the last observed value over the horizon,
**seasonal naive** repeats the last observed season (the value one season before each future step).
The season of a series comes from its frequency (`season_length`) unless the user gives it.
`skill_table` puts a model's errors next to the baselines' and scores the model by
skill = 1 − MSE / (MSE of the better baseline): positive when the model beats both, 0 when it ties
the better one, negative when it loses.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

BASELINES = ("naive", "seasonal_naive")
_DAY = pd.Timedelta("1D")
_MAX_SEASON = 512  # a longer cycle (minutely data: 1440 per day) falls back to the next shorter one


def season_length(freq: str) -> int | None:
    """The usual seasonal period of a frequency, in steps; None when there is none (yearly data).

    Sub-daily data: one day (48 half-hours, 24 hours, 96 quarter-hours; an hour for minutely data);
    daily: a week (7); business days: 5; weekly, monthly, quarterly: a year (52, 12, 4).
    """
    offset = to_offset(freq)
    if isinstance(offset, pd.offsets.Day):  # a calendar day (not a Tick in pandas 3)
        return 7 if offset.n == 1 else None
    if isinstance(offset, pd.offsets.Tick):
        step = pd.Timedelta(offset)
        for cycle in (_DAY, pd.Timedelta("1h"), pd.Timedelta("1min")):
            per_cycle = cycle / step
            if step < cycle and float(per_cycle).is_integer() and per_cycle <= _MAX_SEASON:
                return int(per_cycle)
        return None
    if isinstance(offset, pd.offsets.BusinessDay) and offset.n == 1:
        return 5
    steps = pd.date_range("2001-01-01", "2008-12-31", freq=offset)  # 8 years of this calendar offset
    per_year = round(len(steps) / 8)
    return per_year if per_year >= 2 else None


def _filled(values: np.ndarray) -> np.ndarray:
    """`values` (T, D) with each missing value replaced by the last observed one before it (NaN if none)."""
    return pd.DataFrame(values).ffill().to_numpy()


def naive_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value before each origin, repeated: (T, D) series -> (N, H, D) forecasts.

    `origins` are the first forecast rows; row `origin - 1` (or the last observed row before it) is repeated.
    """
    last = _filled(values)[origins - 1]  # (N, D)
    return np.repeat(last[:, None, :], horizon, axis=1)


def seasonal_naive_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last observed season before each origin, repeated: step h gets row origin − season + (h − 1) mod season.

    An origin with fewer than `season` rows before it has no full season to repeat: it gets the naive forecast.
    """
    filled = _filled(values)
    steps = np.arange(horizon) % season - season  # (H,), offsets from the origin, all negative
    rows = origins[:, None] + steps[None, :]  # (N, H)
    seasonal = filled[np.clip(rows, 0, None)]  # (N, H, D)
    return np.where((rows < 0)[..., None], filled[origins - 1][:, None, :], seasonal)


def baseline_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int | None) -> dict[str, np.ndarray]:
    """Both baselines' forecasts (N, H, D); seasonal naive is left out when there is no season."""
    forecasts = {"naive": naive_forecasts(values, origins, horizon)}
    if season is not None and season > 1:
        forecasts["seasonal_naive"] = seasonal_naive_forecasts(values, origins, horizon, season)
    return forecasts


def skill_table(
    forecasts: dict[str, np.ndarray], actuals: np.ndarray, channels: list[str], scale: np.ndarray | None = None
) -> pd.DataFrame:
    """MSE and MAE of each forecast (model first) per channel and overall, and the model's skill.

    Args:
        forecasts: name -> point forecasts (N, H, D); the first entry is the model, the others baselines.
        actuals: what happened (N, H, D), NaN where unobserved (left out of every error).
        channels: the D channel names.
        scale: per-channel standard deviations (D,); the `overall` row averages errors divided by them
            (MSE by their square), so channels in large units do not dominate. None: plain means.

    Returns:
        index: the channels, then `overall`; columns `<name>_mse`, `<name>_mae` for each forecast
        (`mse`, `mae` for the model), `best_baseline` and `skill` = 1 − mse / best baseline mse.
    """
    scale = np.ones(len(channels)) if scale is None else np.asarray(scale, dtype=np.float64)
    common = ~np.isnan(actuals)  # (N, H, D): rows every forecast covers, so all are scored on the same values
    for pred in forecasts.values():
        common &= ~np.isnan(pred)
    columns: dict[str, list[float]] = {}
    with warnings.catch_warnings():  # a channel never observed gives NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, (name, pred) in enumerate(forecasts.items()):
            err = np.where(common, pred - actuals, np.nan)
            mse, mae = np.nanmean(err**2, axis=(0, 1)), np.nanmean(np.abs(err), axis=(0, 1))  # (D,)
            prefix = "" if k == 0 else f"{name}_"
            columns[f"{prefix}mse"] = [*mse, float(np.nanmean(mse / scale**2))]
            columns[f"{prefix}mae"] = [*mae, float(np.nanmean(mae / scale))]
    table = pd.DataFrame(columns, index=pd.Index([*channels, "overall"], name="channel"))
    baseline_mse = table[[f"{name}_mse" for name in list(forecasts)[1:]]]
    table["best_baseline"] = baseline_mse.fillna(np.inf).idxmin(axis=1).str.removesuffix("_mse")
    table["skill"] = 1 - table["mse"] / baseline_mse.min(axis=1)
    return table
