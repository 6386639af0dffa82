"""Internal: the ensembles table — per cell, the test metrics of the mean forecast of its seeds, as its own table.

`samformer benchmark` stores an ensemble record (`store.ensemble_path`, `ensemble-seeds0-1-2-3-4.json` beside the
cell's run files) whenever it trains all of a cell's pending seeds as one stack. These cells are never
mixed into the paper comparison (`tables.render_table`): the paper reports single models, and an average
of k forecasts is a different model.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samformer.experiments.tables import by_variant_and_protocol
from samformer.files import require_regular_file

_KEYS = ("dataset", "horizon", "variant", "protocol", "seeds", "test_mse", "test_mae", "members_test_mse", "members_test_mae")


def iter_ensembles(root: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every valid ensemble record under `root` (a damaged one is reported on stderr and skipped)."""
    for path in sorted(Path(root).rglob("ensemble-seeds*.json")):
        try:
            record = json.loads(require_regular_file(path, "ensemble record").read_text())
            missing = [k for k in _KEYS if k not in record]
            if missing or not all(math.isfinite(record[k]) for k in ("test_mse", "test_mae")):
                raise ValueError(f"lacks {', '.join(missing)}" if missing else "holds non-finite metrics")
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            print(f"samformer: warning: {path} is not a valid ensemble record ({exc}); not used", file=sys.stderr)
            continue
        yield record


def summarise_ensembles(root: str | os.PathLike) -> list[dict[str, Any]]:
    """One cell per (variant, protocol, dataset, horizon): its ensemble of the most seeds, beside its members' mean."""
    best: dict[tuple, dict[str, Any]] = {}
    for record in iter_ensembles(root):
        key = (record["variant"], record["protocol"], record["dataset"], record["horizon"])
        if key not in best or len(record["seeds"]) > len(best[key]["seeds"]):
            best[key] = record
    return [_cell(best[key]) for key in sorted(best, key=lambda k: (k[0], k[1], k[2], k[3]))]


def _cell(record: dict[str, Any]) -> dict[str, Any]:
    members = record["members_test_mse"]
    return {
        "dataset": record["dataset"],
        "horizon": record["horizon"],
        "variant": record["variant"],
        "protocol": record["protocol"],
        "seeds": sorted(record["seeds"]),
        "ensemble_mse": record["test_mse"],
        "ensemble_mae": record["test_mae"],
        "members_mse_mean": statistics.fmean(members),
        "members_mse_std": statistics.stdev(members) if len(members) > 1 else 0.0,
        "members_mae_mean": statistics.fmean(record["members_test_mae"]),
    }


HEADER = ["dataset", "H", "seeds", "ensemble MSE", "ensemble MAE", "single-model MSE (same seeds)", "ensemble vs single"]
NOTE = (
    "Each row is one model: the average of the listed seeds' forecasts, scored on the test split. It is not a single "
    "SAMformer and is not comparable with the paper's table, which reports single models (mean ± std over seeds)."
)


def _row(cell: dict[str, Any]) -> list[str]:
    single = cell["members_mse_mean"]
    change = 100 * (cell["ensemble_mse"] - single) / single
    seeds = ",".join(map(str, cell["seeds"]))
    return [cell["dataset"], str(cell["horizon"]), seeds, f"{cell['ensemble_mse']:.3f}", f"{cell['ensemble_mae']:.3f}",
            f"{single:.3f} ± {cell['members_mse_std']:.3f}", f"{change:+.1f}%"]  # fmt: skip


def render_ensemble_table(cells: list[dict[str, Any]], fmt: str = "md") -> str:
    """The ensembles table (Markdown or CSV), one block per variant and protocol, labelled as ensembles."""
    if fmt == "csv":
        lines = [",".join(["kind", "variant", "protocol", *HEADER])]
        for (variant, protocol), block in by_variant_and_protocol(cells).items():
            lines += [",".join(["ensemble", variant, protocol, *(f'"{x}"' if "," in x else x for x in _row(c))]) for c in block]
        return "\n".join(lines) + "\n"
    lines = []
    for (variant, protocol), block in by_variant_and_protocol(cells).items():
        lines += [f"### Ensembles (mean forecast of the seeds): {variant} (protocol: {protocol})", ""]
        lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(_row(c)) + " |" for c in block]
        lines += ["", NOTE, ""]
    return "\n".join(lines).rstrip() + "\n"
