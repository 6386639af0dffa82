"""Seconds of one training epoch of ETTh1/96 (samformer's eager step) in the checkout on PYTHONPATH: median of 3 after a warm-up.

Compare two checkouts side by side, alternating (e.g. a commit in a git worktree against this one):

    for r in 1 2; do for co in ../base .; do
        PYTHONPATH=$co/src SAMFORMER_DATA=../shared/data python benchmarks/epoch_ab.py --batch-size 256 --precision bf16
    done; done

It runs `benchmarks/speed.py`'s `samformer_epoch` of this checkout (no validation pass) with torch's default threads.
"""

import argparse
import statistics
import time

from speed import HORIZON, SEQ_LEN, samformer_epoch

import samformer
from samformer.cli.allocator import keep_freed_memory
from samformer.data.loading import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI and speed.py do
    run = samformer_epoch(load_dataset("ETTh1", SEQ_LEN, HORIZON).windows("train"), args.batch_size, args.precision, "direct")
    run()  # warm-up
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    where = samformer.__file__.split("/src/")[0]
    print(f"{where} batch {args.batch_size} {args.precision}: median {statistics.median(seconds):.3f} s {[round(s, 3) for s in seconds]}")


if __name__ == "__main__":
    main()
