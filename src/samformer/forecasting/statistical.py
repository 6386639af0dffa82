"""Statistical forecasters that stand in for SAMformer on a channel where validation says they do better.

Four candidates: **naive** and **seasonal naive** (`samformer.forecasting.baselines`), and **ETS** and **Theta**
(statsforecast's `AutoETS` and `AutoTheta`, when the optional statsforecast package is installed: `pip install
"samformer[stats]"`; it is an extra because it caps pandas below 3). ETS and Theta are fitted once per channel
on the rows before the validation part and then applied, with their parameters fixed, at each rolling origin
(statsforecast's `forward`), as SAMformer's network is; for a forecast after `fit` they are fitted again on the
whole history given, as a statistical forecaster is refitted on the latest data.

`choose_forecasters` keeps, per channel, the forecaster with the lowest validation MSE, SAMformer on a tie.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable

import numpy as np

from samformer.forecasting.baselines import naive_forecasts, seasonal_naive_forecasts

SAMFORMER = "samformer"
FITTED_CANDIDATES = ("ets", "theta")  # fitted models, from statsforecast
HISTORY_ROWS = 1000  # ETS and Theta are fitted on, and forecast from, at most this many latest rows
MAX_FITTED_ORIGINS = 64  # origins at which ETS and Theta are scored when choosing (all of them afterwards)
TIE = 1e-9  # MSE differences below this share of a channel's variance are rounding, not skill


def statsforecast_installed() -> bool:
    """Whether the optional `statsforecast` package can be imported (the ETS and Theta candidates need it)."""
    return importlib.util.find_spec("statsforecast") is not None


def candidate_names(season: int | None) -> tuple[str, ...]:
    """The candidates here: naive, seasonal naive when there is a season, ETS and Theta when statsforecast is installed."""
    names = ("naive",) + (("seasonal_naive",) if season is not None and season > 1 else ())
    return names + (FITTED_CANDIDATES if statsforecast_installed() else ())


def _model_class(name: str) -> Callable[..., object]:
    """statsforecast's class for `name`; an ImportError saying which extra to install when statsforecast is absent
    (a model saved with an ETS or Theta stand-in, loaded where the extra is not installed)."""
    try:
        from statsforecast.models import AutoETS, AutoTheta
    except ImportError:
        raise ImportError(f"this model forecasts with {name.upper()} (statsforecast): pip install 'samformer[stats]'") from None
    return {"ets": AutoETS, "theta": AutoTheta}[name]


def _season_for(name: str, season: int | None, n_rows: int) -> int:
    """The season length given to statsforecast: 1 (none) unless two full seasons fit in the rows."""
    return season if season is not None and season > 1 and n_rows >= 2 * season + 2 else 1


def _fitted(name: str, history: np.ndarray, season: int | None) -> object | None:
    """A statsforecast model fitted on `history` (T,), or None when it cannot fit these rows."""
    rows = _filled(history)[-HISTORY_ROWS:]
    if len(rows) < 4 or np.ptp(rows) == 0:
        return None
    model = _model_class(name)(season_length=_season_for(name, season, len(rows)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast's convergence notes; a failed fit is handled below
        try:
            return model.fit(rows.astype(np.float64))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None


def _filled(series: np.ndarray) -> np.ndarray:
    """`series` (T,) with missing values carried forward and leading ones dropped (statsforecast takes no NaN)."""
    observed = ~np.isnan(series)
    if not observed.any():
        return series[:0]
    index = np.where(observed, np.arange(len(series)), 0)
    np.maximum.accumulate(index, out=index)
    return series[index][np.argmax(observed) :]


def _fitted_forecasts(
    name: str, values: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int, season: int | None, every: bool
) -> np.ndarray:
    """ETS or Theta fitted on rows [0, fit_end) of each channel, applied at each origin: (T, D) -> (N, H, D).

    Unless `every`, at most `MAX_FITTED_ORIGINS` origins, evenly spaced, get a forecast (NaN at the others).
    """
    out = np.full((len(origins), horizon, values.shape[1]), np.nan)
    chosen = np.arange(len(origins)) if every else np.unique(np.linspace(0, len(origins) - 1, MAX_FITTED_ORIGINS).round().astype(int))
    for d in range(values.shape[1]):
        model = _fitted(name, values[:fit_end, d], season)
        if model is None:
            continue
        for i in chosen:
            history = _filled(values[: origins[i], d])[-HISTORY_ROWS:]
            if len(history) >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[i, :, d] = model.forward(history, h=horizon)["mean"]
    return out


def candidate_forecasts(
    values: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    names: tuple[str, ...] | None = None,
    every: bool = True,
) -> dict[str, np.ndarray]:
    """Each candidate's forecasts (N, H, D) made at `origins` of `values` (T, D); ETS/Theta fitted on rows before `fit_end`.

    `names`: the candidates wanted (default `candidate_names(season)`). `every=False` (for choosing): ETS and
    Theta forecast at most `MAX_FITTED_ORIGINS` origins, evenly spaced, and are compared with SAMformer on those.
    A candidate that cannot forecast a channel (too few rows, a constant channel) has NaN there and is not chosen.
    """
    forecasts: dict[str, np.ndarray] = {}
    for name in candidate_names(season) if names is None else names:
        if name == "naive":
            forecasts[name] = naive_forecasts(values, origins, horizon)
        elif name == "seasonal_naive":
            forecasts[name] = seasonal_naive_forecasts(values, origins, horizon, season)
        else:
            forecasts[name] = _fitted_forecasts(name, values, fit_end, origins, horizon, season, every)
    return forecasts


def choose_forecasters(model: np.ndarray, candidates: dict[str, np.ndarray], actuals: np.ndarray) -> list[str]:
    """Per channel, the forecaster whose validation MSE is lowest: `SAMFORMER` unless a candidate is strictly better.

    Each candidate is compared with the best so far on the values it forecast (NaN elsewhere: an origin it was not
    scored at, or a fit that failed). A later candidate must beat the best so far by more than `TIE` × the variance: on a tie (two exact
    forecasts, equal up to rounding) SAMformer, then the simpler candidate (in `candidate_names` order) stays.

    Args:
        model: SAMformer's point forecasts (N, H, D).
        candidates: name -> forecasts (N, H, D), NaN where the candidate has none.
        actuals: what happened (N, H, D), NaN where unobserved.
    """
    chosen = []
    for d in range(actuals.shape[2]):
        observed = ~np.isnan(actuals[..., d]) & ~np.isnan(model[..., d])
        best, best_forecast = SAMFORMER, model[..., d]
        margin = TIE * float(np.var(actuals[..., d][observed])) if observed.any() else 0.0
        for name, forecast in candidates.items():
            covered = observed & ~np.isnan(forecast[..., d])  # (N, H): the values it forecast, both compared there
            if not covered.any():
                continue
            mse = _mse(forecast[..., d], actuals[..., d], covered)
            if mse < _mse(best_forecast, actuals[..., d], covered) - margin:
                best, best_forecast = name, forecast[..., d]
        chosen.append(best)
    return chosen


def _mse(forecast: np.ndarray, actual: np.ndarray, observed: np.ndarray) -> float:
    return float(np.mean((forecast[observed] - actual[observed]) ** 2)) if observed.any() else np.inf


def forecast_channel(name: str, history: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
    """Candidate `name`'s forecast (H,) after `history` (T,): naive and seasonal naive directly, ETS/Theta refitted on it.

    NaN when the candidate cannot forecast this history (a fitted candidate on too few rows).
    """
    if name in FITTED_CANDIDATES:
        model = _fitted(name, history, season)
        if model is None:
            return np.full(horizon, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(model.predict(h=horizon)["mean"], dtype=np.float64)
    origin = np.array([len(history)])
    column = history[:, None]  # (T,) -> (T, 1)
    if name == "naive":
        return naive_forecasts(column, origin, horizon)[0, :, 0]
    return seasonal_naive_forecasts(column, origin, horizon, season)[0, :, 0]
