"""The comparison tables of `samformer table`, regenerated from stored run files only.

A cell is the runs (one per seed) of one variant, dataset and horizon under one protocol: mean ± sample
std over seeds beside the paper's MSE (`summarise`), or, for a search directory, the setting selected
on validation MSE (`summarise_tuned`). `render_table` prints the cells as Markdown or CSV with the
protocol (settings, seeds, splits, scaling) beside every block; `cells_as_json` as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from samformer.experiments.paper import TRANSFORMER_MSE, TSMIXER_MSE, paper_mse
from samformer.experiments.store import iter_runs
from samformer.training.config import TrainConfig


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(root: str | os.PathLike) -> list[dict[str, Any]]:
    """One cell per (variant, dataset, horizon, protocol): mean ± sample std over seeds, with the paper's MSE."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for _, record in iter_runs(root):
        key = (record["variant"], record["dataset"], record["horizon"], record["protocol"])
        groups.setdefault(key, []).append(record)
    return [_cell(records, protocol) for (*_, protocol), records in sorted(groups.items(), key=_cell_order)]


def _cell(records: list[dict[str, Any]], protocol: str) -> dict[str, Any]:
    """The table cell of `records`: the runs (one per seed) of one variant, dataset and horizon under `protocol`."""
    variant, dataset, horizon = records[0]["variant"], records[0]["dataset"], records[0]["horizon"]
    mse_mean, mse_std = _mean_std([r["test_mse"] for r in records])
    mae_mean, mae_std = _mean_std([r["test_mae"] for r in records])
    return {
        "dataset": dataset,
        "horizon": horizon,
        "variant": variant,
        "protocol": protocol,
        "n_seeds": len(records),
        "mse_mean": mse_mean,
        "mse_std": mse_std,
        "mae_mean": mae_mean,
        "mae_std": mae_std,
        "paper_mse": paper_mse(variant, dataset, horizon),
        "paper_tsmixer_mse": TSMIXER_MSE.get(dataset, {}).get(horizon),
        "paper_transformer_mse": TRANSFORMER_MSE.get(dataset, {}).get(horizon),
        "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
        "seeds": sorted(r["seed"] for r in records),
        "data_protocol": records[0].get("data_protocol"),
        "train_config": records[0].get("train_config"),
        "selected": None,  # the setting chosen on validation, for tuned cells (see `summarise_tuned`)
    }


def _mean_validation(by_setting: dict[str, list[dict[str, Any]]], seeds: set[int], label: str) -> float:
    return statistics.fmean(r["val_mse"] for r in by_setting[label] if r["seed"] in seeds)


