"""Cost of the look-back search against a single fit, on ETTh1 with H = 96 (issue 19: at most 3x).

    OMP_NUM_THREADS=1 PYTHONPATH=src SAMFORMER_DATA=../shared/data python benchmarks/lookback_cost.py [--out FILE]

Both fits use the README's data (rows [0, 11520), the last 2880 for validation), seed 0 and the
defaults otherwise: a single fit with the paper's seq_len = 512, then `Forecaster(horizon=96)` with
the look-back chosen on the validation rows. Wall times on a shared machine are noisy: the two fits
run back to back in one process, and the JSON also gives the epochs each run trained.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from samformer import Forecaster


def timed_fit(df: pd.DataFrame, seq_len: int | None) -> tuple[Forecaster, float]:
    started = time.perf_counter()
    model = Forecaster(horizon=96, seq_len=seq_len, seed=0, progress=False).fit(df, val_size=2880)
    return model, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON file to write (default: stdout only)")
    args = parser.parse_args()
    path = Path(os.environ.get("SAMFORMER_DATA", "../shared/data")) / "ETTh1.csv"
    df = pd.read_csv(path, parse_dates=["date"], index_col="date").iloc[:11520]
    single, single_seconds = timed_fit(df, 512)
    searched, search_seconds = timed_fit(df, None)
    report = {
        "single_fit": {"seq_len": 512, "seconds": round(single_seconds, 1), "epochs": len(single.history_)},
        "search_fit": {
            "seq_len": searched.seq_len_,
            "seconds": round(search_seconds, 1),
            "final_epochs": len(searched.history_),
            "selection": searched.selection_.reset_index().to_dict("records"),
        },
        "ratio": round(search_seconds / single_seconds, 2),
        "validation_mse": {name: m.validation_.loc["overall", "mse"] for name, m in (("single_fit", single), ("search_fit", searched))},
        "load_average": os.getloadavg(),
    }
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
