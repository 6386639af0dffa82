"""`Forecaster`: SAMformer on your own DataFrame — fit, predict with timestamps, backtest, save/load, export.

A thin estimator: frames are validated and put on a regular grid by `samformer.data.frames`, scaled with
`data.StandardScaler`, windowed by `data.Windows`, trained by `train.fit` (SAM, early stopping) and
forecast by `model.SAMformer` (or `quantile.QuantileSAMformer` for intervals). Missing values (NaN, or
timestamps absent from the grid) are masked out of the loss and out of RevIN's statistics.

The fitted state besides the weights is one `samformer.forecasting.schema.FrameSchema` (`schema_`), and the
conversion of the network's outputs back to original units is `samformer.forecasting.predictor.Predictor`.

Targets and covariates (`fit(df, target=..., past_covariates=..., future_covariates=..., calendar=...)`)
follow `samformer.data.channels`: every model input is a channel of the attention, only the targets are
forecast and scored, and a known-future covariate's token ends at the horizon's end, so `predict` then
needs its values over the next `horizon` steps (`future_df`).

An ensemble (`ensemble=k`) is k networks of seeds seed..seed+k−1 trained together in one pass by
`samformer.stacked.fit_stacked`, served as one network (`samformer.nn.stacked.MeanForecast`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from samformer.data.channels import ChannelSpec
from samformer.data.frames import (
    check_missing,
    check_observed_before,
    future_index,
    localize,
    longest_gap,
    naive_timestamp,
    to_wide_zoned,
    unselected_text_columns,
)
from samformer.data.loading import check_finite_after_scaling
from samformer.data.series import SplitData, StandardScaler, Windows, check_scaler_finite
from samformer.errors import ConfigError, DataError, ModelFileError, SamformerError
from samformer.files import atomic_directory
from samformer.forecasting.arguments import check_positive_int, check_quantile_levels
from samformer.forecasting.baselines import baseline_forecasts, season_length, skill_table
from samformer.forecasting.lookback import Trial, lookback_candidates, search_lookback
from samformer.forecasting.modelfile import check_model_destination, load_network, save_model
from samformer.forecasting.predictor import Predictor
from samformer.forecasting.schema import Channels, FrameSchema
from samformer.metrics import QuantileLoss
from samformer.nn.model import SAMformer, SAMformerConfig
from samformer.nn.quantile import PointQuantiles, QuantileSAMformer, calibrate
from samformer.nn.stacked import MeanForecast, StackedSAMformer
from samformer.training.config import TrainConfig, TrainResult, resolve_device, seed_everything
from samformer.training.fit import fit
from samformer.training.logs import MetricsLogger
from samformer.training.stacked.fit import fit_stacked, seeded_models

_MODEL_OPTIONS = {f.name for f in fields(SAMformerConfig)} - {"n_channels", "seq_len", "horizon"}
_TRAIN_OPTIONS = {f.name for f in fields(TrainConfig)}


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
        Channel rows are in original units, `overall` averages each channel's errors divided by its
        standard deviation (MSE by its square). Without a comparison: MSE and MAE per channel only.
        """
        if self.comparison is None:
            return self.metrics.groupby(level="channel", sort=False).mean()
        return self.comparison


@dataclass
class _Prepared:
    """The training frame made ready once, before any look-back is tried."""

    frame: pd.DataFrame  # the model's channels on the time grid (calendar features included)
    values: np.ndarray  # (T, D), NaN where missing
    train_end: int  # rows before the validation part
    schema: FrameSchema  # everything but the look-back (set per run) and what training learns


@dataclass
class _Run:
    """One trained network with the schema and data it was trained on."""

    net: SAMformer | QuantileSAMformer | MeanForecast
    schema: FrameSchema
    data: SplitData
    result: TrainResult
    logged: bool  # whether its epochs were written to log_dir as they ran


def _fitted_attribute(name: str, get: Callable[[FrameSchema], Any], doc: str) -> property:
    """A read-only view `name` of the fitted schema; AttributeError before fitting (as an unset attribute would be)."""

    def read(self: Forecaster) -> Any:
        if self.schema_ is None:
            raise AttributeError(f"{name} is set by fit(df) or Forecaster.load(path); this Forecaster is not fitted yet")
        return get(self.schema_)

    return property(read, doc=doc)


