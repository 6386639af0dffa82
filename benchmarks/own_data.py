"""The Forecaster's defaults beside statsforecast's five peers on public real series (issue 26, item 5).

    cd <checkout> && OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 /work/venv-bench/bin/python benchmarks/own_data.py \
        [--out results/own_data] [--only airpassengers,nile,...] [--forecaster-options '{}'] [--pure-options '{}']

Environment (its own venv, so the statistical packages stay out of the project's):

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install -c .ci/constraints.txt -e . -r benchmarks/own_data-requirements.txt

Series: `benchmarks/own_data_series.py` (19 public real series shipped inside PyPI packages; nothing is
downloaded). Methods: `Forecaster(horizon=H, quantiles=(0.1, 0.9), seed=0, **forecaster_options)` (the
`default` column), the same with `**pure_options` (the `pure` column: pure SAMformer once the Forecaster
has an option to turn its statistical fallback off; when both option sets are equal the default's fit is
reused), and statsforecast's Naive, SeasonalNaive, AutoETS, AutoTheta and AutoARIMA.

Protocol, one for all: every model is fitted once, on the first 80 % of the rows (statsforecast on each
channel separately). Forecast origins lie every H rows over the remaining 20 %; at each origin every model
forecasts the next H rows from all rows before it (the Forecaster's `backtest(stride=H)`, statsforecast's
`forward`, which reuses the fitted parameters). H is one natural cycle of the frequency and m = H is the
season of the seasonal methods; annual series take H = 5 and m = 1. Score: MSE of the point forecast over
every observed held-out value, per channel divided by that channel's variance over the fitted rows, averaged
over the channels; coverage: share of observed held-out values inside the 80 % band ([q0.1, q0.9] for the
Forecaster, `level=[80]` for statsforecast). Missing values: statsforecast gets its inputs linearly
interpolated (leading gaps dropped); nobody is scored on a missing value. Fit time: wall seconds of `fit`
(statsforecast: summed over the channels, after one warm-up fit that compiles its kernels).

Writes `<out>/<series>.json` as each series finishes, then rebuilds `<out>/summary.json` and the table
`<out>/README.md` (`benchmarks/own_data_report.py`) from every series JSON made with the same options.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from own_data_report import atomic_write, comparisons, write_report
from own_data_series import SERIES, Series
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

from samformer import Forecaster

STAT_METHODS = {
    "naive": lambda m: Naive(),
    "seasonal_naive": lambda m: SeasonalNaive(season_length=m),
    "auto_ets": lambda m: AutoETS(season_length=m),
    "auto_theta": lambda m: AutoTheta(season_length=m),
    "auto_arima": lambda m: AutoARIMA(season_length=m),
}
FIT_SHARE = 0.8
LEVEL = 80  # the central band scored, % (the Forecaster's (0.1, 0.9) quantiles)


def wide_targets(frame: pd.DataFrame, series: Series) -> pd.DataFrame:
    """The forecast channels of a loader's frame as a wide frame on its time grid (rows = time steps)."""
    if "unique_id" in frame.columns:
        return frame.pivot(index="ds", columns="unique_id", values="y").sort_index()
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.set_index(frame.columns[0])
    targets = series.fit_options.get("target") or list(frame.select_dtypes("number").columns)
    return frame[targets].astype(float)


