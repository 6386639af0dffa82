"""Issue 21: the four cells more than 3 % worse than the paper, summarised from stored run files only.

For each cell: the paper's MSE, ours at rho 0.7 on seeds 0-2 (the committed table), the distribution over
every seed run under the paper's protocol (seeds 0-2 from `results/benchmark/runs`, 3-9 from
`results/fidelity/seeds`), the unshuffled order (`results/fidelity/unshuffled`) and rho selected on
validation (`results/benchmark/rho_tuning`: the lowest seed-0 validation MSE, then its seeds' test MSE).

    python benchmarks/fidelity_summary.py            # Markdown table on stdout (run from the repository root)
    python benchmarks/fidelity_summary.py --claims   # the numbers behind the claims table of results/benchmark/README.md

`--claims` reads `results/benchmark/table.json` (SAMformer: mean over seeds 0-2; ablations: seed 0) and
`samformer.experiments.paper`. An improvement "on average" is the mean over horizons of 1 - MSE_SAMformer / MSE_other.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from samformer.experiments.paper import HORIZONS, SAMFORMER_MSE, TRANSFORMER_MSE, TSMIXER_MSE

CELLS = (("ETTh1", 720), ("ETTh2", 336), ("ETTh2", 720), ("exchange_rate", 336))
TABLE_RUNS = Path("results/benchmark/runs/samformer")
MORE_SEEDS = Path("results/fidelity/seeds/samformer")
UNSHUFFLED = Path("results/fidelity/unshuffled/samformer")
RHO_TUNING = Path("results/benchmark/rho_tuning")
TABLE_JSON = Path("results/benchmark/table.json")
WITHIN = 0.03
# Published ETTh1 test MSE of other models ("the numbers to beat" in REFERENCE.md; TSMixer as recalled, unverified).
ETTH1_OTHERS: dict[str, tuple[float, ...]] = {
    "PatchTST/64": (0.370, 0.413, 0.422, 0.447),
    "TSMixer": tuple(TSMIXER_MSE["ETTh1"].values()),
    "NLinear": (0.374, 0.408, 0.429, 0.440),
    "DLinear": (0.375, 0.405, 0.439, 0.472),
    "iTransformer": (0.386, 0.441, 0.487, 0.503),
}  # "within 3 % of the paper": test MSE <= 1.03 x the paper's


def runs(root: Path, dataset: str, horizon: int) -> list[dict[str, Any]]:
    """The run records of one cell under `root`, by seed."""
    records = [json.loads(p.read_text()) for p in (root / dataset / f"H{horizon}").glob("seed*.json")]
    return sorted(records, key=lambda r: r["seed"])


def spread(values: list[float]) -> str:
    """'mean ± sample std (n)'; '–' without values."""
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f} (n={len(values)})"


def rho_selected(dataset: str, horizon: int) -> str:
    """The rho with the lowest seed-0 validation MSE and the test MSE of its seeds."""
    by_rho = {d.name.split("=")[1]: runs(d / "samformer", dataset, horizon) for d in sorted(RHO_TUNING.glob("rho=*"))}
    seed0 = {rho: next(r for r in records if r["seed"] == 0)["val_mse"] for rho, records in by_rho.items() if records}
    best = min(seed0, key=seed0.get)
    return f"{best} (val {seed0[best]:.4f}): test {spread([r['test_mse'] for r in by_rho[best]])}"


def unshuffled_text(dataset: str, horizon: int, paper: float) -> str:
    """The unshuffled runs' test MSE, and their validation MSE beside the shuffled runs' of the same seeds."""
    in_order = runs(UNSHUFFLED, dataset, horizon)
    if not in_order:
        return "–"
    test = [r["test_mse"] for r in in_order]
    seeds = {r["seed"] for r in in_order}
    shuffled_val = statistics.fmean(r["val_mse"] for r in runs(TABLE_RUNS, dataset, horizon) if r["seed"] in seeds)
    in_order_val = statistics.fmean(r["val_mse"] for r in in_order)
    return f"{spread(test)} ({statistics.fmean(test) / paper - 1:+.1%}); val {in_order_val:.4f} vs {shuffled_val:.4f} shuffled"


def cell_row(dataset: str, horizon: int) -> str:
    """One Markdown row for a cell."""
    paper = SAMFORMER_MSE[dataset][horizon]
    table = [r["test_mse"] for r in runs(TABLE_RUNS, dataset, horizon)]
    every = table + [r["test_mse"] for r in runs(MORE_SEEDS, dataset, horizon)]
    within = sum(v <= paper * (1 + WITHIN) for v in every)
    gap = statistics.fmean(every) / paper - 1
    seeds_text = f"{spread(every)} ({gap:+.1%}), min {min(every):.3f}, max {max(every):.3f}, {within} of {len(every)} within 3 %"
    if len(every) > 1:  # the paper's value is a mean over 5 runs: how far it lies from ours in standard errors of such a mean
        standard_error = statistics.stdev(every) / 5**0.5
        seeds_text += f"; paper at {(paper - statistics.fmean(every)) / standard_error:+.1f} SE of a 5-run mean"
    unshuffled = unshuffled_text(dataset, horizon, paper)
    return f"| {dataset}/{horizon} | {paper:.3f} | {spread(table)} | {seeds_text} | {unshuffled} | {rho_selected(dataset, horizon)} |"


def improvement(samformer: dict[int, float], other: dict[int, float]) -> str:
    """Mean over horizons of 1 - SAMformer / other, with the per-horizon values."""
    each = [1 - samformer[h] / other[h] for h in HORIZONS]
    return f"{statistics.fmean(each):+.1%} ({' / '.join(f'{v:+.1%}' for v in each)})"


def print_claims() -> None:
    """Per-dataset four-horizon means against the paper's, and SAMformer against the Transformer and TSMixer."""
    cells = json.loads(TABLE_JSON.read_text())
    mse = {(c["variant"], c["protocol"], c["dataset"], c["horizon"]): c["mse_mean"] for c in cells}

    def row(variant: str, dataset: str, protocol: str = "paper") -> dict[int, float]:
        return {h: mse[(variant, protocol, dataset, h)] for h in HORIZONS}

    for protocol in ("paper", "tuned(rho)"):
        for dataset in sorted({c["dataset"] for c in cells if c["variant"] == "samformer" and c["protocol"] == protocol}):
            ours = statistics.fmean(row("samformer", dataset, protocol).values())
            paper = statistics.fmean(SAMFORMER_MSE[dataset].values())
            print(f"{protocol}, {dataset}: four-horizon mean {ours:.3f}, paper {paper:.3f} ({ours / paper - 1:+.1%})")
    for name, values in (("paper's", tuple(SAMFORMER_MSE["ETTh1"].values())), ("ours", tuple(row("samformer", "ETTh1").values()))):
        ranks = [1 + sum(other[i] < values[i] for other in ETTH1_OTHERS.values()) for i in range(len(HORIZONS))]
        print(f"ETTh1, SAMformer ({name}) ranks among it and {', '.join(ETTH1_OTHERS)}: {' / '.join(map(str, ranks))}")
    print(f"paper's numbers, ETTh1: SAMformer vs Transformer {improvement(SAMFORMER_MSE['ETTh1'], TRANSFORMER_MSE['ETTh1'])}")
    print(f"paper's numbers, ETTh1: SAMformer vs TSMixer {improvement(SAMFORMER_MSE['ETTh1'], TSMIXER_MSE['ETTh1'])}")
    print(f"ours, ETTh1: SAMformer vs TSMixer (paper's) {improvement(row('samformer', 'ETTh1'), TSMIXER_MSE['ETTh1'])}")
    for dataset in ("ETTh1", "ETTh2"):
        for variant in ("no-sam", "sigma-reparam"):
            print(f"ours, {dataset}: SAMformer vs {variant} {improvement(row('samformer', dataset), row(variant, dataset))}")


def main() -> None:
    if "--claims" in sys.argv[1:]:
        print_claims()
        return
    print("| cell | paper | ours, seeds 0-2 (table) | every seed, rho 0.7 | unshuffled, seeds 0-2 | rho selected on validation |")
    print("|---|---|---|---|---|---|")
    for dataset, horizon in CELLS:
        print(cell_row(dataset, horizon))


if __name__ == "__main__":
    main()