class Forecaster:
    """Fit SAMformer on a DataFrame and forecast the next `horizon` steps with timestamps.

    Args:
        horizon: number of future steps H to forecast.
        seq_len: look-back window L. None (the default): chosen on the validation rows among a few
            candidates derived from the series (`samformer.forecasting.lookback`); the paper uses 512.
        quantiles: levels such as (0.1, 0.5, 0.9) to train with the pinball loss and forecast intervals;
            0.5 is added if absent (it is the point forecast). None: a point forecast trained with MSE.
        calibrate: widen (or narrow) each quantile model's central intervals after training so that they
            cover their nominal share of the validation rows (conformalized quantile regression; see
            `samformer.nn.quantile.conformal_offsets`). False keeps the network's raw quantiles.
        ensemble: number k of networks to train, with seeds seed, seed + 1, ..., seed + k − 1, in one pass
            (`samformer.stacked.fit_stacked`); the forecast is the mean of theirs. The look-back search
            (`seq_len=None`) stays single-seed: the ensemble is trained once, at the look-back it chose.
            With `quantiles`, the networks forecast points (the stack trains no pinball loss) and the
            intervals come from calibrating the mean forecast on the validation windows: split-conformal
            on its residuals, per horizon step with the calibration's floor (`samformer.nn.quantile.calibrate`
            on `PointQuantiles`), so `calibrate` must stay True. 1 (the default): one network.
        freq: pandas frequency alias of the data ("h", "15min", "D", "B", ...); None infers it.
        season: seasonal period in steps, for the seasonal-naive baseline and the look-back candidates;
            None derives it from the frequency (`samformer.forecasting.baselines.season_length`: 24 for hourly, 7 for daily, ...).
        model_options: `SAMformer` keyword arguments (d_model, value_dim, attention, revin, sigma_reparam, init).
        log_dir: directory for per-epoch metrics (`metrics.csv`, and TensorBoard events when the
            `tensorboard` package is installed).
        **train_options: `TrainConfig` fields (lr, batch_size, epochs, patience, sam, rho, seed, device,
            progress, ...); the defaults are the paper's protocol. The device is used for fitting and
            forecasting and is not saved with the model.

    After fitting, `schema_` holds the fitted state (channels and roles, scaler, frequency, layout,
    look-back, calibration, history) and `net_` the network; `columns_`, `targets_`, `future_columns_`,
    `calendar_columns_`, `ignored_columns_`, `freq_`, `layout_`, `scaler_`, `seq_len_`, `season_`,
    `selection_`, `interval_offsets_` and `history_` read from the schema. `validation_` (set by `fit`)
    compares the model with the naive baselines on the validation rows.
    """

    columns_ = _fitted_attribute("columns_", lambda s: list(s.channels.columns), "The model's input channels, in order.")
    targets_ = _fitted_attribute("targets_", lambda s: list(s.channels.targets), "The channels forecast.")
    future_columns_ = _fitted_attribute("future_columns_", lambda s: list(s.channels.future), "Known-future covariates.")
    calendar_columns_ = _fitted_attribute("calendar_columns_", lambda s: list(s.channels.calendar), "Calendar features.")
    ignored_columns_ = _fitted_attribute("ignored_columns_", lambda s: list(s.channels.ignored), "Columns not used.")
    freq_ = _fitted_attribute("freq_", lambda s: s.freq, "The pandas frequency of the data.")
    layout_ = _fitted_attribute("layout_", lambda s: s.layout, '"wide" or "long": the layout of the training frame.')
    scaler_ = _fitted_attribute("scaler_", lambda s: s.scaler, "The standard scaler of the input channels.")
    seq_len_ = _fitted_attribute("seq_len_", lambda s: s.seq_len, "The look-back used: the one given, or the one chosen.")
    season_ = _fitted_attribute(
        "season_",
        lambda s: s.season if s.season is not None else season_length(s.freq),  # format 2 models saved none
        "The seasonal period in steps (None: no season).",
    )
    selection_ = _fitted_attribute(
        "selection_",
        lambda s: pd.DataFrame(s.selection).set_index("seq_len") if s.selection else None,
        "The look-back search (index seq_len; val_score, epochs, chosen), None when seq_len was given.",
    )

    def __init__(
        self,
        horizon: int,
        seq_len: int | None = None,
        *,
        quantiles: tuple[float, ...] | list[float] | None = None,
        calibrate: bool = True,
        ensemble: int = 1,
        freq: str | None = None,
        season: int | None = None,
        model_options: dict[str, Any] | None = None,
        log_dir: str | os.PathLike | None = None,
        **train_options: Any,
    ) -> None:
        horizon = check_positive_int("horizon", horizon)
        seq_len = check_positive_int("seq_len", seq_len, optional=True)
        season = check_positive_int("season", season, optional=True)
        unknown = set(train_options) - _TRAIN_OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; training options are: {', '.join(sorted(_TRAIN_OPTIONS))}")
        bad_model = set(model_options or {}) - _MODEL_OPTIONS
        if bad_model:
            raise TypeError(f"unknown model option(s) {', '.join(sorted(bad_model))}; choose from {', '.join(sorted(_MODEL_OPTIONS))}")
        quantiles = check_quantile_levels(quantiles)
        self.horizon, self.seq_len = horizon, seq_len
        self.quantiles: tuple[float, ...] | None = quantiles
        self.calibrate = calibrate
        self.freq, self.season = freq, season
        self.model_options = dict(model_options or {})
        self.log_dir = log_dir
        self.train_config = TrainConfig(**train_options)
        _check_ensemble(ensemble, self)
        self.ensemble = ensemble
        self.schema_: FrameSchema | None = None
        self.net_: SAMformer | QuantileSAMformer | MeanForecast | PointQuantiles | None = None
        self.validation_: pd.DataFrame | None = None

    @property
    def interval_offsets_(self) -> np.ndarray | None:
        """Calibration offsets (D_targets, Q) in original units added to the quantiles; None if uncalibrated."""
        return None if self.schema_ is None else self.schema_.interval_offsets

    @property
    def history_(self) -> list[dict[str, Any]]:
        """One record of metrics per training epoch (empty before fitting)."""
        return [] if self.schema_ is None else self.schema_.history

    # ----------------------------------------------------------------- fitting
    def fit(
        self,
        df: pd.DataFrame,
        val_size: int | float = 0.2,
        *,
        target: str | list[str] | None = None,
        past_covariates: list[str] | None = None,
        future_covariates: list[str] | None = None,
        calendar: bool = False,
        channels: ChannelSpec | None = None,
    ) -> Forecaster:
        """Train on `df` (wide or long); the last `val_size` rows (a count, or a fraction) drive early stopping.

        The scaler is fitted on the rows before the validation part only. With `seq_len=None` the
        look-back is chosen on the validation rows (`samformer.forecasting.lookback`; the search is `selection_`).
        Afterwards `validation_` compares the model with the naive baselines on the validation rows,
        and a one-line `UserWarning` says when it does not beat the better one. Returns self.

        Args:
            target: the column(s) to forecast; default every column that is not a covariate (mode M). Labels
                of any type are matched by `str(label)`, the name the forecasts carry (docs/api.md).
            past_covariates: columns observed only up to the forecast origin. With a `target` and no
                `past_covariates`, every other column is one (mode MS); with both, only the named ones
                are inputs besides the targets (`[]`: the target alone, mode S).
            future_covariates: columns known over the horizon too (planned prices, holidays): `predict`
                then needs their next `horizon` values in `future_df`.
            calendar: add sin/cos calendar features of the timestamps as known-future inputs
                (`predict` derives them itself).
            channels: the same choice as a `ChannelSpec` (as `samformer train --mode` takes), instead of
                the four arguments above.
        """
        spec = channels if channels is not None else _channel_spec(target, past_covariates, future_covariates, calendar)
        prepared = self._prepare(df, spec, val_size)
        full_epochs = self.train_config.epochs
        run, selection = None, None
        if self.seq_len is None:
            candidates = self._candidates(prepared)
            trial = partial(self._trial, prepared)
            run, selection = search_lookback(candidates, trial, self.train_config.restart_period, full_epochs)
        seq_len = self.seq_len if run is None else run.schema.seq_len
        if self.ensemble > 1:  # after the single-seed search: the ensemble trains at the look-back it chose
            run = self._ensemble_run(prepared, seq_len)
        elif run is None:
            run = self._trial(prepared, seq_len, full_epochs).run
        self._finish(prepared, run, selection)
        return self

    def _prepare(self, df: pd.DataFrame, spec: ChannelSpec, val_size: int | float) -> _Prepared:
        """Validate `df`, select its channels, cut off the validation rows and fit the scaler on the rest."""
        named = {*spec.targets, *spec.past_covariates, *spec.future_covariates}
        text = unselected_text_columns(df, named) if spec.targets else []  # roles given: unused text columns are ignored
        frame, freq, layout, tz = to_wide_zoned(df, self.freq, "the training frame", drop=text)
        inputs = Channels.from_spec(frame, spec)
        inputs = dataclasses.replace(inputs, ignored=(*inputs.ignored, *text))
        frame = inputs.model_frame(frame[inputs.user_columns])
        values = np.ascontiguousarray(frame.to_numpy())  # (T, D), NaN where missing; one layout, so statistics repeat bit for bit
        train_end = len(frame) - self._validation_rows(len(frame), val_size)
        if self.seq_len is None:
            lookback_candidates(train_end, self.horizon, None)  # refuses a series too short for any look-back
        else:
            self._check_train_rows(len(frame), train_end, self.seq_len)
        check_observed_before(values, list(inputs.columns), train_end, "the training frame")
        with np.errstate(over="ignore"):  # an overflow is refused just below, naming the column
            scaler = StandardScaler.fit(values[:train_end], ignore_nan=True)
        check_scaler_finite(scaler, list(inputs.columns), "the training frame")
        season = self.season if self.season is not None else season_length(freq)
        options = {"quantiles": self.quantiles, "model_options": self.model_options, "train_config": asdict(self.train_config)}
        schema = FrameSchema(self.horizon, 0, inputs, scaler, freq, layout, season=season, tz=tz, **options)  # seq_len: per run
        return _Prepared(frame, values, train_end, schema)

    def _validation_rows(self, n: int, val_size: int | float) -> int:
        """How many of `n` rows are validation rows; refuses fewer than the horizon."""
        n_val = _count_rows(val_size, n, "val_size")
        if n_val < self.horizon:
            raise DataError(f"val_size gives {n_val} validation rows, fewer than horizon={self.horizon}; use a larger val_size")
        return n_val

    def _candidates(self, prepared: _Prepared) -> list[int]:
        """The look-backs to search: `lookback_candidates`, less those shorter than a gap inside a channel."""
        candidates = lookback_candidates(prepared.train_end, self.horizon, prepared.schema.season)
        gap = max(end - start for start, end in map(longest_gap, (~np.isnan(prepared.values)).T))
        return [L for L in candidates if gap < L] or candidates[-1:]  # none longer: the largest, refused by check_missing

    def _trial(self, prepared: _Prepared, seq_len: int, epochs: int) -> Trial[_Run]:
        """Train a network with look-back `seq_len` for at most `epochs` epochs (same seed every time)."""
        schema, data = self._run_data(prepared, seq_len)
        seed_everything(self.train_config.seed)
        net = self._build_net(schema)
        logged = self.log_dir is not None and epochs == self.train_config.epochs
        callbacks = (MetricsLogger(self.log_dir),) if logged else ()
        criterion = QuantileLoss(self.quantiles) if self._quantile_heads else None
        config = dataclasses.replace(self.train_config, epochs=epochs)
        result: TrainResult = fit(net, data, config, callbacks, criterion=criterion)
        net.cpu().eval()
        return Trial(seq_len, result.val_mse, result.epochs_run, _Run(net, schema, data, result, logged))

    def _ensemble_run(self, prepared: _Prepared, seq_len: int) -> _Run:
        """Train the `ensemble` networks of seeds seed, seed + 1, ... together in one stacked pass at look-back `seq_len`.

        Network j is the one a single-network forecaster with seed seed + j would train; the run's
        history is the first network's.
        """
        schema, data = self._run_data(prepared, seq_len)
        schema = schema.replace(ensemble=self.ensemble)
        seeds = range(self.train_config.seed, self.train_config.seed + self.ensemble)
        models = seeded_models(partial(self._build_net, schema), seeds)
        results = fit_stacked(models, data, [dataclasses.replace(self.train_config, seed=seed) for seed in seeds])
        stack = StackedSAMformer([model.cpu() for model in models]).eval()
        return _Run(MeanForecast(stack), schema, data, results[0], logged=False)

    def _run_data(self, prepared: _Prepared, seq_len: int) -> tuple[FrameSchema, SplitData]:
        """The schema and scaled data of a run at look-back `seq_len`; refuses one the frame cannot give."""
        check_missing(prepared.values, list(prepared.frame.columns), seq_len, "the training frame")
        self._check_train_rows(len(prepared.frame), prepared.train_end, seq_len)
        schema = prepared.schema.replace(seq_len=seq_len)
        return schema, self._split_data(schema, prepared.values, prepared.frame.index, prepared.train_end)

    @property
    def _quantile_heads(self) -> bool:
        """Whether the network forecasts the quantiles itself (trained with the pinball loss): not in an ensemble."""
        return self.quantiles is not None and self.ensemble == 1

    def _finish(self, prepared: _Prepared, run: _Run, selection: pd.DataFrame | None) -> None:
        """Calibrate the final run's intervals, compare it with the baselines, and keep it as the fitted state."""
        if self.log_dir is not None and not run.logged:  # a search run kept as final: write its epochs now
            logger = MetricsLogger(self.log_dir)
            for record in run.result.history:
                logger(run.net, dict(record))
        forecasts, actuals = self._validation_forecasts(Predictor(run.net, run.schema), run.data)  # (N, H, D_t[, Q]), (N, H, D_t)
        net = run.net
        if self.quantiles and not self._quantile_heads:  # the ensemble's mean: every level starts at it
            forecasts = np.repeat(forecasts[..., None], len(self.quantiles), axis=-1)  # (N, H, D_t) -> (N, H, D_t, Q)
            net = PointQuantiles(run.net, self.quantiles)
        calibration = calibrate(forecasts, actuals, self.quantiles) if self.quantiles and self.calibrate else None
        rows = [] if selection is None else selection.reset_index().to_dict("records")
        self.schema_ = run.schema.replace(
            history=run.result.history,
            interval_offsets=None if calibration is None else calibration.offsets,
            interval_floor=None if calibration is None else calibration.floor,
            selection=[{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows],
        )
        self.net_ = net
        point = forecasts if self.quantiles is None else forecasts[..., self.quantiles.index(0.5)]
        self.validation_ = self._compare(
            point, actuals, prepared.values, np.arange(prepared.train_end, len(prepared.values) - self.horizon + 1)
        )
        self._context = prepared.frame[run.schema.channels.user_columns].iloc[-run.schema.seq_len :]
        _warn_if_no_skill(self.validation_)

    def _compare(self, point: np.ndarray, actuals: np.ndarray, values: np.ndarray, origins: np.ndarray) -> pd.DataFrame:
        """`skill_table` of point forecasts (N, H, D_targets) made at `origins` of `values` (T, D) against the baselines."""
        targets = self.schema_.channels.target_indices
        baselines = baseline_forecasts(values[:, targets], origins, self.horizon, self.season_)
        return skill_table({"model": point, **baselines}, actuals, self.targets_, self.scaler_.std[targets])

    def _check_train_rows(self, n: int, train_end: int, seq_len: int) -> None:
        """Refuse too few rows before validation for one window of `seq_len` + horizon."""
        if train_end < seq_len + self.horizon:
            raise DataError(
                f"the training frame has {n} rows: {train_end} before validation, too few for seq_len={seq_len} + "
                f"horizon={self.horizon}; use a shorter seq_len or horizon, a smaller val_size, or a longer series"
            )

    def _split_data(self, schema: FrameSchema, values: np.ndarray, index: pd.Index, train_end: int) -> SplitData:
        """The scaled series (T, D) cut for `train.fit`: train rows, then validation windows."""
        L, n = schema.seq_len, len(values)
        with np.errstate(over="ignore"):  # values beyond float32 once scaled are refused below, naming the column
            series, mask = _scaled(schema.scaler, values)
        borders = {"train": (0, train_end), "val": (train_end - L, n)}  # no test split: `fit` never reads one
        masks = None if mask is None else {s: mask[a:b] for s, (a, b) in borders.items()}
        train, val = (series[a:b] for a, b in borders.values())
        columns = list(schema.channels.columns)
        data = SplitData("frame", columns, L, self.horizon, train, val, None, schema.scaler, borders, index, masks, schema.channels.roles())
        check_finite_after_scaling(data)
        return data

    def _validation_forecasts(self, predictor: Predictor, data: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """Forecasts (N, H, D_targets[, Q]) of every validation window and what happened (N, H, D_targets), original units."""
        windows = data.windows("val")
        forecasts, actuals = [], []
        for idx in torch.arange(len(windows)).split(self.train_config.eval_batch_size):
            x, y = windows.batch(idx)  # (B, D, L), (B, D_targets, H)
            masks = windows.batch_mask(idx)
            forecasts.append(self._run(predictor, x, None if masks is None else masks[0]))
            actual = predictor.to_original_units(y.to(predictor.mean.device)).cpu().numpy()  # (B, H, D_targets)
            if masks is not None:
                actual[~masks[1].transpose(1, 2).numpy()] = np.nan
            actuals.append(actual)
        return np.concatenate(forecasts), np.concatenate(actuals)

    def _build_net(self, schema: FrameSchema) -> SAMformer | QuantileSAMformer:
        n_out = self.horizon * (len(self.quantiles) if self._quantile_heads else 1)
        targets = schema.channels.roles().targets
        net = SAMformer(len(schema.channels.columns), schema.seq_len, n_out, target_channels=targets, **self.model_options)
        return QuantileSAMformer(net, self.quantiles) if self._quantile_heads else net

    # -------------------------------------------------------------- forecasting
    def predict(self, df: pd.DataFrame | None = None, future_df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast the `horizon` steps after the end of `df` (default: of the training frame).

        `future_df` gives the known-future covariates over those steps (a frame with their columns and
        the `horizon` future timestamps, as index or date column); required exactly when the model was
        fitted with `future_covariates`. Calendar features are derived from the timestamps.

        Returns a frame in the layout of the training input: wide (index = future timestamps, one
        column per target, plus `<target>_q<level>` columns for quantile models) or long
        (`unique_id, ds, y` plus `y_q<level>` columns). Values are in the original units.
        """
        self._check_fitted()
        if df is None:
            if not hasattr(self, "_context"):
                raise DataError("this forecaster was loaded from disk and keeps no data: pass the recent history, predict(df)")
            frame = self._context
        else:
            frame = self._inference_frame(df, "the frame to forecast from")
        dates = future_index(frame.index[-1], self.freq_, self.horizon)
        block = frame.iloc[-self.seq_len_ :].reindex(frame.index[-self.seq_len_ :].append(dates))  # (L+H, D_user), NaN ahead
        if self.future_columns_:
            block.loc[dates, self.future_columns_] = self._future_values(future_df, dates)
        elif future_df is not None:
            raise DataError("this model was fitted without future_covariates, so future_df is not used; leave it out")
        window = self._input_window(self.schema_.channels.model_frame(block).to_numpy())  # (L, D)
        check_missing(window, self.columns_, self.seq_len_, f"the last {self.seq_len_} rows")
        pred = self._forecast(window[None])[0]  # (H, D_targets) or (H, D_targets, Q)
        return self._output(pred, localize(dates, self.schema_.tz, self.freq_))

    def _future_values(self, future_df: pd.DataFrame | None, dates: pd.DatetimeIndex) -> np.ndarray:
        """The known-future covariates over `dates` (H, D_future), from `future_df`; refuses gaps."""
        names = ", ".join(self.future_columns_)
        if future_df is None:
            raise DataError(
                f"this model uses known-future covariates ({names}): pass their values for the next {self.horizon} steps, "
                f"predict(df, future_df=...) (CLI: --future-csv)"
            )
        future, _, _, _ = to_wide_zoned(future_df, self.freq_, "future_df", check_tz=True, fitted_tz=self.schema_.tz)
        absent = [c for c in self.future_columns_ if c not in future.columns]
        if absent:
            raise DataError(f"future_df has no column {', '.join(absent)}; it needs the known-future covariates {names}")
        values = future.reindex(dates)[self.future_columns_]
        missing = values.isna()
        if missing.to_numpy().any():
            column = missing.any().idxmax()
            first = values.index[missing[column].to_numpy()][0]
            raise DataError(
                f"known-future covariate {column!r} is missing over the horizon (first at {first}); future_df must give "
                f"{names} for every step from {dates[0]} to {dates[-1]}"
            )
        return values.to_numpy()

    def _input_window(self, block: np.ndarray) -> np.ndarray:
        """Model inputs (L, D) from rows (L+H, D) of the model's columns: known-future channels end at the horizon's end."""
        L, H = self.seq_len_, self.horizon
        window = block[:L].copy()
        future = list(self.schema_.channels.roles().future)
        window[:, future] = block[H : L + H, future]
        return window

    def backtest(self, df: pd.DataFrame, start: int | float | str | pd.Timestamp | None = None, stride: int = 1) -> Backtest:
        """Rolling-origin forecasts with the fitted model (no refitting) and their errors.

        Args:
            df: a frame with the training columns and frequency.
            start: first forecast step: a row number, a fraction of the rows, or a timestamp; default the
                earliest possible (row `seq_len`).
            stride: steps between consecutive forecast origins.
        """
        self._check_fitted()
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        frame = self._inference_frame(df, "the backtest frame")
        L, H, n = self.seq_len_, self.horizon, len(frame)
        first = max(self._start_row(start, frame), L)
        origins = np.arange(first, n - H + 1, stride)
        if len(origins) == 0:
            raise DataError(f"no forecast origin between row {first} and row {n - H} (the last with {H} steps after it); start earlier")
        values = self.schema_.channels.model_frame(frame).to_numpy()  # (T, D)
        series, mask = _scaled(self.scaler_, values)
        windows = Windows(series, L, H, mask, self.schema_.channels.roles())
        index = torch.from_numpy(origins - L)
        preds = []
        batches = index.split(self.train_config.eval_batch_size)
        for idx in tqdm(batches, desc="backtest", unit="batch", disable=not self.train_config.progress, leave=False):
            x, _ = windows.batch(idx)  # (B, D, L)
            m = windows.batch_mask(idx)
            preds.append(self._forecast_scaled(x, None if m is None else m[0]))
        pred = np.concatenate(preds)  # (N, H, D_targets[, Q])
        targets = [self.columns_.index(c) for c in self.targets_]
        actual = np.stack([values[o : o + H, targets] for o in origins])  # (N, H, D_targets)
        zoned = localize(frame.index, self.schema_.tz, self.freq_)
        cutoffs = zoned[origins - 1]
        dates = [zoned[o : o + H] for o in origins]
        keys = {"keys": cutoffs, "names": ["cutoff", "date"]}
        forecasts = pd.concat([self._output(p, d, long=False) for p, d in zip(pred, dates, strict=True)], **keys)
        actuals = pd.concat([pd.DataFrame(a, index=d, columns=self.targets_) for a, d in zip(actual, dates, strict=True)], **keys)
        point = pred if self.quantiles is None else pred[..., self.quantiles.index(0.5)]
        comparison = self._compare(point, actual, values, origins)
        err = point - actual  # (N, H, D_targets), NaN where the actual is missing
        with warnings.catch_warnings():  # a (step, channel) never observed gives NaN, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            mse, mae = np.nanmean(err**2, axis=0), np.nanmean(np.abs(err), axis=0)  # (H, D_targets)
        metrics = pd.DataFrame(
            {"mse": mse.T.ravel(), "mae": mae.T.ravel()},
            index=pd.MultiIndex.from_product([self.targets_, range(1, H + 1)], names=["channel", "step"]),
        )
        return Backtest(forecasts, actuals, metrics, comparison)

    def attention(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The D×D channel-attention matrix averaged over every window of `df` (default: the last window seen).

        Row i gives how much channel i draws on each channel; rows and columns are named by channel.
        An ensemble's is the mean of its networks' matrices.
        """
        self._check_fitted()
        net = self._network()
        members = [net.model(j) for j in range(len(net))] if isinstance(net, StackedSAMformer) else [net]
        if members[0].attention is None:
            raise DataError("this model has no attention block (model_options attention=False)")
        frame = self._context if df is None else self._inference_frame(df, "the frame")
        values = self.schema_.channels.model_frame(frame).to_numpy()  # (T, D)
        series, mask = _scaled(self.scaler_, values)
        if self.schema_.channels.roles().future:  # known-future inputs end at the horizon's end: windows of L + H rows
            if len(values) < self.seq_len_ + self.horizon:
                raise DataError(
                    f"this model has known-future inputs: pass a frame of at least seq_len + horizon = {self.seq_len_ + self.horizon} rows"
                )
            windows = Windows(series, self.seq_len_, self.horizon, mask, self.schema_.channels.roles())
            x, _ = windows.batch(slice(None))  # (N, D, L)
            m = None if mask is None else windows.batch_mask(slice(None))[0]
        else:
            x = series.unfold(0, self.seq_len_, 1)  # (T, D) -> (N, D, L)
            m = None if mask is None else mask.unfold(0, self.seq_len_, 1)
        with torch.inference_mode():
            attns = [member.forward_channels_first(x, return_attention=True, mask=m)[1].mean(dim=0) for member in members]  # (D, D) each
        attn = torch.stack(attns).mean(dim=0)  # (k, D, D) -> (D, D)
        return pd.DataFrame(attn.numpy(), index=self.columns_, columns=self.columns_)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save to directory `path`: weights as safetensors, everything else as JSON (no pickle).

        The directory is written whole beside `path` and then renamed into place, so a failure leaves
        what was there intact. Refuses a directory that already has content unless `overwrite` is set,
        and even then one holding anything but a saved model's files.
        The training device is not saved: it is chosen when loading. An ensemble is one directory: its
        k networks' weights in one safetensors file, k in the config.
        """
        self._check_fitted()
        check_model_destination(path, overwrite)
        net = self._network()
        schema = self.schema_.replace(model_options=self.model_options, train_config=asdict(self.train_config))
        with atomic_directory(path, overwrite=overwrite) as tmp:
            save_model(tmp, net, extra={"forecaster": schema.to_dict()})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> Forecaster:
        """Load a directory written by `save`; refuses one that is incomplete, altered or incompatible.

        Args:
            device: where to forecast ("cpu", "cuda", "auto", ...); default the `TrainConfig` default.
                Whatever device the model was fitted on, it loads on any machine.
        """
        net, config = load_network(path)
        if "forecaster" not in config:
            raise ModelFileError(
                f"{path} holds a bare SAMformer (from `samformer train`?), not a Forecaster; "
                "load it with samformer.forecasting.modelfile.load_model"
            )
        if "weights_sha256" not in config or "config_sha256" not in config:
            raise ModelFileError(f"{path}/config.json has no checksums; it was not written by Forecaster.save or was altered")
        members = len(net) if isinstance(net, StackedSAMformer) else 1
        schema = FrameSchema.from_dict(config["forecaster"], net.config, f"{path}/config.json", members)
        train_options = {k: v for k, v in schema.train_config.items() if k in _TRAIN_OPTIONS}
        if device is not None:
            if resolve_device(device).type not in ("cpu", "cuda"):
                raise SamformerError(f"device {device!r} cannot run a forecaster; use auto, cpu, cuda or cuda:N")
            train_options["device"] = device
        try:
            options = {"quantiles": schema.quantiles, "freq": schema.freq, "season": schema.season, "model_options": schema.model_options}
            options["ensemble"] = schema.ensemble
            self = cls(schema.horizon, schema.seq_len, **options, **train_options)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}/config.json has an invalid forecaster section ({exc!r}); re-save the model") from None
        self.schema_ = schema
        if isinstance(net, StackedSAMformer):
            self.net_ = PointQuantiles(MeanForecast(net), self.quantiles) if self.quantiles else MeanForecast(net)
        else:
            self.net_ = QuantileSAMformer(net, self.quantiles) if self.quantiles else net
        return self

    def predictor(self, dtype: torch.dtype = torch.float64) -> Predictor:
        """The fitted network with this forecaster's scaling and its inverse, as a torch module (see `samformer.forecasting.predictor`)."""
        self._check_fitted()
        return Predictor(self.net_, self.schema_, dtype)

    def export_onnx(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Export the fitted network, scaling included, to ONNX (see `samformer.forecasting.export.export_onnx`)."""
        from samformer.forecasting.export import export_onnx

        self._check_fitted()
        return export_onnx(self, path, overwrite=overwrite)

    # ----------------------------------------------------------------- helpers
    def _network(self) -> SAMformer | StackedSAMformer:
        """The trained network without its serving wrappers: one SAMformer, or the ensemble's stack."""
        net = self.net_.net if isinstance(self.net_, QuantileSAMformer | PointQuantiles) else self.net_
        return net.stack if isinstance(net, MeanForecast) else net

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise DataError("this Forecaster is not fitted yet; call fit(df) or Forecaster.load(path) first")

    def _inference_frame(self, df: pd.DataFrame, source: str) -> pd.DataFrame:
        """`df` on the fitted grid, with the fitted channels in the fitted order."""
        frame, _, _, _ = to_wide_zoned(df, self.freq_, source, drop=self.ignored_columns_, check_tz=True, fitted_tz=self.schema_.tz)
        needed = self.schema_.channels.user_columns
        missing = [c for c in needed if c not in frame.columns]
        extra = [str(c) for c in frame.columns if c not in needed and c not in self.ignored_columns_]
        if missing or extra:
            raise DataError(
                f"{source} has channels {list(map(str, frame.columns))}, the model was fitted on {needed}"
                + (f"; missing: {missing}" if missing else "")
                + (f"; unknown: {extra}" if extra else "")
            )
        frame = frame[needed]
        if len(frame) < self.seq_len_:
            raise DataError(f"{source} has {len(frame)} time steps, fewer than seq_len={self.seq_len_}; give at least {self.seq_len_}")
        return frame

    def _forecast(self, windows: np.ndarray) -> np.ndarray:
        """Forecasts in original units from raw windows (N, L, D) that may hold NaN."""
        series, mask = _scaled(self.scaler_, windows.reshape(-1, windows.shape[-1]))
        x = series.view(windows.shape).transpose(1, 2)  # (N, L, D) -> (N, D, L)
        m = None if mask is None else mask.view(windows.shape).transpose(1, 2)
        return self._forecast_scaled(x, m)

    def _forecast_scaled(self, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
        """Forecasts of the targets in original units (N, H, D_targets[, Q]) from standardised inputs (N, D, L)."""
        return self._run(self.predictor(), x, mask)

    def _run(self, predictor: Predictor, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
        """`predictor.forecast_scaled` on the configured device, as a float64 array (N, H, D_targets[, Q])."""
        device = resolve_device(self.train_config.device)
        predictor = predictor.to(device).eval()
        with torch.inference_mode():
            y = predictor.forecast_scaled(x.to(device), None if mask is None else mask.to(device))
        return y.cpu().numpy()

    def _output(self, pred: np.ndarray, index: pd.DatetimeIndex, long: bool | None = None) -> pd.DataFrame:
        """One forecast (H, D_targets[, Q]) as a wide frame (or long, when fitted on long input)."""
        long = self.layout_ == "long" if long is None else long
        if self.quantiles is None:
            wide = pd.DataFrame(pred, index=index, columns=self.targets_)
        else:
            parts = {c: pred[:, j, self.quantiles.index(0.5)] for j, c in enumerate(self.targets_)}
            for j, c in enumerate(self.targets_):
                parts.update({f"{c}_q{q:g}": pred[:, j, k] for k, q in enumerate(self.quantiles)})
            wide = pd.DataFrame(parts, index=index)
        if not long:
            return wide
        out = []
        for c in self.targets_:
            cols = [c] + ([f"{c}_q{q:g}" for q in self.quantiles] if self.quantiles else [])
            part = wide[cols].rename(columns=lambda name, c=c: "y" + name[len(c) :])
            out.append(part.assign(unique_id=c, ds=part.index))
        long_frame = pd.concat(out, ignore_index=True)
        return long_frame[["unique_id", "ds", *[k for k in long_frame.columns if k.startswith("y")]]]

    def _start_row(self, start: int | float | str | pd.Timestamp | None, frame: pd.DataFrame) -> int:
        if start is None:
            return self.seq_len_
        if isinstance(start, bool):
            raise ValueError(f"start must be a row number, a fraction or a timestamp, got {start!r}")
        if isinstance(start, int):
            return start if start >= 0 else len(frame) + start
        if isinstance(start, float):
            if not 0 < start < 1:
                raise ValueError(f"a fractional start must lie in (0, 1), got {start}")
            return int(start * len(frame))
        return int(frame.index.searchsorted(naive_timestamp(pd.Timestamp(start), self.freq_)))


def _channel_spec(
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


def _check_ensemble(ensemble: Any, forecaster: Forecaster) -> None:
    """One-line `ConfigError` for an `ensemble` that is not a model count, or that the forecaster's other options exclude."""
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise ConfigError(f"ensemble must be a positive integer (the number of seeds whose forecasts are averaged), got {ensemble!r}")
    if ensemble == 1:
        return
    excluded = {
        "model_options sigma_reparam=True (σReparam networks cannot be stacked)": forecaster.model_options.get("sigma_reparam"),
        "calibrate=False (an ensemble's intervals come only from calibration)": forecaster.quantiles and not forecaster.calibrate,
        "log_dir (per-epoch logs are written for a single network)": forecaster.log_dir is not None,
        "compile=True (the stacked trainer runs uncompiled)": forecaster.train_config.compile,
    }
    for option, present in excluded.items():
        if present:
            raise ConfigError(f"ensemble={ensemble} cannot be combined with {option}; use ensemble=1 or drop that option")


def _warn_if_no_skill(table: pd.DataFrame) -> None:
    """One-line warning when the model's validation MSE (all targets) is not below the better baseline's."""
    overall = table.loc["overall"]
    if overall["skill"] > 0 or not np.isfinite(overall["skill"]):
        return
    baseline = overall["best_baseline"]
    warnings.warn(
        f"the model does not beat the {baseline.replace('_', ' ')} baseline on the validation rows (MSE {overall['mse']:.4g} vs "
        f"{overall[f'{baseline}_mse']:.4g}, standardised; skill {overall['skill']:+.1%}); compare backtest(...).summary() before using it",
        UserWarning,
        stacklevel=4,
    )


def _count_rows(size: int | float, n: int, name: str) -> int:
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


def _scaled(scaler: StandardScaler, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Standardised float32 series (T, D) with missing values set to 0, and its observed mask (None if complete)."""
    observed = ~np.isnan(values)
    scaled = np.ascontiguousarray(np.where(observed, scaler.transform(values), 0.0), dtype=np.float32)
    return torch.from_numpy(scaled), None if observed.all() else torch.from_numpy(observed)
