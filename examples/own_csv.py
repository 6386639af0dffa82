"""Forecast your own CSV: fit a Forecaster, forecast with timestamps, save, reload, plot.

    python examples/own_csv.py --csv FILE --horizon H [--date-column day] [--out runs/own_csv]
                               [--seq-len L] [--quantiles 0.1,0.9] [--freq B] [--seed 0]

The CSV needs one date column (found by name — date, ds, timestamp, time, datetime — or given with
--date-column, or else the first column if it parses as dates) and numeric channels, one row per
time step. The last H rows are held out: the model is fitted on the rows before them (its last 20%
drive early stopping), forecasts the held-out rows, and the figure compares the two. Then it
forecasts the H steps after the end of the file, saves the model, reloads it and checks that the
reloaded model gives the same forecast bit for bit.

By default the look-back is chosen on the validation rows (`Forecaster(seq_len=None)`); the script
prints the candidates and their validation scores, and the model's validation errors next to the
naive and seasonal-naive forecasts'.

Writes to --out: model/ (safetensors + JSON), logs/metrics.csv, forecast.csv (the next H steps),
holdout.csv (forecast vs actual on the held-out rows) and forecast.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from samformer import Forecaster
from samformer.data.series import DATE_COLUMNS
from samformer.plots import plot_forecast


def read_frame(path: str, date_column: str | None) -> pd.DataFrame:
    """The CSV as a frame indexed by its timestamps, one numeric column per channel."""
    frame = pd.read_csv(path)
    if date_column is None:
        named = [c for c in frame.columns if str(c).strip().lower() in DATE_COLUMNS]
        date_column = named[0] if named else frame.columns[0]  # else try the first column
    if date_column not in frame.columns:
        sys.exit(f"own_csv.py: no column {date_column!r} in {path}; columns are {list(frame.columns)}")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame.pop(date_column)), name="date")
    except (ValueError, TypeError) as exc:
        sys.exit(f"own_csv.py: column {date_column!r} of {path} does not parse as dates ({exc}); name the date column with --date-column")
    return frame.set_axis(index, axis=0).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True, help="your CSV: a date column and numeric channels")
    parser.add_argument("--horizon", type=int, required=True, help="number of future steps to forecast")
    parser.add_argument("--date-column", default=None, help="name of the date column (default: found by name, else the first column)")
    parser.add_argument("--out", default="runs/own_csv", help="output directory (default runs/own_csv)")
    parser.add_argument("--seq-len", type=int, default=None, help="look-back window (default: chosen on the validation rows)")
    parser.add_argument("--quantiles", default="0.1,0.9", help="interval levels, comma-separated ('' for a point forecast)")
    parser.add_argument("--freq", default=None, help="pandas frequency (h, D, B, W-FRI, ...); default: inferred")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = Path(args.out)
    if (out / "model").exists():
        sys.exit(f"own_csv.py: {out / 'model'} already exists; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    frame = read_frame(args.csv, args.date_column)
    H = args.horizon
    history, holdout = frame.iloc[:-H], frame.iloc[-H:]
    quantiles = tuple(float(q) for q in args.quantiles.split(",")) if args.quantiles else None
    print(f"{args.csv}: {len(frame)} rows × {frame.shape[1]} channels, {frame.index[0]} … {frame.index[-1]}")

    started = time.perf_counter()
    model = Forecaster(H, args.seq_len, quantiles=quantiles, freq=args.freq, seed=args.seed, log_dir=out / "logs", progress=False)
    model.fit(history)
    fit_seconds = time.perf_counter() - started
    best = min(model.history_, key=lambda r: r.get("val_loss", r["val_mse"]))
    print(f"fitted in {fit_seconds:.1f} s: frequency {model.freq_!r}, {len(model.history_)} epochs, best epoch {best['epoch']}")
    with pd.option_context("display.width", 160, "display.max_columns", 12, "display.precision", 4):
        if model.selection_ is not None:
            print(f"look-back chosen on the validation rows: {model.seq_len_}")
            print(model.selection_)
        print("validation rows: the model against the naive baselines (overall: standardised)")
        print(model.validation_[["mse", "naive_mse", "seasonal_naive_mse", "skill"]])

    # 1. the held-out rows: forecast vs what happened
    check = model.predict(history)
    check.to_csv(out / "holdout.csv", index_label="date")
    err = check[model.columns_].to_numpy() - holdout[model.columns_].to_numpy()
    scale = model.scaler_.std  # per-channel std of the training rows: errors on the standardised scale
    print(f"held-out last {H} rows: MSE {np.mean((err / scale) ** 2):.4f}, MAE {np.mean(np.abs(err / scale)):.4f} (standardised)")
    plot_forecast(check, history=history, actual=holdout, columns=model.columns_[:4], path=out / "forecast.png")

    # 2. the next H steps after the end of the file
    forecast = model.predict(frame)
    forecast.to_csv(out / "forecast.csv", index_label="date")
    with pd.option_context("display.width", 160, "display.max_columns", 12, "display.precision", 4):
        print(f"forecast of the {H} steps after {frame.index[-1]} (first rows; median = point forecast):")
        print(forecast[model.columns_].head())
        if quantiles:
            first = model.columns_[0]
            print(f"interval columns, e.g. {first}:")
            print(forecast[[c for c in forecast.columns if c.startswith(f"{first}_q")]].head())

    # 3. save, reload, and check the reloaded model forecasts identically
    model.save(out / "model")
    reloaded = Forecaster.load(out / "model")
    pd.testing.assert_frame_equal(reloaded.predict(frame), forecast, check_exact=True)
    print(f"saved to {out / 'model'}; the reloaded model gives the identical forecast")
    summary = {"out": str(out), "fit_seconds": round(fit_seconds, 1), "epochs_run": len(model.history_), "best_epoch": best["epoch"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
