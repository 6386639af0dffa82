"""When does folding the value weight into the forecaster pay? SAM steps by each training pass, side by side.

    python benchmarks/fold_crossover.py [--data-dir ../shared/data] [--out results/speed/fold_crossover.json]

The fused pass (`samformer.nn.fused`) forms Wf Wv once per batch: H × L × L multiply-adds forward and twice
that backward, whatever the batch. The plain modules map each of the B·D channel rows through the (L, L)
value weight instead: B·D × L × L forward and twice that backward. So folding should win when H < B·D.
`SAMformer.uses_fused` folds when H ≤ B·D. The other batches trained through autograd ("modules") until they took
a hand-written pass in the modules' algebra ("plain", `fused.plain_mse_loss_and_gradients`), which is what
`fused="auto"` trains them with now. This script measures the three at the paper's batch of 32 (bf16, SAM) for
ETTh1 (D = 7, B·D = 224) and weather (D = 21, B·D = 672) at every benchmark horizon, in interleaved rounds, and
prints ms per step. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from functools import partial

import torch

from samformer.data.loading import load_dataset
from samformer.files import write_json
from samformer.nn.fused import MSEPass, plain_mse_loss_and_gradients
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step
from samformer.training.steps import optimizer_update

BATCH, SEQ_LEN, STEPS, ROUNDS = 32, 512, 40, 4


def plain_step(model: SAMformer, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A SAM step by the hand-written pass in the modules' algebra, whatever the batch's shape."""
    return optimizer_update(optimizer)(MSEPass(model, x, y, torch.bfloat16, core=plain_mse_loss_and_gradients))


def step_ms(dataset: str, horizon: int, data_dir: str | None) -> dict[str, float]:
    """Median ms per SAM step (bf16, batch 32) with the fold, through autograd's modules, and by the plain pass."""
    data = load_dataset(dataset, SEQ_LEN, horizon, data_dir=data_dir)
    windows = data.windows("train")
    batches = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0)).split(BATCH)[:STEPS]
    runs = {}
    for path in ("fold", "modules", "plain"):
        torch.manual_seed(0)
        model = SAMformer(data.n_channels, SEQ_LEN, horizon).train()
        model.fused = {"fold": True, "modules": False, "plain": "auto"}[path]
        step = plain_step if path == "plain" else partial(train_step, precision="bf16")
        runs[path] = (model, build_optimizer(model, TrainConfig()), step)
    times: dict[str, list[float]] = {path: [] for path in runs}
    for round_ in range(ROUNDS + 1):  # round 0 warms up
        for path, (model, optimizer, step) in runs.items():
            start = time.perf_counter()
            for idx in batches:
                step(model, optimizer, *windows.batch(idx))
            if round_:
                times[path].append((time.perf_counter() - start) / len(batches) * 1e3)
    return {path: statistics.median(t) for path, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA"), help="benchmark CSVs (default $SAMFORMER_DATA)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    rows = []
    print(f"{'dataset':<10}{'H':>5}{'B·D':>6}  {'fold ms':>8}{'modules ms':>11}{'plain ms':>9}  faster  auto trains by")
    for dataset, n_channels in (("ETTh1", 7), ("weather", 21)):
        for horizon in (96, 192, 336, 720):
            ms = step_ms(dataset, horizon, args.data_dir)
            faster = min(ms, key=ms.get)
            chosen = "fold" if horizon <= BATCH * n_channels else "plain"  # SAMformer.uses_fused's rule, then steps.BatchPasses
            rows.append({"dataset": dataset, "horizon": horizon, "rows": BATCH * n_channels, **ms, "faster": faster, "chosen": chosen})
            print(
                f"{dataset:<10}{horizon:>5}{BATCH * n_channels:>6}  {ms['fold']:>8.2f}{ms['modules']:>11.2f}{ms['plain']:>9.2f}  "
                f"{faster:<7} {chosen}",
                flush=True,
            )
    result = {"batch": BATCH, "precision": "bf16", "ms_per_sam_step": rows}
    if args.out:
        write_json(args.out, result, make_dirs=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
