"""80% forecast intervals on ETTh1: fit a quantile Forecaster on the paper's train/val rows, backtest the test rows.

    SAMFORMER_DATA=../shared/data python examples/etth1_intervals.py [--out results/forecaster_etth1]

Splits as the paper (L = 512, H = 96): the forecaster is fitted on rows [0, 11520) with the last 2880
as validation (so its scaler sees rows [0, 8640) only) and backtested on every test window, origins
11520 … 14304 (2785 windows). Prints and writes (`summary.json`) the empirical coverage of the
[q0.1, q0.9] interval — as the network forecasts it ("raw") and after the Forecaster's conformal
calibration on the validation rows ("calibrated", the default: per horizon step, with a floor) — the
interval width and the median's MSE/MAE on the standardised scale, and draws the forecast, attention
and training figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from samformer import Forecaster
from samformer.data.benchmarks import locate
from samformer.data.series import read_series_csv
from samformer.plots import plot_attention, plot_forecast, plot_training

TRAIN_VAL_END, TEST_END, VAL_ROWS = 11520, 14400, 2880


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/forecaster_etth1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    frame = read_series_csv(locate("ETTh1"))
    started = time.perf_counter()
    model = Forecaster(96, 512, quantiles=(0.1, 0.5, 0.9), seed=args.seed, log_dir=out / "logs", progress=False)
    model.fit(frame.iloc[:TRAIN_VAL_END], val_size=VAL_ROWS)
    fit_seconds = time.perf_counter() - started

    summary = {"dataset": "ETTh1", "seq_len": 512, "horizon": 96, "seed": args.seed}
    calibrated = model.schema_
    raw = calibrated.replace(interval_offsets=None, interval_floor=None)
    for name, schema in (("raw", raw), ("calibrated", calibrated)):  # the network's quantiles, then calibrated
        model.schema_ = schema
        summary[name] = interval_quality(model, frame)
    summary |= {"epochs_run": len(model.history_), "fit_seconds": round(fit_seconds, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))

    # the last test window: forecast vs what happened
    history = frame.iloc[TEST_END - 96 - 512 : TEST_END - 96]
    actual_tail = frame.iloc[TEST_END - 96 : TEST_END]
    plot_forecast(model.predict(history), history=history, actual=actual_tail, columns=["HUFL", "MUFL", "OT"], path=out / "forecast.png")
    attention = model.attention(frame.iloc[TRAIN_VAL_END - 512 : TEST_END])  # averaged over the test windows
    plot_attention(attention, path=out / "attention.png", title="ETTh1 channel attention (test windows)")
    plot_training(model.history_, path=out / "training.png")


def interval_quality(model: Forecaster, frame) -> dict:
    """Coverage and width of [q0.1, q0.9] and the median's errors over every test window."""
    bt = model.backtest(frame.iloc[:TEST_END], start=TRAIN_VAL_END)
    cols = model.columns_
    lo = bt.forecasts[[f"{c}_q0.1" for c in cols]].to_numpy()
    hi = bt.forecasts[[f"{c}_q0.9" for c in cols]].to_numpy()
    actual = bt.actuals[cols].to_numpy()
    inside = (lo <= actual) & (actual <= hi)
    std = model.scaler_.std
    err = (bt.forecasts[cols].to_numpy() - actual) / std  # standardised, as the benchmark tables
    return {
        "test_windows": int(len(bt.forecasts) / 96),
        "coverage_80": float(inside.mean()),
        "coverage_80_per_channel": dict(zip(cols, inside.mean(axis=0).round(4).tolist(), strict=True)),
        "below_q0.1": float((actual < lo).mean()),
        "above_q0.9": float((actual > hi).mean()),
        "mean_width_standardised": float(((hi - lo) / std).mean()),
        "median_test_mse": float((err**2).mean()),
        "median_test_mae": float(np.abs(err).mean()),
    }


if __name__ == "__main__":
    main()