def summarise_tuned(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Cells with one setting per (variant, dataset, horizon) selected on validation MSE.

    `root` holds one directory of run files per setting, named like `rho=0.3` (as `samformer sweep
    --search` writes them, or `samformer benchmark --rho 0.3 --out root/rho=0.3`). For each cell the
    setting with the lowest mean validation MSE over the seeds that every setting has run is selected
    (test MSE never enters the choice); the cell then reports the test metrics of all of that
    setting's seeds. Its protocol is 'tuned(<name>)' and `selected` names the setting.
    """
    runs: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for setting in sorted(p for p in Path(root).iterdir() if p.is_dir() and "=" in p.name):
        for _, record in iter_runs(setting):
            key = (record["variant"], record["dataset"], record["horizon"])
            runs.setdefault(key, {}).setdefault(setting.name, []).append(record)
    cells = []
    for by_setting in runs.values():
        common = set.intersection(*({r["seed"] for r in records} for records in by_setting.values()))
        if not common:
            continue  # no seed run under every setting yet: nothing to select on

        validation = functools.partial(_mean_validation, by_setting, common)
        selected = min(sorted(by_setting), key=validation)
        names = sorted({label.split("=", 1)[0] for label in by_setting})
        cell = _cell(by_setting[selected], protocol=f"tuned({','.join(names)})")
        cell["selected"] = selected
        cell["selection_seeds"] = sorted(common)
        cell["val_mse_by_setting"] = {label: validation(label) for label in sorted(by_setting, key=validation)}
        cells.append(cell)
    return sorted(cells, key=lambda c: _cell_order(((c["variant"], c["dataset"], c["horizon"], c["protocol"]), None)))


_VARIANT_ORDER = ["samformer", "no-sam", "sigma-reparam", "linear", "no-revin"]
_DATASET_ORDER = ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "electricity", "exchange_rate", "traffic", "weather"]


def _cell_order(item: tuple[tuple, Any]) -> tuple:
    variant, dataset, horizon, protocol = item[0]
    v = _VARIANT_ORDER.index(variant) if variant in _VARIANT_ORDER else len(_VARIANT_ORDER)
    d = _DATASET_ORDER.index(dataset) if dataset in _DATASET_ORDER else len(_DATASET_ORDER)
    return (v, protocol, d, dataset, horizon)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _relative(ours: float, paper: float | None) -> str:
    return "–" if paper is None else f"{100 * (ours - paper) / paper:+.1f}%"


def by_variant_and_protocol(cells: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The cells in one block per (variant, protocol), in their order."""
    blocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        blocks.setdefault((cell["variant"], cell["protocol"]), []).append(cell)
    return blocks


def render_table(cells: list[dict[str, Any]], fmt: str = "md") -> str:
    """The comparison table (Markdown or CSV), one block per variant and protocol, with an average row."""
    header = ["dataset", "H", "seeds", "MSE (ours)", "MAE (ours)", "paper MSE", "vs paper", "TSMixer (paper)", "Transformer (paper)"]
    lines: list[str] = []
    if fmt == "csv":
        lines.append(",".join(["variant", "protocol", *header]))
    for (variant, protocol), block in by_variant_and_protocol(cells).items():
        rows = [
            [
                c["dataset"],
                str(c["horizon"]),
                str(c["n_seeds"]) + (f" ({c['selected']})" if c.get("selected") else ""),
                f"{c['mse_mean']:.3f} ± {c['mse_std']:.3f}",
                f"{c['mae_mean']:.3f} ± {c['mae_std']:.3f}",
                _fmt(c["paper_mse"]),
                _relative(c["mse_mean"], c["paper_mse"]),
                _fmt(c["paper_tsmixer_mse"]),
                _fmt(c["paper_transformer_mse"]),
            ]
            for c in block
        ]
        compared = [c for c in block if c["paper_mse"] is not None]
        ours_all = statistics.fmean(c["mse_mean"] for c in block)
        average = ["average", "", "", f"{ours_all:.3f}", f"{statistics.fmean(c['mae_mean'] for c in block):.3f}"]
        if compared:
            ours_cmp = statistics.fmean(c["mse_mean"] for c in compared)
            paper_cmp = statistics.fmean(c["paper_mse"] for c in compared)
            average += [f"{paper_cmp:.3f} (ours {ours_cmp:.3f} on these {len(compared)})", _relative(ours_cmp, paper_cmp), "", ""]
        else:
            average += ["–", "–", "", ""]
        rows.append(average)
        if fmt == "csv":
            lines += [",".join([variant, protocol, *(f'"{x}"' if "," in x else x for x in r)]) for r in rows]
        else:
            lines += [f"### {variant} (protocol: {protocol})", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines += ["", *_protocol_notes(block), ""]
    return "\n".join(lines).rstrip() + "\n"


def _protocol_notes(block: list[dict[str, Any]]) -> list[str]:
    """Markdown lines stating how the numbers of a table block were made: settings, seeds, splits, scaling."""
    notes = []
    tuned = [c for c in block if c.get("selected")]
    cfg = next((c["train_config"] for c in block if c.get("train_config")), None)
    if cfg:
        cfg = {**asdict(TrainConfig()), **cfg}  # a field an older version did not record: today's default
        lrs = {c["dataset"]: c["train_config"].get("lr", cfg["lr"]) for c in block if c.get("train_config")}
        settings = (
            "Adam (lr "
            + ", ".join(f"{d} {lr:g}" for d, lr in lrs.items())
            + ")"
            + (" in SAM" + (" (rho: see below)" if tuned else f" (rho {cfg['rho']:g})") if cfg["sam"] else " (no SAM)")
            + f", batch {cfg['batch_size']}, "
            f"≤ {cfg['epochs']} epochs, early stopping on validation MSE (patience {cfg['patience']}, best weights restored), "
            f"{cfg['lr_schedule']} (period {cfg['restart_period']}), {cfg['precision']}"
        )
        notes.append(f"Training: {settings}.")
    if tuned:
        settings = sorted({label for c in tuned for label in c.get("val_mse_by_setting", {})}, key=lambda x: (len(x), x))
        selection_seeds = sorted({s for c in tuned for s in c.get("selection_seeds", [])})
        notes.append(
            f"Selection: per dataset and horizon, the setting (in brackets after the seed count) with the lowest mean validation "
            f"MSE over seed(s) {', '.join(map(str, selection_seeds))} among {', '.join(settings)}; the test split plays no part in "
            "the choice. Its MSE/MAE are over all seeds run with it."
        )
    seeds = sorted({s for c in block for s in c.get("seeds", [])})
    if seeds:
        notes.append(f"Seeds: {', '.join(map(str, seeds))}; ± is the sample standard deviation over seeds (0 with one seed).")
    splits = {}
    for c in block:
        proto = c.get("data_protocol") or {}
        if proto.get("borders") and c["dataset"] not in splits:
            borders = ", ".join(f"{k} [{a}, {b})" for k, (a, b) in proto["borders"].items())
            fit = proto.get("scaler_fit_rows")
            windows = proto.get("windows", {}).get("test")
            splits[c["dataset"]] = f"{c['dataset']}: {borders}" + (f"; scaler fitted on rows [{fit[0]}, {fit[1]})" if fit else "")
            if windows:
                splits[c["dataset"]] += f"; {windows} test windows at H={c['horizon']}, all evaluated"
    if splits:
        notes.append("Splits (rows, input length included in val/test): " + " · ".join(splits.values()) + ".")
    return notes


def cells_as_json(cells: list[dict[str, Any]]) -> str:
    """The cells as one JSON list (the `--format json` output)."""
    keys = ("dataset", "horizon", "variant", "protocol", "n_seeds", "mse_mean", "mse_std", "mae_mean", "mae_std", "paper_mse", "selected")
    return json.dumps([{k: c[k] for k in keys} for c in cells])
