"""The fixed cost of one bf16 matrix product on this CPU, beside the products of a batch-32 SAMformer step.

    python benchmarks/product_overhead.py [--threads 2] [--out results/speed/product_overhead.json]

PyTorch runs a bf16 `torch.mm` on CPU through oneDNN (ideep): each call builds memory descriptors, an
attribute object and a scratchpad before the JIT kernel runs, whatever the size. A product too small for its
arithmetic to matter (n × n × n, n = 32 or 64; at 16 PyTorch takes its own kernel instead) therefore measures
that fixed cost. The same script times the five products of the fused direct pass (`samformer.nn.fused`, ETTh1:
B·D = 224, L = 512, H = 96, d = 16), which a SAM step runs twice each, and prints how much of them is the fixed
cost: the part of the step no fusion or compilation of ours can remove, as `torch.compile` calls the same ATen
product (Inductor's own GEMM template needs a constant second operand, i.e. frozen weights, so it is not used
for training). Best of `--repeats` rounds per shape.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from samformer.cli.allocator import keep_freed_memory
from samformer.files import write_json

BF16 = torch.bfloat16
# (label, m, k, n, first operand transposed, second operand transposed): the direct pass's products
STEP_PRODUCTS = [
    ("Wf Wv (the fold)", 96, 512, 512, False, False),
    ("z Wᵀ (the stacked projection)", 224, 512, 224, False, True),
    ("gradient of W", 224, 224, 512, True, False),
    ("gradient of Wv", 512, 96, 512, True, False),
    ("gradient of Wf through the fold", 96, 512, 512, False, True),
]


def operands(m: int, k: int, n: int, transpose_a: bool = False, transpose_b: bool = False) -> tuple[torch.Tensor, ...]:
    """bf16 operands (m, k) and (k, n), each stored transposed if asked (as the pass reads them), and an (m, n) output."""
    a = torch.randn(k, m, dtype=BF16).T if transpose_a else torch.randn(m, k, dtype=BF16)
    b = torch.randn(n, k, dtype=BF16).T if transpose_b else torch.randn(k, n, dtype=BF16)
    return a, b, torch.empty(m, n, dtype=BF16)


def seconds_per_call(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, calls: int, repeats: int) -> float:
    for _ in range(20):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the CLI and speed.py run
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.2f}")
    tiny = {}
    for n in (16, 32, 64):
        tiny[n] = seconds_per_call(*operands(n, n, n), calls=5000, repeats=args.repeats)
        print(f"bf16 {n}x{n}x{n}: {tiny[n] * 1e6:6.1f} us per call ({2 * n**3 / tiny[n] / 1e9:5.1f} GFLOP/s)")
    fixed = min(tiny[32], tiny[64])  # 16x16x16 is below PyTorch's size threshold for oneDNN: another code path
    print(f"fixed cost per oneDNN product call (the faster of 32 and 64): {fixed * 1e6:.1f} us")
    step = {}
    for label, m, k, n, ta, tb in STEP_PRODUCTS:
        step[label] = seconds_per_call(*operands(m, k, n, ta, tb), calls=300, repeats=args.repeats)
        rate = 2 * m * k * n / step[label] / 1e9
        print(f"{label:<34} {m}x{k}x{n}: {step[label] * 1e6:6.1f} us ({rate:4.0f} GFLOP/s), fixed cost {fixed / step[label]:4.0%}")
    per_step = 2 * sum(step.values())  # SAM: two passes
    print(
        f"per SAM step: {per_step * 1e6:.0f} us of bf16 products, of which {2 * len(step) * fixed * 1e6:.0f} us "
        f"({2 * len(step) * fixed / per_step:.0%}) is the fixed cost of their {2 * len(step)} calls"
    )
    if args.out:
        figures = {
            "threads": args.threads,
            "us_per_call_tiny": {str(n): round(s * 1e6, 2) for n, s in tiny.items()},
            "us_per_call_step_products": {label: round(s * 1e6, 1) for label, s in step.items()},
            "us_products_per_sam_step": round(per_step * 1e6, 1),
            "load": os.getloadavg()[0],
        }
        write_json(args.out, figures, make_dirs=True)


if __name__ == "__main__":
    main()
