"""The stacked optimizer's Adam step, old against new, alternating in one process: the private kernel
`torch._fused_adam_` called directly (as `StackedSAM.adam_step` did) against `torch.optim.adam.adam(fused=True)`
(its public functional form, what `StackedSAM.adam_step` calls now).

Both run on copies of one stack of k SAMformers (ETTh1's sizes by default) with the same gradients, in
rounds that alternate old and new; each round times `--steps` Adam steps (CPU seconds). Prints the median
seconds per step of each, new / old, and the largest difference between the weights the two reached
(0.0: the same kernel on the same numbers). Run on an idle machine, e.g.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/stacked_optim_compare.py --k 8 --steps 200 --rounds 7

`--lr-groups g` gives the models g different learning rates (one kernel call per group).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from samformer import SAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig
from samformer.training.stacked.optim import ADAM_EPS, BETAS, StackedSAM


@torch.no_grad()
def old_adam_step(optimizer: StackedSAM, grads: list[torch.Tensor]) -> None:
    """`StackedSAM.adam_step` as it was: the private kernel, one call per group of models sharing lr and weight decay."""
    optimizer.step += 1
    blocks = {"params": optimizer.stack.blocks(), "grads": grads}
    blocks.update(exp_avgs=optimizer.stack.blocks(optimizer.exp_avg), exp_avg_sqs=optimizer.stack.blocks(optimizer.exp_avg_sq))
    groups: dict[tuple[float, float], list[int]] = {}
    for j, setting in enumerate(zip(optimizer.lr, optimizer.weight_decay, strict=True)):
        groups.setdefault(setting, []).append(j)
    for (lr, weight_decay), models in groups.items():
        rows = {name: [block[j] for block in tensors for j in models] for name, tensors in blocks.items()}
        steps = [optimizer.step] * len(rows["params"])
        torch._fused_adam_(
            rows["params"], rows["grads"], rows["exp_avgs"], rows["exp_avg_sqs"], [], steps,
            lr=lr, beta1=BETAS[0], beta2=BETAS[1], weight_decay=weight_decay, eps=ADAM_EPS, amsgrad=False, maximize=False,
        )  # fmt: skip


def seconds_per_step(step, optimizer: StackedSAM, grads: list[list[torch.Tensor]]) -> float:
    started = time.process_time()
    for g in grads:
        step(optimizer, g)
    return (time.process_time() - started) / len(grads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=8, help="models in the stack")
    parser.add_argument("--channels", type=int, default=7)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each old then new (alternating)")
    parser.add_argument("--lr-groups", type=int, default=1, help="distinct learning rates among the k models")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = [SAMformer(args.channels, args.seq_len, args.horizon) for _ in range(args.k)]
    cfgs = [TrainConfig(lr=1e-3 * (1 + j % args.lr_groups)) for j in range(args.k)]
    stacks = {"old": StackedSAMformer(models), "new": StackedSAMformer(models)}
    optimizers = {name: StackedSAM(stack, cfgs) for name, stack in stacks.items()}
    steps = {"old": old_adam_step, "new": StackedSAM.adam_step}
    template = stacks["old"]
    grads = [[torch.randn_like(b) * 1e-2 for b in template.blocks()] for _ in range(args.steps)]
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for name in ("old", "new"):
            times[name].append(seconds_per_step(steps[name], optimizers[name], copy.copy(grads)))
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    diff = (stacks["old"].flat - stacks["new"].flat).abs().max().item()
    print(f"k={args.k} D={args.channels} L={args.seq_len} H={args.horizon} lr_groups={args.lr_groups} threads={args.threads}")
    print(f"old {old * 1e3:.3f} ms/step  new {new * 1e3:.3f} ms/step  new/old {new / old:.3f}  max weight diff {diff:.3g}")


if __name__ == "__main__":
    main()
