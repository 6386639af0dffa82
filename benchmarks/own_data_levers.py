"""Each lever of issue 26 on the own-data series: the library's scaled MSE before and after it, beside AutoETS's.

    python benchmarks/own_data_levers.py [--results results/own_data] > results/own_data/levers.md

Reads the per-series JSONs that `benchmarks/own_data.py` wrote: `<results>/levers/before/` (the Forecaster before
the training budget and the stand-ins: commit 55d58f5's run), `<results>/` (today's: `pure` is the budget alone,
`fallback=False`; `default` adds the statistical stand-ins) and `<results>/levers/warm_start/` (the budget and
`warm_start=True`, `fallback=False`, on the series of at most 400 rows). Prints a markdown table and, per column, the
geometric mean of the MSE over AutoETS's on the series every column has. Then the 80 % band's coverage of today's
default without and with the calibration folds (`<results>/levers/calibration_folds/`: the default after them, on
the series of at most 400 rows), per series and pooled over every held-out value.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

COLUMNS = {  # column -> (folder under results, method in its JSON)
    "before (100 epochs)": ("levers/before", "default"),
    "budget": (".", "pure"),
    "budget + warm start": ("levers/warm_start", "default"),
    "budget + stand-ins (default)": (".", "default"),
}


def records(folder: Path) -> dict[str, dict]:
    """The per-series records of one run, by series name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.stem != "summary"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/own_data"))
    root = parser.parse_args().results
    runs = {column: (records(root / folder), method) for column, (folder, method) in COLUMNS.items()}
    today = runs["budget"][0]
    print("| series | rows | " + " | ".join(COLUMNS) + " | AutoETS | best of the five |")
    print("|---|---|" + "---|" * (len(COLUMNS) + 2))
    ratios: dict[str, list[float]] = {column: [] for column in COLUMNS}
    for name in sorted(today, key=lambda s: today[s]["rows"]):
        stats = {k: v["mse"] for k, v in today[name]["methods"].items() if k not in ("default", "pure")}
        mses = {c: run[name]["methods"][m]["mse"] if name in run else math.nan for c, (run, m) in runs.items()}
        if not any(math.isnan(v) for v in mses.values()):
            for column, value in mses.items():
                ratios[column].append(value / stats["auto_ets"])
        cells = " | ".join("–" if math.isnan(v) else f"{v:.3g}" for v in mses.values())
        print(f"| {name} | {today[name]['rows']} | {cells} | {stats['auto_ets']:.3g} | {min(stats.values()):.3g} |")
    print()
    for column, values in ratios.items():
        mean = math.exp(sum(map(math.log, values)) / len(values))
        print(f"- {column}: geometric mean of MSE / AutoETS's {mean:.3g} over the {len(values)} series every column has")
    print_coverage(today, records(root / "levers/calibration_folds"))


def print_coverage(before: dict[str, dict], after: dict[str, dict]) -> None:
    """The default's 80 % coverage without and with the calibration folds, per series and pooled (weights: values)."""
    if not after:
        return
    print("\n| series | rows | coverage without folds | with folds |\n|---|---|---|---|")
    pooled, weight = [0.0, 0.0], 0
    for name in sorted(after, key=lambda s: after[s]["rows"]):
        old, new = (run[name]["methods"]["default"]["coverage"] for run in (before, after))
        values = after[name]["origins"] * after[name]["horizon"] * after[name]["channels"]
        pooled, weight = [pooled[0] + values * old, pooled[1] + values * new], weight + values
        print(f"| {name} | {after[name]['rows']} | {old:.2f} | {new:.2f} |")
    print(f"\nPooled over the {weight} held-out values: {pooled[0] / weight:.3f} without folds, {pooled[1] / weight:.3f} with them.")


if __name__ == "__main__":
    main()
