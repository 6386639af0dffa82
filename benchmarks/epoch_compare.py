"""One training epoch of ETTh1/96 (batch 32, 1 thread) in the checkout on PYTHONPATH: CPU seconds of `fit(epochs=1)`, min of 3.

Compare two checkouts side by side, alternating, e.g. a commit in a git worktree against this one:

    for r in 1 2; do for co in ../base .; do for p in fp32 bf16; do
        OMP_NUM_THREADS=1 PYTHONPATH=$co/src SAMFORMER_DATA=../shared/data python benchmarks/epoch_compare.py $p
    done; done; done

Prints the checkout, the precision, the CPU seconds and the epoch's validation MSE (equal code gives equal MSE).
"""

import sys
import time

import torch

import samformer
from samformer import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import fit

try:
    from samformer.data.loading import load_dataset
except ImportError:  # a checkout from before samformer.data.loading
    from samformer.data.series import load_dataset


def main(precision: str, rounds: int = 3) -> None:
    torch.set_num_threads(1)
    data = load_dataset("ETTh1", 512, 96)  # found through $SAMFORMER_DATA
    best, result = float("inf"), None
    for _ in range(rounds):
        torch.manual_seed(0)
        model = SAMformer(data.n_channels, 512, 96)
        started = time.process_time()
        result = fit(model, data, TrainConfig(epochs=1, progress=False, precision=precision))
        best = min(best, time.process_time() - started)
    print(f"{samformer.__file__.split('/src/')[0]} {precision} {best:.3f} val {result.val_mse:.10f}")


if __name__ == "__main__":
    main(sys.argv[1])
