"""`Forecaster`: SAMformer on your own DataFrame — fit, predict with timestamps, backtest, save/load, export.

A thin estimator: it keeps its options (`samformer.forecasting.options.ForecastOptions`) and its fitted
state (`schema_`, a `samformer.forecasting.schema.FrameSchema`, and `net_`), and hands the work to
functions that take them: `fitting.fit_frame` (frame preparation, look-back search, one network or an
ensemble, calibration), `inference` (the frame to forecast from, the run, the output frame), `backtest`
and `persistence`. Every path standardises and windows the values through `windowing`, and converts
forecasts back to original units through `predictor.Predictor`. Missing values (NaN, or timestamps absent
from the grid) are masked out of the loss and out of RevIN's statistics.

Targets and covariates (`fit(df, target=..., past_covariates=..., future_covariates=..., calendar=...)`)
follow `samformer.data.channels`: every model input is a channel of the attention, only the targets are
forecast and scored, and a known-future covariate's token ends at the horizon's end, so `predict` then
needs its values over the next `horizon` steps (`future_df`).

An ensemble (`ensemble=k`) is k networks of seeds seed..seed+k−1 trained together in one pass by
`samformer.training.stacked.fit.fit_stacked`, served as one network (`samformer.nn.stacked.MeanForecast`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from samformer.data.channels import ChannelSpec
from samformer.errors import DataError
from samformer.forecasting.arguments import channel_spec
from samformer.forecasting.backtest import Backtest, check_stride, forecast_origins, run_backtest
from samformer.forecasting.fitting import fit_frame, warn_if_no_skill
from samformer.forecasting.inference import NO_HISTORY, attending_members, attention_matrix, inference_frame, predict_next, run_predictor
from samformer.forecasting.options import ForecastOptions
from samformer.forecasting.persistence import invalid_section, read_forecaster, save_forecaster, serving_network
from samformer.forecasting.predictor import Predictor
from samformer.forecasting.schema import FrameSchema
from samformer.forecasting.stand_ins import window_stand_ins
from samformer.forecasting.windowing import raw_window_inputs


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
            (`samformer.training.stacked.fit.fit_stacked`); the forecast is the mean of theirs. The look-back search
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
        fallback: on a target where a statistical forecaster has a lower validation MSE than SAMformer (naive,
            seasonal naive, and ETS and Theta with the `stats` extra), forecast that target with it
            (`samformer.forecasting.stand_ins`; `forecasters_` says which); its band comes from the same
            calibration. False: SAMformer on every target.
        warm_start: start the shared linear forecaster at the seasonal-naive forecast with the attended residual at
            zero (`samformer.nn.warm_start`), so training learns the correction to seasonal naive; used when the
            season fits in the look-back. Off by default (results/own_data/README.md measures it).
        **train_options: `TrainConfig` fields (lr, batch_size, epochs, patience, sam, rho, seed, device,
            progress, ...); the defaults are the paper's protocol, with one change on small data: an epoch
            is then repeated passes of at least 50 optimizer steps (`samformer.forecasting.budget`), so that
            epochs, patience and the cosine period count training that fits the data; options given here
            are kept as given. The device is used for fitting and forecasting and is not saved.

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
    season_ = _fitted_attribute("season_", lambda s: s.season_steps, "The seasonal period in steps (None: no season).")
    forecasters_ = _fitted_attribute(
        "forecasters_",
        lambda s: pd.Series({t: s.stand_ins.get(t, "samformer") for t in s.channels.targets}, name="forecaster", dtype=object),
        "What forecasts each target: samformer, or the statistical stand-in validation preferred (`fallback`).",
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
        fallback: bool = True,
        warm_start: bool = False,
        **train_options: Any,
    ) -> None:
        options = ForecastOptions.checked(
            horizon,
            seq_len,
            quantiles=quantiles,
            calibrate=calibrate,
            ensemble=ensemble,
            freq=freq,
            season=season,
            model_options=model_options,
            log_dir=log_dir,
            train_options=train_options,
            fallback=fallback,
            warm_start=warm_start,
        )
        self.fallback, self.warm_start, self._given_train_options = options.fallback, options.warm_start, options.given
        self.horizon, self.seq_len, self.quantiles = options.horizon, options.seq_len, options.quantiles
        self.calibrate, self.ensemble = options.calibrate, options.ensemble
        self.freq, self.season = options.freq, options.season
        self.model_options, self.log_dir, self.train_config = options.model_options, options.log_dir, options.train_config
        self.schema_: FrameSchema | None = None
        self.net_: torch.nn.Module | None = None  # SAMformer, QuantileSAMformer, or an ensemble's MeanForecast / PointQuantiles
        self.validation_: pd.DataFrame | None = None
        self._context: pd.DataFrame | None = None  # the rows fitted on (user channels); None when loaded from disk

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
        spec = channels if channels is not None else channel_spec(target, past_covariates, future_covariates, calendar)
        fitted = fit_frame(df, spec, val_size, self._options())
        self.schema_, self.net_, self.validation_, self._context = fitted.schema, fitted.net, fitted.validation, fitted.context
        warn_if_no_skill(self.validation_)
        return self

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
        frame = self._history(df, "the frame to forecast from")
        return predict_next(self.predictor(), self.schema_, frame, future_df, self.train_config.device)

    def forecast_windows(self, windows: np.ndarray) -> np.ndarray:
        """Forecasts in original units from look-back windows cut by the caller, in original units.

        Args:
            windows: (N, seq_len, D) — N windows of the model's input channels (`columns_`, in that order),
                NaN where missing. A known-future channel holds its values up to the horizon's end: rows
                [t - seq_len + horizon, t + horizon) for a forecast from origin t (as the ONNX export's input).

        Returns:
            (N, horizon, D_targets), or (N, horizon, D_targets, Q) for a quantile model, float64, targets in
            the order of `targets_` and levels in the order of `quantiles`.
        """
        self._check_fitted()
        x, mask = raw_window_inputs(self.scaler_, windows)  # (N, L, D) -> (N, D, L)
        pred = run_predictor(self.predictor(), x, mask, self.train_config.device)
        return window_stand_ins(self.schema_, pred, windows)

    def backtest(self, df: pd.DataFrame, start: int | float | str | pd.Timestamp | None = None, stride: int = 1) -> Backtest:
        """Rolling-origin forecasts with the fitted model (no refitting) and their errors.

        Args:
            df: a frame with the training columns and frequency.
            start: first forecast step: a row number, a fraction of the rows, or a timestamp; default the
                first row after the rows the model was fitted on when `df` holds them (so the scores are
                out-of-sample), else the earliest possible (row `seq_len`); a start on fitted rows warns.
            stride: steps between consecutive forecast origins.
        """
        self._check_fitted()
        check_stride(stride)
        frame = inference_frame(self.schema_, df, "the backtest frame")
        origins = forecast_origins(frame, self.schema_, start, stride)
        return run_backtest(self.predictor(), self.schema_, frame, origins, self.train_config)

    def attention(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The D×D channel-attention matrix averaged over every window of `df` (default: the last window seen).

        Row i gives how much channel i draws on each channel; rows and columns are named by channel.
        An ensemble's is the mean of its networks' matrices.
        """
        self._check_fitted()
        members = attending_members(self.net_)
        frame = self._history(df, "the frame") if df is not None else self._history(None, "the frame").iloc[-self.seq_len_ :]
        return attention_matrix(members, self.schema_, frame)

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
        return save_forecaster(path, self.net_, self.schema_, self._options(), overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> Forecaster:
        """Load a directory written by `save`; refuses one that is incomplete, altered or incompatible.

        Args:
            device: where to forecast ("cpu", "cuda", "auto", ...); default the `TrainConfig` default.
                Whatever device the model was fitted on, it loads on any machine.
        """
        schema, net, arguments = read_forecaster(path, device)
        try:
            self = cls(**arguments)
        except (TypeError, ValueError) as exc:
            raise invalid_section(path, exc) from None
        self.schema_, self.net_ = schema, serving_network(net, self.quantiles)
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
    def _options(self) -> ForecastOptions:
        """The options as the fitting and forecasting functions take them."""
        return ForecastOptions(
            self.horizon,
            self.seq_len,
            self.quantiles,
            self.calibrate,
            self.ensemble,
            self.freq,
            self.season,
            self.model_options,
            self.log_dir,
            self.train_config,
            self.fallback,
            self._given_train_options,
            self.warm_start,
        )

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise DataError("this Forecaster is not fitted yet; call fit(df) or Forecaster.load(path) first")

    def _history(self, df: pd.DataFrame | None, source: str) -> pd.DataFrame:
        """`df` on the fitted grid, or the last rows fitted on when `df` is None; a loaded model has none."""
        if df is not None:
            return inference_frame(self.schema_, df, source)
        if self._context is None:
            raise DataError(NO_HISTORY)
        return self._context
