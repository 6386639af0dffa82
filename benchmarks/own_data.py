"""The Forecaster with its defaults on public series nobody here tuned on (issue 19's targets).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/own_data.py [--out results/own_data] [--only taylor,...]

Series (shipped with packages installed in the environment; nothing is downloaded): pmdarima's
`taylor` (half-hourly electricity demand), vega_datasets' `seattle_weather` (daily, 4 numeric columns
and a text one), statsmodels' `co2` (weekly, with missing weeks), pmdarima's `sunspots` (monthly) and
statsmodels' `macrodata` (quarterly, 203 rows); plus vega_datasets' `stocks`, a long monthly panel
whose series start on different dates, as a check of the input path.

Protocol, the same for every series: the first 80 % of the rows are given to
`Forecaster(horizon=H, quantiles=(0.1, 0.9), seed=0)` — every other setting its default, so the
look-back is chosen on the last 20 % of those rows — and the model is backtested with rolling origins
(stride 1) over the remaining 20 %. H is the natural horizon of the frequency (a day, a week, a
quarter, a year, a year). Reported: the model's MSE against naive and seasonal naive
(`Backtest.summary()`, `overall` row: standardised, averaged over the channels), the skill
1 − MSE / best baseline MSE, the coverage of the [q0.1, q0.9] band over every held-out value, the
number of zero-width bands, the chosen look-back and the fit time. One JSON per series and a
forecast PNG (the last H held-out rows) are written as they finish, then `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from samformer import Forecaster
from samformer.plots import plot_forecast


def taylor() -> pd.DataFrame:
    from pmdarima.datasets import load_taylor

    y = load_taylor(as_series=True)  # June 5 – August 27, 2000, half-hourly (Taylor 2003)
    return pd.DataFrame({"demand": y.to_numpy()}, index=pd.date_range("2000-06-05", periods=len(y), freq="30min", name="date"))


def seattle_weather() -> pd.DataFrame:
    from vega_datasets import data

    return data.seattle_weather()  # date, 4 numeric columns, and `weather` (text), as shipped


def co2() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.co2.load_pandas().data  # weekly (Saturdays), 59 missing weeks left as NaN


def sunspots() -> pd.DataFrame:
    from pmdarima.datasets import load_sunspots

    y = load_sunspots(as_series=True)
    return pd.DataFrame({"sunspots": y.to_numpy()}, index=pd.DatetimeIndex(pd.to_datetime(y.index, format="%b %Y"), name="date"))


def macrodata() -> pd.DataFrame:
    import statsmodels.api as sm

    raw = sm.datasets.macrodata.load_pandas().data
    index = pd.PeriodIndex.from_fields(year=raw["year"].astype(int), quarter=raw["quarter"].astype(int), freq="Q").to_timestamp()
    return raw.drop(columns=["year", "quarter"]).set_axis(pd.DatetimeIndex(index, name="date"), axis=0)


def stocks() -> pd.DataFrame:
    from vega_datasets import data

    return data.stocks().rename(columns={"symbol": "unique_id", "date": "ds", "price": "y"})  # GOOG starts in 2004


# name -> (loader, horizon, fit keyword arguments)
SERIES: dict[str, tuple[Callable[[], pd.DataFrame], int, dict]] = {
    "taylor": (taylor, 48, {}),
    "seattle_weather": (seattle_weather, 7, {"target": ["precipitation", "temp_max", "temp_min", "wind"]}),
    "co2": (co2, 13, {}),
    "sunspots": (sunspots, 12, {}),
    "macrodata": (macrodata, 4, {}),
    "stocks": (stocks, 6, {}),
}


def rows_of(frame: pd.DataFrame, long: bool) -> pd.Index:
    return pd.Index(sorted(frame["ds"].unique())) if long else pd.Index(range(len(frame)))


def head(frame: pd.DataFrame, long: bool, n_rows: int) -> pd.DataFrame:
    """The first `n_rows` time steps of a wide or long frame."""
    if not long:
        return frame.iloc[:n_rows]
    dates = sorted(frame["ds"].unique())
    return frame[frame["ds"] < dates[n_rows]] if n_rows < len(dates) else frame


def interval_stats(bt, targets: list[str]) -> dict:
    """Coverage of [q0.1, q0.9] over every observed held-out value, and the narrowest band."""
    lo = bt.forecasts[[f"{c}_q0.1" for c in targets]].to_numpy()
    hi = bt.forecasts[[f"{c}_q0.9" for c in targets]].to_numpy()
    y = bt.actuals[targets].to_numpy()
    seen = ~np.isnan(y)
    inside = (lo <= y) & (y <= hi)
    return {
        "coverage": float(inside[seen].mean()),
        "below": float((y < lo)[seen].mean()),
        "above": float((y > hi)[seen].mean()),
        "zero_width_bands": int((hi - lo <= 0).sum()),
        "narrowest_band": float((hi - lo).min()),
    }


def run(name: str, out: Path) -> dict:
    loader, horizon, fit_options = SERIES[name]
    frame = loader()
    long = "unique_id" in frame.columns
    n = len(rows_of(frame, long))
    fit_rows = int(0.8 * n)
    train = head(frame, long, fit_rows)
    model = Forecaster(horizon=horizon, quantiles=(0.1, 0.9), seed=0, progress=False)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model.fit(train, **fit_options)
    seconds = time.perf_counter() - started
    bt = model.backtest(frame, start=fit_rows)
    summary = bt.summary()
    overall = summary.loc["overall"]
    result = {
        "series": name,
        "rows": n,
        "channels": len(model.targets_),
        "freq": model.freq_,
        "season": model.season_,
        "horizon": horizon,
        "fit_rows": fit_rows,
        "origins": int(bt.forecasts.index.get_level_values("cutoff").nunique()),
        "seq_len": model.seq_len_,
        "selection": model.selection_.reset_index().to_dict("records"),
        "epochs_run": len(model.history_),
        "fit_seconds": round(seconds, 1),
        "mse": overall["mse"],
        "naive_mse": overall["naive_mse"],
        "seasonal_naive_mse": overall.get("seasonal_naive_mse"),
        "best_baseline": overall["best_baseline"],
        "skill": overall["skill"],
        **interval_stats(bt, model.targets_),
        "fit_warnings": [str(w.message) for w in caught],
        "summary": summary.reset_index().to_dict("records"),
    }
    draw(model, frame, long, horizon, out / f"{name}.png")
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


def draw(model: Forecaster, frame: pd.DataFrame, long: bool, horizon: int, path: Path) -> None:
    """The forecast of the last `horizon` rows from the rows before them, against what happened."""
    n = len(rows_of(frame, long))
    history = head(frame, long, n - horizon)
    if long:
        actual = frame[~frame.index.isin(history.index)]
    else:
        wide = frame.set_index(frame.columns[0]) if not isinstance(frame.index, pd.DatetimeIndex) else frame
        history, actual = wide.iloc[: n - horizon][model.targets_], wide.iloc[n - horizon :][model.targets_]
        history.index, actual.index = pd.DatetimeIndex(history.index), pd.DatetimeIndex(actual.index)
    forecast = model.predict(history)
    plot_forecast(forecast, history=history, actual=actual, n_history=6 * horizon, path=path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/own_data")
    parser.add_argument("--only", default=",".join(SERIES), help="comma-separated series (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.only.split(","):
        result = run(name, out)
        results.append(result)
        keys = ("series", "seq_len", "fit_seconds", "mse", "best_baseline", "skill", "coverage", "zero_width_bands")
        print(json.dumps({k: result[k] for k in keys}, default=float), flush=True)
    (out / "summary.json").write_text(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
