"""Many models in one pass: k SAMformers trained one at a time (`training.fit.fit`) and as one stack (`fit_stacked`).

    python benchmarks/many_models.py [--k 8] [--batch-size 32] [--epochs 2] [--precisions bf16,fp32]
                                     [--data-dir ../shared/data] [--threads N] [--out results/speed/many_models.json]

ETTh1, L = 512, H = 96, seeds 0..k-1, the paper's protocol otherwise (lr 1e-3, rho 0.7), no early stopping
within the `--epochs`. For each precision it trains the k models one after the other, then all k
together, from the same initial weights, and reports: `epoch_s_single`, the median seconds of one model's
epoch alone; `epoch_s_stacked`, the median seconds of the epoch of all k together (both as `fit` records
them: training plus the validation pass); the speed-up k x epoch_s_single / epoch_s_stacked;
`floor_s_stacked`, the matrix-product FLOPs the stacked epoch computes (`speed.fused_flops_per_window`:
what samformer's fused pass runs) divided by this machine's measured matmul peak in that precision, and
`floor_s_stacked_nominal` with `speed.flops_per_window` (the issue's convention); the largest weight
difference between the two ways of training (fp32; the key bias, whose exact gradient is zero and which
follows rounding noise, reported apart) and the test MSEs. The CPU and its measured peaks are printed too.
The last stdout line is one JSON object with every figure; its top level holds the first precision's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from samformer.data.loading import load_dataset
from samformer.data.series import SplitData
from samformer.files import write_json
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig, TrainResult
from samformer.training.fit import fit, score_test
from samformer.training.stacked.evaluation import score_stacked
from samformer.training.stacked.fit import fit_stacked, seeded_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import HORIZON, SEQ_LEN, flops_per_window, fused_flops_per_window, matmul_peaks

KEY_BIAS = "attention.key.bias"  # softmax ignores it: its gradient is rounding noise (see tests/test_stacked.py)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_models(data: SplitData, cfgs: list[TrainConfig]) -> list[SAMformer]:
    """Each model as its own run builds it: seed everything, then the constructor."""
    return seeded_models(lambda: SAMformer(data.n_channels, SEQ_LEN, HORIZON), [cfg.seed for cfg in cfgs])


def median_epoch_s(results: list[TrainResult]) -> float:
    return statistics.median(record["seconds"] for result in results for record in result.history)


def weight_diffs(singles: list[SAMformer], stacked: list[SAMformer]) -> dict[str, float]:
    """Largest |difference| of any weight but the key bias, and of the key bias, over all models."""
    rest = key_bias = 0.0
    for single, model in zip(singles, stacked, strict=True):
        for (name, p), q in zip(single.state_dict().items(), model.state_dict().values(), strict=True):
            diff = (p - q).abs().max().item()
            if name == KEY_BIAS:
                key_bias = max(key_bias, diff)
            else:
                rest = max(rest, diff)
    return {"max_abs_weight_diff": rest, "max_abs_key_bias_diff": key_bias}


def compare(data: SplitData, k: int, batch_size: int, epochs: int, precision: str, peak: float) -> dict:
    """k models one at a time, then as one stack; the figures of the module docstring."""
    protocol = {"batch_size": batch_size, "epochs": epochs, "patience": epochs, "precision": precision, "progress": False}
    cfgs = [TrainConfig(seed=seed, **protocol) for seed in range(k)]
    singles = build_models(data, cfgs)
    single_results = [score_test(model, data, cfg, fit(model, data, cfg)) for model, cfg in zip(singles, cfgs, strict=True)]
    stacked = build_models(data, cfgs)
    stacked_results, _ = score_stacked(stacked, data, cfgs[0], fit_stacked(stacked, data, cfgs))
    n_windows = len(data.windows("train"))
    gflop = k * n_windows * fused_flops_per_window(data.n_channels, SEQ_LEN, HORIZON, batch_size) / 1e9
    nominal = k * n_windows * flops_per_window(data.n_channels, SEQ_LEN, HORIZON) / 1e9
    single_s, stacked_s = median_epoch_s(single_results), median_epoch_s(stacked_results)
    return {
        "k": k,
        "batch_size": batch_size,
        "precision": precision,
        "epochs": epochs,
        "epoch_s_single": single_s,
        "epoch_s_stacked": stacked_s,
        "speedup": k * single_s / stacked_s,
        "gflop_stacked_epoch": gflop,
        "floor_s_stacked": gflop / peak,
        "floor_s_stacked_nominal": nominal / peak,
        "stacked_over_floor": stacked_s / (gflop / peak),
        **weight_diffs(singles, stacked),
        "test_mse_single": [r.test_mse for r in single_results],
        "test_mse_stacked": [r.test_mse for r in stacked_results],
        "max_abs_test_mse_diff": max(abs(a.test_mse - b.test_mse) for a, b in zip(single_results, stacked_results, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=8, help="models (seeds 0..k-1; default 8)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32 (the paper's)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs each way (default 2)")
    parser.add_argument("--precisions", default="bf16,fp32", help="comma-separated (default bf16,fp32)")
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA"), help="directory with ETTh1.csv (default $SAMFORMER_DATA)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, which honours OMP_NUM_THREADS)")
    parser.add_argument("--out", default=None, help="also write the JSON summary to this file")
    args = parser.parse_args()
    if args.k < 1 or args.epochs < 1 or args.batch_size < 1:
        parser.error("--k, --epochs and --batch-size must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_dataset("ETTh1", SEQ_LEN, HORIZON, data_dir=args.data_dir)
    cpu = cpu_name()
    print(f"{cpu}; torch {torch.__version__}, {torch.get_num_threads()} threads; ETTh1 L={SEQ_LEN} H={HORIZON}")
    peaks = matmul_peaks()
    peak = {"fp32": max(r["fp32"] for r in peaks.values()), "bf16": max(r["bf16"] for r in peaks.values())}
    print(f"matmul peak (best shape): fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    rows = {}
    print(f"\n{'precision':<10}{'k':>3}{'batch':>6}{'s/epoch one':>13}{'s/epoch all k':>15}{'speed-up':>10}{'x floor':>9}{'max |dw|':>10}")
    for precision in args.precisions.split(","):
        row = rows[precision] = compare(data, args.k, args.batch_size, args.epochs, precision, peak[precision])
        print(
            f"{precision:<10}{args.k:>3}{args.batch_size:>6}{row['epoch_s_single']:>13.3f}{row['epoch_s_stacked']:>15.3f}"
            f"{row['speedup']:>9.2f}x{row['stacked_over_floor']:>9.1f}{row['max_abs_weight_diff']:>10.1e}",
            flush=True,
        )
    first = rows[next(iter(rows))]
    summary = {
        **first,
        "max_abs_weight_diff_fp32": rows["fp32"]["max_abs_weight_diff"] if "fp32" in rows else None,
        "max_abs_key_bias_diff_fp32": rows["fp32"]["max_abs_key_bias_diff"] if "fp32" in rows else None,
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "peak_gflops_fp32": peak["fp32"],
        "peak_gflops_bf16": peak["bf16"],
        "matmul_gflops_by_shape": peaks,
        "by_precision": rows,
    }
    if args.out:
        write_json(args.out, summary, make_dirs=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