def head(frame: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """The first `n_rows` time steps of a wide or long frame."""
    if "unique_id" not in frame.columns:
        return frame.iloc[:n_rows]
    dates = np.sort(frame["ds"].unique())
    return frame[frame["ds"] < dates[n_rows]] if n_rows < len(dates) else frame


def interpolated(y: np.ndarray) -> np.ndarray:
    """A channel's values with inner and trailing gaps filled linearly (constant at the end), leading gaps cut."""
    filled = pd.Series(y).interpolate(limit_direction="forward").to_numpy()
    return filled[np.argmax(~np.isnan(filled)) :]


def stat_forecasts(values: np.ndarray, fit_rows: int, origins: np.ndarray, horizon: int, season: int) -> dict[str, dict]:
    """Each statsforecast method fitted once per channel, then forecasting from every origin.

    Returns: method -> {"point", "lo", "hi"}: arrays (N origins, H, D), and "fit_seconds"; a method that
    fails on a channel gets NaN forecasts there and its error message under "errors".
    """
    n_channels = values.shape[1]
    out = {}
    for name, make in STAT_METHODS.items():
        arrays = {k: np.full((len(origins), horizon, n_channels), np.nan) for k in ("point", "lo", "hi")}
        seconds, errors = 0.0, []
        for d in range(n_channels):
            try:
                model = make(season)
                started = time.perf_counter()
                model.fit(interpolated(values[:fit_rows, d]))
                seconds += time.perf_counter() - started
                for i, origin in enumerate(origins):
                    forecast = model.forward(y=interpolated(values[:origin, d]), h=horizon, level=[LEVEL])
                    arrays["point"][i, :, d] = forecast["mean"]
                    arrays["lo"][i, :, d] = forecast.get(f"lo-{LEVEL}", np.nan)
                    arrays["hi"][i, :, d] = forecast.get(f"hi-{LEVEL}", np.nan)
            except Exception as error:  # a benchmark records a peer's failure instead of stopping
                errors.append(f"channel {d}: {type(error).__name__}: {error}")
        out[name] = {**arrays, "fit_seconds": seconds, "errors": errors}
    return out


def library_forecasts(frame: pd.DataFrame, series: Series, fit_rows: int, targets: list[str], options: dict) -> dict:
    """The Forecaster fitted once on the first `fit_rows` steps, backtested every H steps after them."""
    model = Forecaster(horizon=series.horizon, quantiles=(0.1, 0.9), seed=0, progress=False, **options)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model.fit(head(frame, fit_rows), **series.fit_options)
    seconds = time.perf_counter() - started
    bt = model.backtest(frame, start=fit_rows, stride=series.horizon)
    n_origins = bt.forecasts.index.get_level_values("cutoff").nunique()
    shape = (n_origins, series.horizon, len(targets))  # rows are (cutoff, date) in order: (N·H, D) -> (N, H, D)
    columns = {"point": targets, "lo": [f"{c}_q0.1" for c in targets], "hi": [f"{c}_q0.9" for c in targets]}
    arrays = {k: bt.forecasts[cols].to_numpy(dtype=float).reshape(shape) for k, cols in columns.items()}
    return {
        **arrays,
        "actual": bt.actuals[targets].to_numpy(dtype=float).reshape(shape),
        "fit_seconds": seconds,
        "seq_len": model.seq_len_,
        "epochs_run": len(model.history_),
        "fit_warnings": [str(w.message) for w in caught],
    }


def scores(forecast: dict, actual: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Scaled MSE (channels averaged) and 80 % band coverage of one method's forecasts (N, H, D)."""
    seen = ~np.isnan(actual)
    err = np.where(seen, forecast["point"] - actual, np.nan)
    per_channel = np.nanmean(err**2, axis=(0, 1)) / scale**2  # (D,)
    inside = (forecast["lo"] <= actual) & (actual <= forecast["hi"])
    has_band = seen & ~np.isnan(forecast["lo"]) & ~np.isnan(forecast["hi"])
    return {
        "mse": None if np.isnan(per_channel).any() else float(per_channel.mean()),
        "mse_per_channel": [float(v) for v in per_channel],
        "band_inside": int(inside[has_band].sum()),
        "band_scored": int(has_band.sum()),
        "coverage": float(inside[has_band].mean()) if has_band.any() else None,
        "fit_seconds": round(float(forecast["fit_seconds"]), 2),
    }


def run(name: str, forecaster_options: dict, pure_options: dict, peers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every method on one series under the protocol; the per-series result record.

    `peers`: an earlier record of this series whose statsforecast scores are kept (they do not depend on samformer).
    """
    series = SERIES[name]
    frame = series.load()
    wide = wide_targets(frame, series)
    n, fit_rows = len(wide), int(FIT_SHARE * len(wide))
    origins = np.arange(fit_rows, n - series.horizon + 1, series.horizon)
    targets = [str(c) for c in wide.columns]
    values = wide.to_numpy(dtype=float)  # (T, D)
    default = library_forecasts(frame, series, fit_rows, targets, forecaster_options)
    pure = default if pure_options == forecaster_options else library_forecasts(frame, series, fit_rows, targets, pure_options)
    actual = np.stack([values[o : o + series.horizon] for o in origins])  # (N, H, D)
    if default["actual"].shape != actual.shape or not np.allclose(default["actual"], actual, equal_nan=True):
        raise RuntimeError(f"{name}: the Forecaster's backtest rows do not line up with the series' rows {origins.tolist()}")
    scale = np.nanstd(values[:fit_rows], axis=0)  # (D,), the fitted rows' standard scale
    methods = {k: scores(v, actual, scale) for k, v in {"default": default, "pure": pure}.items()}
    if peers is None:
        stats = stat_forecasts(values, fit_rows, origins, series.horizon, series.season)
        methods.update({k: scores(v, actual, scale) for k, v in stats.items()})
        stat_errors = {k: v["errors"] for k, v in stats.items() if v["errors"]}
    else:
        methods.update({k: v for k, v in peers["methods"].items() if k not in ("default", "pure")})
        stat_errors = peers.get("stat_errors", {})
    return {
        "series": name,
        "source": series.source,
        "freq": pd.infer_freq(wide.index[:50]) or "?",
        "rows": n,
        "channels": len(targets),
        "horizon": series.horizon,
        "season": series.season,
        "fit_rows": fit_rows,
        "origins": len(origins),
        "pure_reuses_default": pure is default,
        "seq_len": {"default": default["seq_len"], "pure": pure["seq_len"]},
        "epochs_run": {"default": default["epochs_run"], "pure": pure["epochs_run"]},
        "fit_warnings": {"default": default["fit_warnings"], "pure": pure["fit_warnings"]},
        "stat_errors": stat_errors,
        "methods": methods,
        "comparison": comparisons(methods),
    }


def warm_up() -> None:
    """Fit and forecast each statsforecast method once on a toy series, so no series' fit time pays the compilation."""
    toy = 10 + np.sin(np.arange(60) * 2 * np.pi / 12) + np.random.default_rng(0).normal(0, 0.1, 60)
    stat_forecasts(toy[:, None], 48, np.array([48]), 12, 12)


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}); pass an object such as '{{\"ensemble\": 3}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of Forecaster keyword arguments, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/own_data", help="output directory")
    parser.add_argument("--only", default=",".join(SERIES), help="comma-separated series (default: all, short ones first)")
    parser.add_argument("--forecaster-options", type=json_object, default={}, help="JSON kwargs for the default column's Forecaster")
    parser.add_argument("--pure-options", type=json_object, default={}, help="JSON kwargs for the pure column ('{\"fallback\": false}')")
    parser.add_argument("--skip-done", action="store_true", help="keep series whose JSON was made with the same options")
    parser.add_argument("--peers-from", type=Path, default=None, help="reuse the statsforecast scores of an earlier run's JSONs here")
    args = parser.parse_args()
    names = args.only.split(",")
    unknown = [n for n in names if n not in SERIES]
    if unknown:
        parser.error(f"unknown series {', '.join(unknown)}; choose from {', '.join(SERIES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"forecaster_options": args.forecaster_options, "pure_options": args.pure_options}
    command = "OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src python benchmarks/own_data.py " + shlex.join(sys.argv[1:])
    if args.peers_from is None:
        warm_up()
    for name in names:
        path = out / f"{name}.json"
        if args.skip_done and path.exists() and json.loads(path.read_text()).get("options") == options:
            continue
        peers = None if args.peers_from is None else json.loads((args.peers_from / f"{name}.json").read_text())
        result = {**run(name, **options, peers=peers), "options": options}
        atomic_write(path, json.dumps(result, indent=2) + "\n")
        brief = {k: (v["mse"], v["coverage"], v["fit_seconds"]) for k, v in result["methods"].items()}
        print(json.dumps({"series": name, "mse, coverage, fit s": brief}), flush=True)
        write_report(out, list(SERIES), options, command)


if __name__ == "__main__":
    main()
