"""The training frame made ready once, before any look-back is tried: channels chosen, validation rows cut off, scaler fitted.

`prepare_frame` returns a `Prepared` whose schema has everything but the look-back (set per run by
`run_data`) and what training learns; `run_data` gives one run's schema and standardised data
(`samformer.forecasting.windowing.training_split`), refusing a look-back the frame cannot give.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from samformer.data.channels import ChannelSpec
from samformer.data.frames import check_missing, check_observed_before, longest_gap, to_wide_zoned, unselected_text_columns
from samformer.data.series import SplitData, StandardScaler, check_scaler_finite
from samformer.errors import DataError
from samformer.forecasting.arguments import count_rows
from samformer.forecasting.baselines import season_length
from samformer.forecasting.lookback import lookback_candidates
from samformer.forecasting.options import ForecastOptions
from samformer.forecasting.schema import Channels, FrameSchema
from samformer.forecasting.windowing import training_split


@dataclass
class Prepared:
    """The training frame made ready once, before any look-back is tried."""

    frame: pd.DataFrame  # the model's channels on the time grid (calendar features included)
    values: np.ndarray  # (T, D), NaN where missing
    train_end: int  # rows before the validation part
    schema: FrameSchema  # everything but the look-back (set per run) and what training learns


def prepare_frame(df: pd.DataFrame, spec: ChannelSpec, val_size: int | float, options: ForecastOptions) -> Prepared:
    """Validate `df`, select its channels, cut off the validation rows and fit the scaler on the rest."""
    named = {*spec.targets, *spec.past_covariates, *spec.future_covariates}
    text = unselected_text_columns(df, named) if spec.targets else []  # roles given: unused text columns are ignored
    frame, freq, layout, tz = to_wide_zoned(df, options.freq, "the training frame", drop=text)
    inputs = Channels.from_spec(frame, spec)
    inputs = dataclasses.replace(inputs, ignored=(*inputs.ignored, *text))
    frame = inputs.model_frame(frame[inputs.user_columns])
    values = np.ascontiguousarray(frame.to_numpy())  # (T, D), NaN where missing; one layout, so statistics repeat bit for bit
    train_end = len(frame) - validation_rows(len(frame), val_size, options.horizon)
    if options.seq_len is None:
        lookback_candidates(train_end, options.horizon, None)  # refuses a series too short for any look-back
    else:
        check_train_rows(len(frame), train_end, options.seq_len, options.horizon)
    check_observed_before(values, list(inputs.columns), train_end, "the training frame")
    with np.errstate(over="ignore"):  # an overflow is refused just below, naming the column
        scaler = StandardScaler.fit(values[:train_end], ignore_nan=True)
    check_scaler_finite(scaler, list(inputs.columns), "the training frame")
    season = options.season if options.season is not None else season_length(freq)
    fitted_with = {"quantiles": options.quantiles, "model_options": options.model_options, "train_config": asdict(options.train_config)}
    schema = FrameSchema(options.horizon, 0, inputs, scaler, freq, layout, season=season, tz=tz, **fitted_with)  # seq_len: per run
    return Prepared(frame, values, train_end, schema)


def validation_rows(n: int, val_size: int | float, horizon: int) -> int:
    """How many of `n` rows are validation rows; refuses fewer than the horizon."""
    n_val = count_rows(val_size, n, "val_size")
    if n_val < horizon:
        raise DataError(f"val_size gives {n_val} validation rows, fewer than horizon={horizon}; use a larger val_size")
    return n_val


def check_train_rows(n: int, train_end: int, seq_len: int, horizon: int) -> None:
    """Refuse too few rows before validation for one window of `seq_len` + horizon."""
    if train_end < seq_len + horizon:
        raise DataError(
            f"the training frame has {n} rows: {train_end} before validation, too few for seq_len={seq_len} + "
            f"horizon={horizon}; use a shorter seq_len or horizon, a smaller val_size, or a longer series"
        )


def searched_lookbacks(prepared: Prepared) -> list[int]:
    """The look-backs to search: `lookback_candidates`, less those shorter than a gap inside a channel."""
    candidates = lookback_candidates(prepared.train_end, prepared.schema.horizon, prepared.schema.season)
    gap = max(end - start for start, end in map(longest_gap, (~np.isnan(prepared.values)).T))
    return [L for L in candidates if gap < L] or candidates[-1:]  # none longer: the largest, refused by check_missing


def run_data(prepared: Prepared, seq_len: int) -> tuple[FrameSchema, SplitData]:
    """The schema and scaled data of a run at look-back `seq_len`; refuses one the frame cannot give."""
    check_missing(prepared.values, list(prepared.frame.columns), seq_len, "the training frame")
    check_train_rows(len(prepared.frame), prepared.train_end, seq_len, prepared.schema.horizon)
    schema = prepared.schema.replace(seq_len=seq_len)
    return schema, training_split(schema, prepared.values, prepared.frame.index, prepared.train_end)
