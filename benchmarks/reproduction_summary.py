"""Issue 18: a reproduction of the paper's table (`benchmarks/reproduce.sh`) against the committed fp32 table.

Reads stored run files only. For every cell both directories hold (SAMformer, same dataset and horizon, any
precision), it prints the two mean test MSEs over seeds, then the mean over those cells and their relative
difference (the issue's target: within 1 %), the worker seconds each dataset's stacks took (`stack_seconds_by_dataset`)
and the phases' wall times from the reproduction's log. Run it from the repository root.

    python benchmarks/reproduction_summary.py results/benchmark/reproduction/runs \\
        [--reference results/benchmark/runs] [--log results/benchmark/reproduction/wall_times.txt] [--out summary.json]

The last stdout line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from samformer.experiments.store import iter_runs
from samformer.experiments.tables import summarise

TARGET = 0.01  # the reproduction's mean MSE within 1 % of the fp32 table's


def samformer_cells(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """SAMformer's cells under `root`, by (dataset, horizon), whatever their protocol label (precision included)."""
    return {(c["dataset"], c["horizon"]): c for c in summarise(root) if c["variant"] == "samformer"}


def stack_seconds_by_dataset(root: Path) -> dict[str, float]:
    """Worker seconds per dataset: per cell, the longest time its seeds recorded (a cell's seeds train as one
    stack, and each stacked run records the seconds until it left the stack), summed over the cells."""
    longest: dict[tuple[str, int], float] = {}
    for _, record in iter_runs(root):
        if record["variant"] == "samformer":
            key = (record["dataset"], record["horizon"])
            longest[key] = max(longest.get(key, 0.0), record.get("train_seconds", 0.0))
    totals: dict[str, float] = {}
    for (dataset, _), seconds in longest.items():
        totals[dataset] = totals.get(dataset, 0.0) + seconds
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the reproduction's run files")
    parser.add_argument("--reference", type=Path, default=Path("results/benchmark/runs"), help="the fp32 table's run files")
    parser.add_argument("--log", type=Path, help="the reproduction's wall_times.txt (default: beside RUNS)")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()
    for name, path in (("RUNS", args.runs), ("--reference", args.reference)):
        if not path.is_dir():
            parser.error(f"{name} {path} is not a directory of run files (run it from the repository root, or give the path)")

    new, reference = samformer_cells(args.runs), samformer_cells(args.reference)
    common = sorted(set(new) & set(reference))
    print(f"{'dataset':<14} {'H':>4} {'seeds':>5} {'reproduction':>12} {'fp32 table':>10} {'diff':>7}  precision")
    for key in common:
        a, b = new[key], reference[key]
        precision = (a["train_config"] or {}).get("precision", "?")
        diff = a["mse_mean"] / b["mse_mean"] - 1
        print(f"{key[0]:<14} {key[1]:>4} {a['n_seeds']:>5} {a['mse_mean']:>12.4f} {b['mse_mean']:>10.4f} {diff:>+7.2%}  {precision}")
    summary: dict[str, Any] = {"cells_compared": len(common), "cells_in_reproduction": len(new), "cells_in_reference": len(reference)}
    if common:
        mean_new = statistics.fmean(new[k]["mse_mean"] for k in common)
        mean_ref = statistics.fmean(reference[k]["mse_mean"] for k in common)
        relative = mean_new / mean_ref - 1
        summary |= {"mean_mse_reproduction": mean_new, "mean_mse_reference": mean_ref, "relative_difference": relative}
        summary["within_target"] = abs(relative) <= TARGET
        print(f"mean over {len(common)} cells: {mean_new:.4f} vs {mean_ref:.4f} ({relative:+.2%}; target within {TARGET:.0%})")
    summary["stack_seconds_by_dataset"] = stack_seconds_by_dataset(args.runs)
    for dataset, seconds in summary["stack_seconds_by_dataset"].items():
        print(f"{dataset}: {seconds:.0f} worker seconds (its cells' stacks, one after the other)")
    log = args.log or args.runs.parent / "wall_times.txt"
    if log.exists():
        summary["phases"] = log.read_text().splitlines()
        print("phases:", *summary["phases"], sep="\n  ")
    line = json.dumps(summary)
    if args.out:
        args.out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
