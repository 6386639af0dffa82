"""Forecasting with a fitted network: the frame to forecast from, the known-future values, the run, and the output frame.

Every function takes the fitted `FrameSchema` (and a `Predictor` or network); none keeps state. The input
windows come from `samformer.forecasting.windowing`, the conversion back to original units from the
`Predictor`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from samformer.data.frames import check_missing, future_index, localize, to_wide_zoned
from samformer.errors import DataError
from samformer.forecasting.persistence import bare_network
from samformer.forecasting.predictor import Predictor
from samformer.forecasting.schema import FrameSchema
from samformer.forecasting.stand_ins import overlay
from samformer.forecasting.windowing import origin_inputs, scaled_windows
from samformer.nn.model import SAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import resolve_device

NO_HISTORY = "this forecaster was loaded from disk and keeps no data: pass the recent history, predict(df)"


def inference_frame(schema: FrameSchema, df: pd.DataFrame, source: str) -> pd.DataFrame:
    """`df` on the fitted grid, with the fitted channels in the fitted order; refuses other channels or too few rows."""
    ignored = list(schema.channels.ignored)
    frame, _, _, _ = to_wide_zoned(df, schema.freq, source, drop=ignored, check_tz=True, fitted_tz=schema.tz)
    needed = schema.channels.user_columns
    missing = [c for c in needed if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in needed and c not in ignored]
    if missing or extra:
        raise DataError(
            f"{source} has channels {list(map(str, frame.columns))}, the model was fitted on {needed}"
            + (f"; missing: {missing}" if missing else "")
            + (f"; unknown: {extra}" if extra else "")
        )
    frame = frame[needed]
    if len(frame) < schema.seq_len:
        raise DataError(f"{source} has {len(frame)} time steps, fewer than seq_len={schema.seq_len}; give at least {schema.seq_len}")
    return frame


def future_values(schema: FrameSchema, future_df: pd.DataFrame | None, dates: pd.DatetimeIndex) -> np.ndarray:
    """The known-future covariates over `dates` (H, D_future), from `future_df`; refuses gaps."""
    columns = list(schema.channels.future)
    names = ", ".join(columns)
    if future_df is None:
        raise DataError(
            f"this model uses known-future covariates ({names}): pass their values for the next {schema.horizon} steps, "
            f"predict(df, future_df=...) (CLI: --future-csv)"
        )
    future, _, _, _ = to_wide_zoned(future_df, schema.freq, "future_df", check_tz=True, fitted_tz=schema.tz)
    absent = [c for c in columns if c not in future.columns]
    if absent:
        raise DataError(f"future_df has no column {', '.join(absent)}; it needs the known-future covariates {names}")
    values = future.reindex(dates)[columns]
    missing = values.isna()
    if missing.to_numpy().any():
        column = missing.any().idxmax()
        first = values.index[missing[column].to_numpy()][0]
        raise DataError(
            f"known-future covariate {column!r} is missing over the horizon (first at {first}); future_df must give "
            f"{names} for every step from {dates[0]} to {dates[-1]}"
        )
    return values.to_numpy()


def run_predictor(predictor: Predictor, x: torch.Tensor, mask: torch.Tensor | None, device: str) -> np.ndarray:
    """`predictor.forecast_scaled` of standardised inputs (N, D, L) on `device`, as a float64 array (N, H, D_targets[, Q])."""
    target = resolve_device(device)
    predictor = predictor.to(target).eval()
    with torch.inference_mode():
        y = predictor.forecast_scaled(x.to(target), None if mask is None else mask.to(target))
    return y.cpu().numpy()


def predict_next(
    predictor: Predictor, schema: FrameSchema, frame: pd.DataFrame, future_df: pd.DataFrame | None, device: str
) -> pd.DataFrame:
    """The forecast of the `horizon` steps after the end of `frame` (the fitted channels on the fitted grid)."""
    L, H = schema.seq_len, schema.horizon
    dates = future_index(frame.index[-1], schema.freq, H)
    block = frame.iloc[-L:].reindex(frame.index[-L:].append(dates))  # (L+H, D_user), NaN ahead
    if schema.channels.future:
        block.loc[dates, list(schema.channels.future)] = future_values(schema, future_df, dates)
    elif future_df is not None:
        raise DataError("this model was fitted without future_covariates, so future_df is not used; leave it out")
    values = schema.channels.model_frame(block).to_numpy()  # (L+H, D)
    # The rows after L hold only known-future values, never missing, so this checks exactly the L rows of inputs.
    check_missing(values, list(schema.channels.columns), L, f"the last {L} rows")
    x, mask = origin_inputs(schema, values)  # (1, D, L)
    pred = run_predictor(predictor, x, mask, device)  # (1, H, D_targets[, Q])
    history = frame[list(schema.channels.targets)].to_numpy()  # (T, D_targets): a stand-in reads all of it
    pred = overlay(schema, pred, history, np.array([len(frame)]))[0]  # (H, D_targets[, Q])
    return forecast_frame(schema, pred, localize(dates, schema.tz, schema.freq))


def forecast_frame(schema: FrameSchema, pred: np.ndarray, index: pd.DatetimeIndex, long: bool | None = None) -> pd.DataFrame:
    """One forecast (H, D_targets[, Q]) as a wide frame, or long (`unique_id, ds, y`) when fitted on long input."""
    long = schema.layout == "long" if long is None else long
    targets, quantiles = list(schema.channels.targets), schema.quantiles
    if quantiles is None:
        wide = pd.DataFrame(pred, index=index, columns=targets)
    else:
        parts = {c: pred[:, j, quantiles.index(0.5)] for j, c in enumerate(targets)}
        for j, c in enumerate(targets):
            parts.update({f"{c}_q{q:g}": pred[:, j, k] for k, q in enumerate(quantiles)})
        wide = pd.DataFrame(parts, index=index)
    if not long:
        return wide
    out = []
    for c in targets:
        cols = [c] + ([f"{c}_q{q:g}" for q in quantiles] if quantiles else [])
        part = wide[cols].rename(columns=lambda name, c=c: "y" + name[len(c) :])
        out.append(part.assign(unique_id=c, ds=part.index))
    long_frame = pd.concat(out, ignore_index=True)
    return long_frame[["unique_id", "ds", *[k for k in long_frame.columns if k.startswith("y")]]]


def attending_members(net: nn.Module) -> list[SAMformer]:
    """The networks of a fitted forecaster's `net_` (one, or an ensemble's k); refuses networks without attention."""
    bare = bare_network(net)
    members = [bare.model(j) for j in range(len(bare))] if isinstance(bare, StackedSAMformer) else [bare]
    if members[0].attention is None:
        raise DataError("this model has no attention block (model_options attention=False)")
    return members


def attention_matrix(members: list[SAMformer], schema: FrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """The D×D channel attention of `members` (one network, or an ensemble's) averaged over every window of `frame`."""
    values = schema.channels.model_frame(frame).to_numpy()  # (T, D)
    future = bool(schema.channels.roles().future)
    if future and len(values) < schema.seq_len + schema.horizon:  # known-future inputs end at the horizon's end
        raise DataError(
            f"this model has known-future inputs: pass a frame of at least seq_len + horizon = {schema.seq_len + schema.horizon} rows"
        )
    windows = scaled_windows(schema, values, schema.horizon if future else 0)  # without them: every window of L rows
    x, _ = windows.batch(slice(None))  # (N, D, L)
    masks = windows.batch_mask(slice(None))
    mask = None if masks is None else masks[0]
    with torch.inference_mode():
        attns = [member.forward_channels_first(x, return_attention=True, mask=mask)[1].mean(dim=0) for member in members]  # (D, D) each
    attn = torch.stack(attns).mean(dim=0)  # (k, D, D) -> (D, D)
    columns = list(schema.channels.columns)
    return pd.DataFrame(attn.numpy(), index=columns, columns=columns)
