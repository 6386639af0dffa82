"""A stack's SAM step by each of its three passes, side by side: autograd, values folded, values computed.

    python benchmarks/stacked_pass.py [--k 3] [--threads 1] [--data-dir ../shared/data] [--out results/speed/stacked_pass.json]

The benchmark grid trains each cell's seeds as one stack (k = 3) in single-thread workers, at the paper's batch of 32
in bf16. A stack trains by one of three passes: autograd through the modules (`fused=False`), the hand-written pass
that folds Wv into the forecaster (`samformer.nn.stacked_fused`, `fused=True`) and the hand-written pass in the
modules' algebra (`samformer.nn.stacked_plain`); `fused="auto"` picks one of the last two by counting multiply-adds
(`StackedSAMformer.folds_values`). Before `stacked_plain` the stack took autograd wherever H > B·D (the single
model's rule), the "previous" column. For ETTh1 (B·D = 224) and weather (B·D = 672) at every horizon this prints
ms per SAM step (both passes, the perturbation and Adam, on real training windows; median of interleaved rounds)
and ms to evaluate 1024 validation windows. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from tqdm.auto import tqdm

from samformer.cli.allocator import keep_freed_memory
from samformer.data.loading import load_dataset
from samformer.data.series import Windows
from samformer.files import write_json
from samformer.nn.model import SAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig
from samformer.training.stacked.evaluation import evaluate_stacked
from samformer.training.stacked.fit import seeded_models, train_epoch
from samformer.training.stacked.optim import StackedSAM

BATCH, SEQ_LEN, EVAL_WINDOWS = 32, 512, 1024
PASSES = {"autograd": False, "folded": True, "auto": "auto"}


def first_windows(windows: Windows, n: int) -> Windows:
    """The first n windows of `windows` (a view of its first rows)."""
    return Windows(windows.series[: n + SEQ_LEN + windows.horizon - 1], SEQ_LEN, windows.horizon, roles=windows.roles)


def time_cell(dataset: str, horizon: int, k: int, steps: int, rounds: int, data_dir: str | None) -> dict:
    """Median ms per stacked SAM step and per evaluation of EVAL_WINDOWS windows, for each pass."""
    data = load_dataset(dataset, SEQ_LEN, horizon, data_dir=data_dir)
    train, val = first_windows(data.windows("train"), steps * BATCH), first_windows(data.windows("val"), EVAL_WINDOWS)
    cfgs = [TrainConfig(seed=seed, precision="bf16", progress=False) for seed in range(k)]
    stacks = {}
    for name, fused in PASSES.items():
        stack = StackedSAMformer(seeded_models(lambda: SAMformer(data.n_channels, SEQ_LEN, horizon), range(k))).train()
        stack.fused = fused
        stacks[name] = (stack, StackedSAM(stack, cfgs), [torch.Generator().manual_seed(seed) for seed in range(k)])
    step_ms: dict[str, list[float]] = {name: [] for name in PASSES}
    eval_ms: dict[str, list[float]] = {name: [] for name in PASSES}
    bar = tqdm(disable=True)
    for round_ in range(rounds + 1):  # round 0 warms up
        for name, (stack, optimizer, generators) in stacks.items():
            start = time.perf_counter()
            train_epoch(stack, optimizer, train, generators, BATCH, "bf16", bar)
            trained = time.perf_counter()
            evaluate_stacked(stack, val, EVAL_WINDOWS, "bf16")
            if round_:
                step_ms[name].append((trained - start) / steps * 1e3)
                eval_ms[name].append((time.perf_counter() - trained) * 1e3)
    rows = BATCH * data.n_channels
    auto = stacks["auto"][0]
    return {
        "dataset": dataset,
        "horizon": horizon,
        "rows": rows,
        "step_ms": {name: statistics.median(t) for name, t in step_ms.items()},
        "eval_ms": {name: statistics.median(t) for name, t in eval_ms.items()},
        "auto_takes": "folded" if auto.folds_values(rows) else "plain",
        "previous": "folded" if horizon <= rows else "autograd",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=3, help="models in the stack (the grid's seeds)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the grid's workers run one each)")
    parser.add_argument("--steps", type=int, default=40, help="SAM steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA"), help="benchmark CSVs (default $SAMFORMER_DATA)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    keep_freed_memory()  # as the samformer CLI, and so the grid's workers, run
    torch.set_num_threads(args.threads)
    print(f"k = {args.k}, batch {BATCH}, bf16, {args.threads} thread(s); ms per SAM step | ms per {EVAL_WINDOWS} validation windows")
    header = f"{'dataset':<9}{'H':>5}{'B·D':>5}  {'autograd':>9}{'folded':>8}{'auto':>8}  auto takes  previous  {'speed-up':>8}"
    print(f"{header}  eval: autograd / folded / auto")
    results = []
    for dataset in ("ETTh1", "weather"):
        for horizon in (96, 192, 336, 720):
            cell = time_cell(dataset, horizon, args.k, args.steps, args.rounds, args.data_dir)
            ms, ev = cell["step_ms"], cell["eval_ms"]
            cell["speedup_over_previous"] = ms[cell["previous"]] / ms["auto"]
            results.append(cell)
            print(
                f"{dataset:<9}{horizon:>5}{cell['rows']:>5}  {ms['autograd']:>9.1f}{ms['folded']:>8.1f}{ms['auto']:>8.1f}  "
                f"{cell['auto_takes']:<10}  {cell['previous']:<8}  {cell['speedup_over_previous']:>7.2f}x  "
                f"{ev['autograd']:.0f} / {ev['folded']:.0f} / {ev['auto']:.0f}",
                flush=True,
            )
    result = {"k": args.k, "batch": BATCH, "precision": "bf16", "threads": args.threads, "cells": results}
    if args.out:
        write_json(args.out, result, make_dirs=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
