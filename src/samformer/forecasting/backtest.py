"""Rolling-origin backtests of a fitted forecaster (no refitting): the `Backtest` result, its origins and its metrics.

The comparison with the naive baselines (`compare_with_baselines`) is shared with fitting, which scores the
validation rows the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from samformer.data.frames import localize, naive_timestamp
from samformer.errors import DataError
from samformer.forecasting.arguments import check_backtest_start
from samformer.forecasting.baselines import baseline_forecasts, skill_table
from samformer.forecasting.inference import forecast_frame, run_predictor
from samformer.forecasting.predictor import Predictor
from samformer.forecasting.schema import FrameSchema
from samformer.forecasting.stand_ins import overlay
from samformer.forecasting.windowing import scaled_windows
from samformer.training.config import TrainConfig


@dataclass
class Backtest:
    """Rolling-origin forecasts of a fitted model and their errors (original units, observed values only).

    Attributes:
        forecasts: index (cutoff, date) — cutoff is the last input timestamp; columns as `predict`'s.
        actuals: the observed values on the same index, one column per channel (NaN where missing).
        metrics: index (channel, step), step 1..horizon; columns mse and mae averaged over the cutoffs.
        comparison: the model against the naive baselines (`samformer.forecasting.baselines.skill_table`): index the
            channels then `overall`; columns mse, mae, naive_mse, naive_mae, seasonal_naive_mse,
            seasonal_naive_mae (when the series has a season), best_baseline, skill.
    """

    forecasts: pd.DataFrame
    actuals: pd.DataFrame
    metrics: pd.DataFrame
    comparison: pd.DataFrame | None = None

    def summary(self) -> pd.DataFrame:
        """Per channel and `overall`: the model's MSE and MAE over all steps next to the baselines', and its skill.

        skill = 1 − MSE / (MSE of the better of naive and seasonal naive): > 0 when the model beats both.
        `forecaster` names what forecast each channel: samformer, or the statistical stand-in fit chose there.
        Channel rows are in original units, `overall` averages each channel's errors divided by its
        standard deviation (MSE by its square). Without a comparison: MSE and MAE per channel only.
        """
        if self.comparison is None:
            return self.metrics.groupby(level="channel", sort=False).mean()
        return self.comparison


def start_row(start: int | float | str | pd.Timestamp | None, frame: pd.DataFrame, schema: FrameSchema) -> int:
    """The row of `frame` that `start` names (a row number, negative from the end, a fraction, or a timestamp); default seq_len."""
    if start is None:
        return schema.seq_len
    if isinstance(start, bool):
        raise ValueError(f"start must be a row number, a fraction or a timestamp, got {start!r}")
    if isinstance(start, int):
        return start if start >= 0 else len(frame) + start
    if isinstance(start, float):
        if not 0 < start < 1:
            raise ValueError(f"a fractional start must lie in (0, 1), got {start}")
        return int(start * len(frame))
    return int(frame.index.searchsorted(naive_timestamp(pd.Timestamp(start), schema.freq)))


def check_stride(stride: object) -> int:
    """`stride` if it is a positive integer; else a one-line `ValueError`."""
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    return stride


def forecast_origins(frame: pd.DataFrame, schema: FrameSchema, start: int | float | str | pd.Timestamp | None, stride: int) -> np.ndarray:
    """The rows (first forecast step) of every origin from `start` on, `stride` apart, with `horizon` rows after them."""
    L, H, n = schema.seq_len, schema.horizon, len(frame)
    start = check_backtest_start(start)
    fitted = fitted_rows(frame, schema)
    if start is None and 0 < fitted <= n - H:  # the frame holds the rows fitted on: score only what came after
        first = max(fitted, L)
    else:
        first = max(start_row(start, frame, schema), L)
        warn_if_in_sample(first, fitted, frame)
    origins = np.arange(first, n - H + 1, stride)
    if len(origins) == 0:
        raise DataError(f"no forecast origin between row {first} and row {n - H} (the last with {H} steps after it); start earlier")
    return origins


def fitted_rows(frame: pd.DataFrame, schema: FrameSchema) -> int:
    """How many leading rows of `frame` the model was fitted on (validation rows included); 0 if unknown or none."""
    if schema.fitted_until is None:
        return 0
    return int(frame.index.searchsorted(pd.Timestamp(schema.fitted_until), side="right"))


def warn_if_in_sample(first: int, fitted: int, frame: pd.DataFrame) -> None:
    """One line when backtest origins fall on rows the model was fitted on: those errors are in-sample."""
    if first < fitted:
        warnings.warn(
            f"backtest origins from {frame.index[first]} to {frame.index[fitted - 1]} forecast rows the model was fitted on "
            f"(through {frame.index[fitted - 1]}): their errors are in-sample; start after them for out-of-sample scores",
            UserWarning,
            stacklevel=4,  # this function, forecast_origins, Forecaster.backtest, its caller
        )


def run_backtest(predictor: Predictor, schema: FrameSchema, frame: pd.DataFrame, origins: np.ndarray, config: TrainConfig) -> Backtest:
    """Forecasts from every origin of `frame` (the fitted channels on the fitted grid) and their errors."""
    L, H = schema.seq_len, schema.horizon
    values = schema.channels.model_frame(frame).to_numpy()  # (T, D)
    windows = scaled_windows(schema, values)
    preds = []
    batches = torch.from_numpy(origins - L).split(config.eval_batch_size)
    for idx in tqdm(batches, desc="backtest", unit="batch", disable=not config.progress, leave=False):
        x, _ = windows.batch(idx)  # (B, D, L)
        masks = windows.batch_mask(idx)
        preds.append(run_predictor(predictor, x, None if masks is None else masks[0], config.device))
    pred = np.concatenate(preds)  # (N, H, D_targets[, Q])
    pred = overlay(schema, pred, values[:, schema.channels.target_indices], origins)  # stand-in channels, if any
    targets = list(schema.channels.targets)
    actual = np.stack([values[o : o + H, schema.channels.target_indices] for o in origins])  # (N, H, D_targets)
    zoned = localize(frame.index, schema.tz, schema.freq)
    dates = [zoned[o : o + H] for o in origins]
    keys = {"keys": zoned[origins - 1], "names": ["cutoff", "date"]}  # the cutoff is the last input timestamp
    forecasts = pd.concat([forecast_frame(schema, p, d, long=False) for p, d in zip(pred, dates, strict=True)], **keys)
    actuals = pd.concat([pd.DataFrame(a, index=d, columns=targets) for a, d in zip(actual, dates, strict=True)], **keys)
    point = pred if schema.quantiles is None else pred[..., schema.quantiles.index(0.5)]
    comparison = compare_with_baselines(schema, point, actual, values, origins)
    return Backtest(forecasts, actuals, step_metrics(point, actual, targets), comparison)


def step_metrics(point: np.ndarray, actual: np.ndarray, targets: list[str]) -> pd.DataFrame:
    """MSE and MAE per (channel, step) of point forecasts (N, H, D_targets), over the observed actuals."""
    err = point - actual  # (N, H, D_targets), NaN where the actual is missing
    with warnings.catch_warnings():  # a (step, channel) never observed gives NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mse, mae = np.nanmean(err**2, axis=0), np.nanmean(np.abs(err), axis=0)  # (H, D_targets)
    steps = range(1, point.shape[1] + 1)
    return pd.DataFrame(
        {"mse": mse.T.ravel(), "mae": mae.T.ravel()}, index=pd.MultiIndex.from_product([targets, steps], names=["channel", "step"])
    )


def compare_with_baselines(
    schema: FrameSchema, point: np.ndarray, actuals: np.ndarray, values: np.ndarray, origins: np.ndarray
) -> pd.DataFrame:
    """`skill_table` of point forecasts (N, H, D_targets) made at `origins` of `values` (T, D) against the naive baselines."""
    targets = schema.channels.target_indices
    baselines = baseline_forecasts(values[:, targets], origins, schema.horizon, schema.season_steps)
    table = skill_table({"model": point, **baselines}, actuals, list(schema.channels.targets), schema.scaler.std[targets])
    used = [schema.stand_ins.get(target, "samformer") for target in schema.channels.targets]
    table["forecaster"] = [*used, "samformer" if not schema.stand_ins else "mixed"]  # what forecast each channel
    return table
