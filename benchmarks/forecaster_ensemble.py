"""Fit time of `Forecaster(ensemble=k)` against one `Forecaster` on ETTh1 (H=96, seq_len=512, 2 epochs).

    OMP_NUM_THREADS=1 PYTHONPATH=src SAMFORMER_DATA=/work/shared/data python benchmarks/forecaster_ensemble.py [k] [fp32|bf16]

Prints one JSON line per fit as it finishes, then a summary line with the ratio and the machine's load.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from samformer import Forecaster


def main() -> None:
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    precision = sys.argv[2] if len(sys.argv) > 2 else "fp32"
    frame = pd.read_csv(Path(os.environ.get("SAMFORMER_DATA", "data")) / "ETTh1.csv", index_col="date", parse_dates=True)
    frame = frame.iloc[: 12 * 30 * 24 + 4 * 30 * 24]  # the paper's train + validation months of ETTh1
    seconds = {}
    for ensemble in (1, k):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = Forecaster(96, 512, ensemble=ensemble, epochs=2, progress=False, seed=0, precision=precision)
            model.fit(frame, val_size=4 * 30 * 24)
        seconds[ensemble] = time.perf_counter() - start
        val_mse = model.validation_.loc["overall", "mse"]
        print(json.dumps({"ensemble": ensemble, "fit_s": round(seconds[ensemble], 2), "val_mse": round(float(val_mse), 5)}), flush=True)
    print(
        json.dumps(
            {
                "k": k,
                "precision": precision,
                "fit_s_single": round(seconds[1], 2),
                "fit_s_ensemble": round(seconds[k], 2),
                "k_x_single_over_ensemble": round(k * seconds[1] / seconds[k], 2),
                "loadavg": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
