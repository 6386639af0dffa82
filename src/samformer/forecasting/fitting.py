"""`Forecaster.fit` as functions: the look-back search, one network or an ensemble, then calibration and the baseline comparison.

`fit_frame` runs the whole pipeline on a prepared frame (`samformer.forecasting.preparation`) and returns
the fitted state as a `Fitted`; the `Forecaster` only keeps it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn

from samformer.data.channels import ChannelSpec
from samformer.data.series import SplitData
from samformer.forecasting.backtest import compare_with_baselines
from samformer.forecasting.budget import stretched_config, warn_if_capped
from samformer.forecasting.inference import run_predictor
from samformer.forecasting.lookback import Trial, search_lookback
from samformer.forecasting.options import ForecastOptions
from samformer.forecasting.predictor import Predictor
from samformer.forecasting.preparation import Prepared, prepare_frame, run_data, searched_lookbacks
from samformer.forecasting.schema import FrameSchema
from samformer.forecasting.stand_ins import choose as choose_stand_ins
from samformer.forecasting.stand_ins import forecasts_at, replace_with
from samformer.metrics import QuantileLoss
from samformer.nn.model import SAMformer
from samformer.nn.quantile import PointQuantiles, QuantileSAMformer, calibrate
from samformer.nn.stacked import MeanForecast, StackedSAMformer
from samformer.nn.warm_start import start_from_seasonal_naive
from samformer.training.config import TrainConfig, TrainResult, seed_everything
from samformer.training.fit import fit
from samformer.training.logs import MetricsLogger
from samformer.training.stacked.fit import fit_stacked, seeded_models

CALIBRATION_FOLDS = 2  # earlier folds whose residuals join the validation rows' in the calibration
FEW_CALIBRATION_WINDOWS = 50  # with at least this many validation windows, the validation rows alone calibrate
MIN_FOLD_WINDOWS = 8  # training windows a fold needs before it


@dataclass
class Run:
    """One trained network with the schema and data it was trained on."""

    net: SAMformer | QuantileSAMformer | MeanForecast
    schema: FrameSchema
    data: SplitData
    result: TrainResult
    logged: bool  # whether its epochs were written to log_dir as they ran


@dataclass
class Fitted:
    """What fitting leaves in a `Forecaster`."""

    schema: FrameSchema  # the final run's, with history, calibration and the look-back search
    net: nn.Module  # the network as served: quantile heads, or an ensemble's mean (with calibrated copies for quantiles)
    validation: pd.DataFrame  # the model against the naive baselines on the validation rows
    context: pd.DataFrame  # the rows fitted on, the user's channels: what `predict()` forecasts from


def fit_frame(df: pd.DataFrame, spec: ChannelSpec, val_size: int | float, options: ForecastOptions) -> Fitted:
    """Train on `df` as `Forecaster.fit` describes: search the look-back if not given, then train the final run."""
    prepared = prepare_frame(df, spec, val_size, options)
    options = with_budget(prepared, options)
    full_epochs = options.train_config.epochs
    run, selection = None, None
    if options.seq_len is None:
        trial = partial(train_trial, prepared, options)
        run, selection = search_lookback(searched_lookbacks(prepared), trial, options.train_config.restart_period, full_epochs)
    seq_len = options.seq_len if run is None else run.schema.seq_len
    if options.ensemble > 1:  # after the single-seed search: the ensemble trains at the look-back it chose
        run = ensemble_run(prepared, options, seq_len)
    elif run is None:
        run = train_trial(prepared, options, seq_len, full_epochs).run
    warn_if_capped(run.result, options.train_config, stacklevel=4)  # the final run (a search run kept as final stopped early)
    return finish(prepared, options, run, selection)


def build_net(schema: FrameSchema, options: ForecastOptions) -> SAMformer | QuantileSAMformer:
    """A new network for the schema's channels and look-back, with the options' model settings and outputs."""
    n_out = schema.horizon * (len(options.quantiles) if options.quantile_heads else 1)
    targets = schema.channels.roles().targets
    net = SAMformer(len(schema.channels.columns), schema.seq_len, n_out, target_channels=targets, **options.model_options)
    season = schema.season_steps
    if options.warm_start and season is not None and season <= schema.seq_len:
        start_from_seasonal_naive(net, season, n_out // schema.horizon)
    return QuantileSAMformer(net, options.quantiles) if options.quantile_heads else net


def train_trial(prepared: Prepared, options: ForecastOptions, seq_len: int, epochs: int) -> Trial[Run]:
    """Train a network with look-back `seq_len` for at most `epochs` epochs (same seed every time)."""
    schema, data = run_data(prepared, seq_len)
    seed_everything(options.train_config.seed)
    net = build_net(schema, options)
    logged = options.log_dir is not None and epochs == options.train_config.epochs
    callbacks = (MetricsLogger(options.log_dir),) if logged else ()
    criterion = QuantileLoss(options.quantiles) if options.quantile_heads else None
    config = dataclasses.replace(options.train_config, epochs=epochs)
    result: TrainResult = fit(net, data, config, callbacks, criterion=criterion)
    net.cpu().eval()
    return Trial(seq_len, result.val_mse, result.epochs_run, Run(net, schema, data, result, logged))


def with_budget(prepared: Prepared, options: ForecastOptions) -> ForecastOptions:
    """`options` with epochs of at least `budget.MIN_STEPS_PER_EPOCH` optimizer steps on small data (`budget.stretched_config`).

    Counted at the longest look-back tried (the fewest training windows), once for the whole fit, so that the search's
    runs and the final run share one unit of epochs.
    """
    longest = options.seq_len or max(searched_lookbacks(prepared))
    n_windows = max(1, prepared.train_end - longest - options.horizon + 1)
    return dataclasses.replace(options, train_config=stretched_config(options.train_config, n_windows, options.given))


def ensemble_run(prepared: Prepared, options: ForecastOptions, seq_len: int) -> Run:
    """Train the `ensemble` networks of seeds seed, seed + 1, ... together in one stacked pass at look-back `seq_len`.

    Network j is the one a single-network forecaster with seed seed + j would train; the run's
    history is the first network's.
    """
    schema, data = run_data(prepared, seq_len)
    schema = schema.replace(ensemble=options.ensemble)
    seeds = range(options.train_config.seed, options.train_config.seed + options.ensemble)
    models = seeded_models(partial(build_net, schema, options), seeds)
    results = fit_stacked(models, data, [dataclasses.replace(options.train_config, seed=seed) for seed in seeds])
    stack = StackedSAMformer([model.cpu() for model in models]).eval()
    return Run(MeanForecast(stack), schema, data, results[0], logged=False)


def finish(prepared: Prepared, options: ForecastOptions, run: Run, selection: pd.DataFrame | None) -> Fitted:
    """Calibrate the final run's intervals and compare it with the baselines on the validation rows."""
    if options.log_dir is not None and not run.logged:  # a search run kept as final: write its epochs now
        logger = MetricsLogger(options.log_dir)
        for record in run.result.history:
            logger(run.net, dict(record))
    predictor = Predictor(run.net, run.schema)
    forecasts, actuals = validation_forecasts(predictor, run.data, options.train_config)  # (N, H, D_t[, Q]), (N, H, D_t)
    net, quantiles = run.net, options.quantiles
    if quantiles and not options.quantile_heads:  # the ensemble's mean: every level starts at it
        forecasts = np.repeat(forecasts[..., None], len(quantiles), axis=-1)  # (N, H, D_t) -> (N, H, D_t, Q)
        net = PointQuantiles(run.net, quantiles)
    origins = np.arange(prepared.train_end, len(prepared.values) - options.horizon + 1)
    forecasts, stand_ins = with_stand_ins(prepared, options, run.schema, forecasts, actuals, origins)
    calibration = None
    if quantiles and options.calibrate:
        pairs = [(forecasts, actuals), *(fold_forecasts(prepared, options, run.schema, stand_ins) if options.quantile_heads else [])]
        calibration = calibrate(np.concatenate([f for f, _ in pairs]), np.concatenate([a for _, a in pairs]), quantiles)
    rows = [] if selection is None else selection.reset_index().to_dict("records")
    schema = run.schema.replace(
        history=run.result.history,
        interval_offsets=None if calibration is None else calibration.offsets,
        interval_floor=None if calibration is None else calibration.floor,
        selection=[{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows],
        stand_ins=stand_ins,
        fitted_until=prepared.frame.index[-1].isoformat(),
    )
    point = forecasts if quantiles is None else forecasts[..., quantiles.index(0.5)]
    validation = compare_with_baselines(schema, point, actuals, prepared.values, origins)
    context = prepared.frame[schema.channels.user_columns]  # predict() forecasts after it; a stand-in reads all of it
    return Fitted(schema, net, validation, context)


def fold_forecasts(
    prepared: Prepared, options: ForecastOptions, schema: FrameSchema, stand_ins: dict[str, str]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forecasts and actuals of earlier folds for the calibration, when the validation rows hold few windows.

    Fold k (1, 2, ...) ends where fold k − 1 began: a network with the final look-back is trained on the rows before
    it, as the final one was on the rows before the validation part, and forecasts the fold's `n_val` rows, with the
    same stand-ins (fitted on the rows before the fold). Up to `CALIBRATION_FOLDS` folds, while the validation
    windows number fewer than `FEW_CALIBRATION_WINDOWS` and each fold's training rows hold `MIN_FOLD_WINDOWS`
    windows. The scaler stays the one fitted on the training rows, which include the folds' rows.
    """
    H, L = options.horizon, schema.seq_len
    n_val = len(prepared.values) - prepared.train_end
    if n_val - H + 1 >= FEW_CALIBRATION_WINDOWS:
        return []
    folds = []
    targets, season = list(schema.channels.targets), schema.season_steps
    quiet = dataclasses.replace(options, log_dir=None)  # log_dir records the final network's epochs only
    for k in range(1, CALIBRATION_FOLDS + 1):
        start = prepared.train_end - k * n_val
        if start - L - H + 1 < MIN_FOLD_WINDOWS:
            break
        end = start + n_val
        fold = dataclasses.replace(prepared, frame=prepared.frame.iloc[:end], values=prepared.values[:end], train_end=start)
        run = train_trial(fold, quiet, L, options.train_config.epochs).run
        forecasts, actuals = validation_forecasts(Predictor(run.net, run.schema), run.data, options.train_config)
        if stand_ins:
            target_values = fold.values[:, schema.channels.target_indices]
            origins = np.arange(start, end - H + 1)
            forecasts = replace_with(forecasts, stand_ins, targets, forecasts_at(stand_ins, targets, target_values, origins, H, season))
        folds.append((forecasts, actuals))
    return folds


def with_stand_ins(
    prepared: Prepared, options: ForecastOptions, schema: FrameSchema, forecasts: np.ndarray, actuals: np.ndarray, origins: np.ndarray
) -> tuple[np.ndarray, dict[str, str]]:
    """The validation forecasts (N, H, D_t[, Q]) with statistical stand-ins where validation prefers them, and the stand-ins.

    Nothing changes with `fallback=False`. Says which channels changed in one line (a `UserWarning`).
    """
    if not options.fallback:
        return forecasts, {}
    targets = list(schema.channels.targets)
    point = forecasts if options.quantiles is None else forecasts[..., options.quantiles.index(0.5)]  # (N, H, D_t)
    target_values = prepared.values[:, schema.channels.target_indices]  # (T, D_t)
    stand_ins, candidates = choose_stand_ins(point, actuals, targets, target_values, prepared.train_end, origins, schema.season_steps)
    if not stand_ins:
        return forecasts, {}
    replacements = np.stack([candidates[stand_ins.get(t, "naive")][..., d] for d, t in enumerate(targets)], axis=-1)  # (N, H, D_t)
    warn_stand_ins(stand_ins)
    return replace_with(forecasts, stand_ins, targets, replacements), stand_ins


def warn_stand_ins(stand_ins: dict[str, str]) -> None:
    """One line, pointing at the caller of `Forecaster.fit`, naming the channels a statistical forecaster serves."""
    used = ", ".join(f"{target}: {name.replace('_', ' ')}" for target, name in stand_ins.items())
    warnings.warn(
        f"validation prefers a statistical forecaster on {len(stand_ins)} channel(s) ({used}); the model uses it there "
        f"(forecasters_, validation_); Forecaster(fallback=False) keeps SAMformer on every channel",
        UserWarning,
        stacklevel=6,  # this function, with_stand_ins, finish, fit_frame, Forecaster.fit, its caller
    )


def validation_forecasts(predictor: Predictor, data: SplitData, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts (N, H, D_targets[, Q]) of every validation window and what happened (N, H, D_targets), original units."""
    windows = data.windows("val")
    forecasts, actuals = [], []
    for idx in torch.arange(len(windows)).split(config.eval_batch_size):
        x, y = windows.batch(idx)  # (B, D, L), (B, D_targets, H)
        masks = windows.batch_mask(idx)
        forecasts.append(run_predictor(predictor, x, None if masks is None else masks[0], config.device))
        actual = predictor.to_original_units(y.to(predictor.mean.device)).cpu().numpy()  # (B, H, D_targets)
        if masks is not None:
            actual[~masks[1].transpose(1, 2).numpy()] = np.nan
        actuals.append(actual)
    return np.concatenate(forecasts), np.concatenate(actuals)


def warn_if_no_skill(table: pd.DataFrame) -> None:
    """One-line warning, pointing at the caller of `Forecaster.fit`, when the model's validation MSE is not below the better baseline's."""
    overall = table.loc["overall"]
    served = (table["forecaster"].iloc[:-1] != "samformer").any()  # a stand-in may be a baseline itself: a tie is no loss
    if overall["skill"] > (-1e-9 if served else 0) or not np.isfinite(overall["skill"]):
        return
    baseline = overall["best_baseline"]
    warnings.warn(
        f"the model does not beat the {baseline.replace('_', ' ')} baseline on the validation rows (MSE {overall['mse']:.4g} vs "
        f"{overall[f'{baseline}_mse']:.4g}, standardised; skill {overall['skill']:+.1%}); compare backtest(...).summary() before using it",
        UserWarning,
        stacklevel=3,  # this function, Forecaster.fit, its caller
    )
