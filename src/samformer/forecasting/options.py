"""`ForecastOptions`: a `Forecaster`'s constructor options, checked once, as the fitting and forecasting functions read them."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any

from samformer.checks import check_bool, check_path
from samformer.errors import ConfigError
from samformer.forecasting.arguments import check_model_options, check_positive_int, check_quantile_levels
from samformer.nn.model import SAMformerConfig
from samformer.nn.stackable import model_blockers
from samformer.training.config import TrainConfig
from samformer.training.stacked.stackable import training_blockers

MODEL_OPTIONS = {f.name for f in fields(SAMformerConfig)} - {"n_channels", "seq_len", "horizon"}  # set by the data, not the user
TRAIN_OPTIONS = {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class ForecastOptions:
    """What a `Forecaster` was asked for (see its docstring for each option); the fitted state is its `FrameSchema`."""

    horizon: int
    seq_len: int | None  # None: chosen on the validation rows
    quantiles: tuple[float, ...] | None  # sorted, 0.5 included
    calibrate: bool
    ensemble: int
    freq: str | None
    season: int | None
    model_options: dict[str, Any]
    log_dir: str | os.PathLike | None
    train_config: TrainConfig
    fallback: bool = True  # statistical stand-ins where validation prefers them (False: SAMformer on every channel)
    given: frozenset[str] = frozenset()  # the training options the user set (the budget leaves them as given)
    warm_start: bool = False  # start the forecaster at seasonal naive (`samformer.nn.warm_start`) when season <= seq_len

    @classmethod
    def checked(
        cls,
        horizon: Any,
        seq_len: Any,
        *,
        quantiles: Any,
        calibrate: bool,
        ensemble: Any,
        freq: str | None,
        season: Any,
        model_options: dict[str, Any] | None,
        log_dir: str | os.PathLike | None,
        train_options: dict[str, Any],
        fallback: Any = True,
        warm_start: Any = False,
    ) -> ForecastOptions:
        """The options after checking each: a one-line `ConfigError` or `TypeError` naming the first that is wrong."""
        horizon = check_positive_int("horizon", horizon)
        seq_len = check_positive_int("seq_len", seq_len, optional=True)
        season = check_positive_int("season", season, optional=True)
        unknown = set(train_options) - TRAIN_OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; training options are: {', '.join(sorted(TRAIN_OPTIONS))}")
        bad_model = set(check_model_options(model_options)) - MODEL_OPTIONS
        if bad_model:
            raise TypeError(f"unknown model option(s) {', '.join(sorted(bad_model))}; choose from {', '.join(sorted(MODEL_OPTIONS))}")
        quantiles = check_quantile_levels(quantiles)
        calibrate = check_bool("calibrate", calibrate)
        model_options = check_model_options(model_options)
        log_dir = None if log_dir is None else check_path("log_dir", log_dir)
        train_config = TrainConfig(**train_options)
        fallback = check_bool("fallback", fallback)
        given = frozenset(train_options)
        warm_start = check_bool("warm_start", warm_start)
        fields_ = (horizon, seq_len, quantiles, calibrate, ensemble, freq, season, model_options, log_dir, train_config)
        options = cls(*fields_, fallback, given, warm_start)
        options.check_ensemble()
        return options

    @property
    def quantile_heads(self) -> bool:
        """Whether the network forecasts the quantiles itself (trained with the pinball loss): not in an ensemble."""
        return self.quantiles is not None and self.ensemble == 1

    def check_ensemble(self) -> None:
        """One-line `ConfigError` for an `ensemble` that is not a model count, or that the other options exclude."""
        ensemble = self.ensemble
        if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
            raise ConfigError(f"ensemble must be a positive integer (the number of seeds whose forecasts are averaged), got {ensemble!r}")
        if ensemble == 1:
            return
        seeds = [dataclasses.replace(self.train_config, seed=self.train_config.seed + j) for j in range(ensemble)]
        excluded = [f"model_options {b}" for b in model_blockers([self.model_options] * ensemble)]  # the stacking rule
        excluded += [str(b) for b in training_blockers(seeds)]
        forecaster_only = {
            "calibrate=False (an ensemble's intervals come only from calibration)": self.quantiles and not self.calibrate,
            "log_dir (per-epoch logs are written for a single network)": self.log_dir is not None,
        }
        excluded += [option for option, present in forecaster_only.items() if present]
        if excluded:
            raise ConfigError(f"ensemble={ensemble} cannot be combined with {excluded[0]}; use ensemble=1 or drop that option")
