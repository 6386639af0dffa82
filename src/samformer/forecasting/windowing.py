"""The one way a `Forecaster` turns values in original units into the network's inputs: standardise, then window.

`standardize` applies the fitted scaler and masks missing values; `scaled_windows` cuts the result with
`samformer.data.series.Windows` (input rows [t, t+L), known-future channels up to the horizon's end,
targets the next H rows). Fitting (`training_split`), prediction (`origin_inputs`), the backtest and the
attention matrix all go through these two functions, so every path feeds the network the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from samformer.data.loading import check_finite_after_scaling
from samformer.data.series import SplitData, StandardScaler, Windows
from samformer.forecasting.schema import FrameSchema


def standardize(scaler: StandardScaler, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Standardised float32 series (T, D) with missing values set to 0, and its observed mask (None if complete)."""
    observed = ~np.isnan(values)
    scaled = np.ascontiguousarray(np.where(observed, scaler.transform(values), 0.0), dtype=np.float32)
    return torch.from_numpy(scaled), None if observed.all() else torch.from_numpy(observed)


def scaled_windows(schema: FrameSchema, values: np.ndarray, horizon: int | None = None) -> Windows:
    """Every window of `values` (T, D, the model's channels in original units), standardised.

    `horizon` defaults to the schema's; 0 gives every input window of L rows, with no target rows after it
    (only for models without known-future inputs, whose windows need the horizon's rows).
    """
    series, mask = standardize(schema.scaler, values)
    return Windows(series, schema.seq_len, schema.horizon if horizon is None else horizon, mask, schema.channels.roles())


def origin_inputs(schema: FrameSchema, block: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The standardised input (1, D, L) of a forecast from the L+H rows `block` (L of history, then the horizon's).

    The horizon's rows are read for known-future channels only. The mask is None when every input is
    observed, as `standardize` gives for a complete window (the network's unmasked path).
    """
    windows = scaled_windows(schema, block)
    x, _ = windows.batch(slice(None))  # (L+H, D) -> (1, D, L)
    masks = windows.batch_mask(slice(None))
    return x, None if masks is None or bool(masks[0].all()) else masks[0]


def raw_window_inputs(scaler: StandardScaler, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Standardised inputs (N, D, L) and their mask (None if complete) from windows (N, L, D) already cut, in original units."""
    series, mask = standardize(scaler, windows.reshape(-1, windows.shape[-1]))  # (N·L, D)
    x = series.view(windows.shape).transpose(1, 2)  # (N, L, D) -> (N, D, L)
    return x, None if mask is None else mask.view(windows.shape).transpose(1, 2)


def training_split(schema: FrameSchema, values: np.ndarray, index: pd.Index, train_end: int) -> SplitData:
    """`values` (T, D) standardised and cut for `samformer.training.fit.fit`: the train rows, then the validation windows.

    There is no test split (`fit` never reads one). Refuses values that leave float32's range once scaled.
    """
    with np.errstate(over="ignore"):  # values beyond float32 once scaled are refused below, naming the column
        series, mask = standardize(schema.scaler, values)
    borders = {"train": (0, train_end), "val": (train_end - schema.seq_len, len(values))}
    columns = list(schema.channels.columns)
    data = SplitData.from_series(
        series,
        borders,
        name="frame",
        columns=columns,
        seq_len=schema.seq_len,
        horizon=schema.horizon,
        scaler=schema.scaler,
        index=index,
        mask=mask,
        roles=schema.channels.roles(),
    )
    check_finite_after_scaling(data)
    return data
