"""Per-step coverage of calibrated 80 % bands when the noise grows over the horizon (issue 26, item 4's check).

    PYTHONPATH=src python benchmarks/interval_steps.py [--seeds 20] [--windows 400]

i.i.d. Gaussian noise of standard deviation 1, 2, 3, 4 at steps 1-4 around a zero median, zero-width raw bands, so the
calibration alone sets the width. For each seed: calibrate on `--windows` windows, measure the coverage of 20,000
fresh draws per step. Prints the mean per-step coverage with today's step scale (`samformer.nn.quantile.step_scale`:
each step's RMSE, never below an earlier step's) and with the cumulative RMSE over steps 1..h it replaced.
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch

from samformer.nn import quantile

SIGMA = np.array([1.0, 2.0, 3.0, 4.0])[None, :, None]  # (1, H, 1)


def cumulative_scale(median: np.ndarray, actuals: np.ndarray) -> np.ndarray:
    """The scale before issue 26: the RMSE of the median over steps 1..h, (H, D)."""
    err2 = (median - actuals) ** 2
    return np.sqrt(np.cumsum(err2.sum(axis=0), axis=0) / np.cumsum(np.ones_like(err2).sum(axis=0), axis=0))


def coverage(seed: int, windows: int) -> np.ndarray:
    """Per-step coverage (H,) of fresh draws by bands calibrated on `windows` windows."""
    rng = np.random.default_rng(seed)
    calibration = quantile.calibrate(np.zeros((windows, 4, 1, 3)), rng.normal(size=(windows, 4, 1)) * SIGMA, (0.1, 0.5, 0.9))
    bands = quantile.apply_offsets(torch.zeros(1, 4, 1, 3, dtype=torch.float64), torch.from_numpy(calibration.offsets), 1).numpy()
    fresh = rng.normal(size=(20_000, 4, 1)) * SIGMA
    return ((fresh >= bands[..., 0]) & (fresh <= bands[..., 2])).mean(axis=0)[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--windows", type=int, default=400)
    args = parser.parse_args()
    today = np.mean([coverage(s, args.windows) for s in range(args.seeds)], axis=0)
    with mock.patch.object(quantile, "step_scale", cumulative_scale):
        before = np.mean([coverage(s, args.windows) for s in range(args.seeds)], axis=0)
    print(f"per-step coverage of the 80 % band, mean of {args.seeds} seeds, {args.windows} calibration windows")
    print("  step scale (today):      ", " ".join(f"{c:.3f}" for c in today))
    print("  cumulative scale (before):", " ".join(f"{c:.3f}" for c in before))


if __name__ == "__main__":
    main()
