"""The Forecaster's safe default: a statistical forecaster stands in for SAMformer on a channel where validation
prefers it.

`choose` compares, on the validation rows, SAMformer's point forecasts of each target with the candidates of
`samformer.forecasting.statistical` (naive, seasonal naive, and ETS and Theta with the `stats` extra) and keeps
the one with the lower MSE: the result maps each target that changed to its stand-in's name. `replace_with` (on
the validation and calibration forecasts) and `overlay` (in `predict` and `backtest`; `window_stand_ins` in
`forecast_windows`) then put the stand-ins' forecasts in place of the network's. A stand-in forecasts a point;
with quantiles every level starts at it, and the calibration fitted on these same combined validation forecasts
sets the band, as for an ensemble's mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from samformer.forecasting.schema import FrameSchema
from samformer.forecasting.statistical import FITTED_CANDIDATES, candidate_forecasts, choose_forecasters, forecast_channel
from samformer.nn.quantile import apply_offsets

StandIns = Mapping[str, str]  # target name -> the name of the forecaster standing in for SAMformer there


def choose(
    point: np.ndarray,
    actuals: np.ndarray,
    targets: list[str],
    target_values: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    season: int | None,
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The stand-ins validation prefers, and every candidate's validation forecasts.

    Args:
        point: SAMformer's validation point forecasts (N, H, D_targets), original units.
        actuals: what happened (N, H, D_targets).
        targets: the D_targets names.
        target_values: the targets' series (T, D_targets); candidates fitted on rows before `fit_end`.
        origins: the first forecast row of each validation window (N,).
    """
    candidates = candidate_forecasts(target_values, fit_end, origins, point.shape[1], season, every=False)
    chosen = choose_forecasters(point, candidates, actuals)
    stand_ins = {target: name for target, name in zip(targets, chosen, strict=True) if name != "samformer"}
    for name in {n for n in stand_ins.values() if n in FITTED_CANDIDATES}:  # scored at some origins: now at all
        candidates[name] = candidate_forecasts(target_values, fit_end, origins, point.shape[1], season, names=(name,))[name]
    return stand_ins, candidates


def replace_with(forecasts: np.ndarray, stand_ins: StandIns, targets: list[str], replacements: np.ndarray) -> np.ndarray:
    """`forecasts` (N, H, D_targets[, Q]) with each stand-in channel's values replaced by `replacements` (N, H, D_targets).

    A quantile forecast gets the point at every level (the calibration widens it afterwards).
    """
    out = forecasts.copy()
    for target in stand_ins:
        d = targets.index(target)
        given = ~np.isnan(replacements[:, :, d])  # (N, H): where the stand-in could not forecast, the network's stays
        if out.ndim == 4:
            out[:, :, d][given] = replacements[:, :, d][given][:, None]
        else:
            out[:, :, d][given] = replacements[:, :, d][given]
    return out


def forecasts_at(
    stand_ins: StandIns, targets: list[str], target_values: np.ndarray, origins: np.ndarray, horizon: int, season: int | None
) -> np.ndarray:
    """The stand-ins' forecasts (N, H, D_targets) at `origins` of `target_values` (T, D_targets); NaN on other channels.

    Naive and seasonal naive read the rows before each origin; ETS and Theta are fitted on the rows before the
    first origin and applied at each (as on the validation rows).
    """
    out = np.full((len(origins), horizon, len(targets)), np.nan)
    for target, name in stand_ins.items():
        d = targets.index(target)
        if name in ("naive", "seasonal_naive") or len(origins) > 1:
            column = target_values[:, d : d + 1]  # (T, 1)
            out[:, :, d] = _candidate(name, column, int(origins[0]), origins, horizon, season)[:, :, 0]
        else:  # one origin (`predict`): refitted on every row before it
            out[0, :, d] = forecast_channel(name, target_values[: origins[0], d], horizon, season)
    return out


def _candidate(name: str, column: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
    return candidate_forecasts(column, fit_end, origins, horizon, season, names=(name,))[name]


def overlay(schema: FrameSchema, pred: np.ndarray, target_values: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """The network's forecasts `pred` (N, H, D_targets[, Q]) at `origins` of `target_values` (T, D_targets), with each
    stand-in channel's forecast in place; its quantiles are the point moved by the fitted calibration."""
    if not schema.stand_ins:
        return pred
    targets = list(schema.channels.targets)
    points = forecasts_at(schema.stand_ins, targets, target_values, origins, schema.horizon, schema.season_steps)  # (N, H, D_t)
    if schema.quantiles is None:
        return replace_with(pred, schema.stand_ins, targets, points)
    bands = np.repeat(points[..., None], len(schema.quantiles), axis=-1)  # (N, H, D_t) -> (N, H, D_t, Q)
    if schema.interval_offsets is not None:
        floor = None if schema.interval_floor is None else torch.from_numpy(schema.interval_floor)
        moved = apply_offsets(torch.from_numpy(bands), torch.from_numpy(schema.interval_offsets), schema.quantiles.index(0.5), floor)
        bands = moved.numpy()
    out = pred.copy()
    for target in schema.stand_ins:
        d = targets.index(target)
        given = ~np.isnan(points[:, :, d])  # (N, H): where the stand-in could not forecast, the network's stays
        out[:, :, d][given] = bands[:, :, d][given]
    return out


def window_stand_ins(schema: FrameSchema, pred: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """`overlay` for forecasts `pred` (N, H, D_targets[, Q]) of separate look-back windows (N, L, D): each window is
    its stand-ins' whole history."""
    if not schema.stand_ins:
        return pred
    targets = np.asarray(windows, dtype=np.float64)[:, :, schema.channels.target_indices]  # (N, L, D_targets)
    origin = np.array([schema.seq_len])
    return np.concatenate([overlay(schema, pred[i : i + 1], targets[i], origin) for i in range(len(pred))])
