"""ms per stacked SAM step as the benchmark grid trains (k = 3 seeds, batch 32, bf16, one thread, `fused="auto"`), in the
checkout on PYTHONPATH: median of 3 rounds after a warm-up, on real training windows.

Compare two checkouts side by side, alternating (e.g. a commit in a git worktree against this one):

    for r in 1 2; do for co in ../base .; do
        PYTHONPATH=$co/src SAMFORMER_DATA=../shared/data python benchmarks/stacked_step_ab.py weather:720 weather:336 ETTm1:96
    done; done

Each line printed is one JSON object: the checkout, the cell and its ms per step (both SAM passes, the perturbation
and Adam, the batch gather and standardisation included, as `train_epoch` runs them).

`--weights FILE` also keeps the trained weights of each cell: saved by the first checkout that runs (FILE absent),
compared by the next, which adds the largest absolute difference to its line (with `--precision fp32`: whether a
change keeps fp32 training's results; `--threads 2` on the same checkout gives the size of a mere change of the
order in which float32 sums are rounded, for comparison).
"""

import argparse
import json
import os
import statistics
import time

import torch
from stacked_pass import BATCH, SEQ_LEN, first_windows
from tqdm.auto import tqdm

import samformer
from samformer.cli.allocator import keep_freed_memory
from samformer.data.loading import load_dataset
from samformer.nn.model import SAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig
from samformer.training.stacked.fit import seeded_models, train_epoch
from samformer.training.stacked.optim import StackedSAM


def step_ms(
    dataset: str, horizon: int, k: int, steps: int, rounds: int, data_dir: str | None, precision: str
) -> tuple[float, torch.Tensor]:
    """Median ms per SAM step of a stack of k seeds over `steps` batches, and the stack's weights (k, P) after the rounds."""
    data = load_dataset(dataset, SEQ_LEN, horizon, data_dir=data_dir)
    train = first_windows(data.windows("train"), steps * BATCH)
    cfgs = [TrainConfig(seed=seed, precision=precision, progress=False) for seed in range(k)]
    stack = StackedSAMformer(seeded_models(lambda: SAMformer(data.n_channels, SEQ_LEN, horizon), range(k))).train()
    optimizer, generators = StackedSAM(stack, cfgs), [torch.Generator().manual_seed(seed) for seed in range(k)]
    bar = tqdm(disable=True)
    times = []
    for round_ in range(rounds + 1):  # round 0 warms up
        start = time.perf_counter()
        train_epoch(stack, optimizer, train, generators, BATCH, precision, bar)
        if round_:
            times.append((time.perf_counter() - start) / steps * 1e3)
    return statistics.median(times), stack.flat.detach().clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+", help="DATASET:HORIZON, e.g. weather:720")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="SAM steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA"))
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--weights", default=None, help="save the trained weights here, or compare with them if present")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the grid's workers)")
    args = parser.parse_args()
    reference = torch.load(args.weights, weights_only=True) if args.weights and os.path.exists(args.weights) else None  # tensors only
    trained = {}
    keep_freed_memory()  # as the samformer CLI, and so the grid's workers, run
    torch.set_num_threads(args.threads)
    checkout = samformer.__file__.split("/src/")[0]
    for cell in args.cells:
        dataset, horizon = cell.split(":")
        ms, trained[cell] = step_ms(dataset, int(horizon), args.k, args.steps, args.rounds, args.data_dir, args.precision)
        result = {
            "checkout": checkout,
            "dataset": dataset,
            "horizon": int(horizon),
            "precision": args.precision,
            "threads": args.threads,
            "ms_per_step": round(ms, 2),
        }
        if reference is not None:
            result["max_abs_weight_diff"] = (trained[cell] - reference[cell]).abs().max().item()
        print(json.dumps({**result, "load": os.getloadavg()[0]}), flush=True)
    if args.weights and reference is None:
        torch.save(trained, args.weights)


if __name__ == "__main__":
    main()
