"""Training speed of samformer against the original code's training step, side by side in one run.

    python benchmarks/speed.py [--quick] [--data-dir ../shared/data] [--out results/speed.json]

For ETTh1 (L=512, H=96) at batch 256 and at the paper's batch 32 it prints: the machine's measured
matmul peak in fp32 and bf16; the arithmetic of one epoch; seconds per training epoch for the
re-created original step (`original_reference.py`), samformer fp32, samformer bf16 (also with its
passes through autograd instead of `fused.MSEPass`, and each precision with `--compile`, which compiles
SAM over Adam as one function per step); each one's ratio to its FLOP floor, and its first epoch (with an
empty Inductor cache: the compiled configurations' first epochs include compiling) and when compiling
pays back. The configurations are timed in rounds, one epoch of each per round, so that drifts of this
machine's speed hit them alike. Then the test MSE that `samformer train` reaches
in fp32 and in bf16 with the same seed, and the wall time of that command (time to the restored best
model; `--train-runs` runs each, alternating, median reported); peak memory on a traffic-sized panel;
inference latency and throughput. The last stdout line is one JSON object with every figure.
`--quick` times one epoch each and skips the training runs.

FLOP convention: only matrix products count (2·m·k·n each); a backward pass costs twice its forward
(gradients with respect to inputs and to weights); SAM runs forward+backward twice per step. For D=7,
L=512, H=96, d=16 that is 27.6 MFLOP per window and step, 222 GFLOP per ETTh1 epoch (8033 windows).
The floor of an epoch is that count divided by the measured matmul peak of its precision: the best
GFLOP/s over several shapes (`PEAK_SHAPES`: large squares and the model's own), for fp32 tensors, bf16
tensors, and fp32 tensors under bf16 autocast (which pays for the casts). samformer itself folds the
values into the forecaster and applies RevIN's affine map after the first product (`samformer.nn.fused`),
which needs fewer FLOPs than that count (`fused_flops_per_window`); the script prints that count and
its floor too, but the ratios in the table are to the nominal floor, as the issue defines it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from samformer.cli.allocator import keep_freed_memory
from samformer.data.loading import load_dataset
from samformer.data.series import Windows
from samformer.files import write_json
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step
from samformer.training.steps import build_step_and_update, forward_backward

sys.path.insert(0, str(Path(__file__).resolve().parent))
import original_reference as original
import roofline

SEQ_LEN, HORIZON, D_MODEL = 512, 96, 16


def flops_per_window(n_channels: int, seq_len: int, horizon: int, d_model: int = D_MODEL) -> int:
    """Matmul FLOPs of one SAM training step per window (see the module docstring for the convention)."""
    D, L, H, d = n_channels, seq_len, horizon, d_model
    forward = 2 * (2 * D * L * d)  # queries and keys: (D, L) @ (L, d)
    forward += 2 * D * L * L  # values: (D, L) @ (L, L)
    forward += 2 * D * d * D + 2 * D * D * L  # scores (D, d) @ (d, D) and attention @ values (D, D) @ (D, L)
    forward += 2 * D * L * H  # forecaster: (D, L) @ (L, H)
    return 2 * 3 * forward  # SAM: two passes of forward + backward (= 3 forwards)


def fused_flops_per_window(n_channels: int, seq_len: int, horizon: int, batch_size: int, d_model: int = D_MODEL) -> float:
    """Matmul FLOPs per window and SAM step of the computation `SAMformer` actually runs (`samformer.nn.fused`).

    One product maps every channel's L standardised inputs to queries, keys, the forecast and the
    forecast of the values (2d + 2H outputs); the inputs carry no gradient, so its backward pass is the
    weight gradient alone. Wf Wv (H × L × L) is formed once per batch, its backward costing two such
    products.
    """
    D, L, H, d = n_channels, seq_len, horizon, d_model
    projection = 2 * D * L * (2 * d + 2 * H)  # (D, L) @ (L, 2d + 2H)
    attention = 2 * D * d * D + 2 * D * D * H  # scores and attention @ folded values (D, D) @ (D, H)
    per_batch = 3 * (2 * H * L * L)  # Wf Wv forward, and its two gradient products
    return 2 * (2 * projection + 3 * attention + per_batch / batch_size)


PEAK_SHAPES = [(2048, 2048, 2048), (4096, 4096, 4096), (1024, 1024, 1024), (8192, 512, 512), (7168, 512, 224)]


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, autocast: bool = False, seconds: float = 1.0) -> float:
    """Best sustained GFLOP/s of an (m, k) @ (k, n) product; `autocast`: fp32 tensors under bf16 autocast."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with context:
        for _ in range(3):
            a @ b
        best, deadline = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            for _ in range(5):
                a @ b
            best = max(best, 5 * 2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return best


def matmul_peaks() -> dict[str, dict[str, float]]:
    """GFLOP/s per shape for fp32, bf16 tensors and fp32 tensors under bf16 autocast (the cast included)."""
    kinds = {"fp32": (torch.float32, False), "bf16": (torch.bfloat16, False), "bf16_autocast": (torch.float32, True)}
    return {
        "x".join(map(str, shape)): {kind: matmul_gflops(*shape, dtype, autocast) for kind, (dtype, autocast) in kinds.items()}
        for shape in PEAK_SHAPES
    }


def peak_again(peaks: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each precision's best shape of `matmul_peaks` measured again: this machine's speed drifts by up to ~1.5x
    within minutes, so a ratio to a floor computed from the peak at the start can mislead when the epochs ran later
    in another phase; `main` prints this check (and the triad bandwidth again) after each batch size's epochs."""
    again = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        shape = max(peaks, key=lambda name: peaks[name][precision])
        again[precision] = matmul_gflops(*map(int, shape.split("x")), dtype)
    return again


def report_peak_again(
    batch: int,
    row: dict[str, float],
    peaks: dict[str, dict[str, float]],
    peak: dict[str, float],
    floors: dict[str, dict],
    precision_of: dict[str, str],
    triad: float,
) -> dict[str, float]:
    """Print the peaks (`peak_again`) and the triad bandwidth measured again after a batch size's epochs `row`,
    beside the start's (`peak`, `triad`), and each samformer configuration's ratio to the roofline at that later
    peak; returns the later figures."""
    after = peak_again(peaks)
    triad_after = roofline.memory_bandwidth()["triad"]
    to_roofline_after = {}
    for label, seconds in row.items():
        if label.startswith("samformer"):
            bound = floors[f"{batch}/{precision_of[label]}"]
            flop_floor_after = bound["flop_floor_s"] * peak[precision_of[label]] / after[precision_of[label]]
            to_roofline_after[label.removeprefix("samformer ")] = seconds / max(flop_floor_after, bound["bytes_floor_s"])
    ratios = ", ".join(f"{label} {ratio:.2f}" for label, ratio in to_roofline_after.items())
    print(
        f"{batch:>5}  peak again after these epochs: fp32 {after['fp32']:.0f}, bf16 {after['bf16']:.0f} GFLOP/s "
        f"({after['fp32'] / peak['fp32']:.0%}, {after['bf16'] / peak['bf16']:.0%} of the start's), triad {triad_after:.1f} GB/s "
        f"({triad_after / triad:.0%}); x roofline at that peak: {ratios}"
    )
    return after | {"triad_gbs": triad_after}


def time_interleaved(runs: dict[str, Callable[[], None]], epochs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per epoch of each run, timed in rounds (one epoch of each per round) after a warm-up
    epoch each, so that a change of the machine's speed during the measurement hits every run alike; and the
    seconds of each warm-up epoch (which include any compilation)."""
    first = {}
    for label, run in runs.items():
        start = time.perf_counter()
        run()
        first[label] = time.perf_counter() - start
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(epochs):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}, first


def samformer_epoch(windows: Windows, batch_size: int, precision: str, passes: str, seed: int = 0) -> Callable[[], None]:
    """One epoch of samformer's own loop (as `samformer.training.fit.fit` runs it, without the validation pass).

    `passes`: "direct" (the default of `train_step`: `fused.MSEPass`, no autograd), "autograd" (the fused
    node under autograd, `forward_backward`) or "compile" (as `--compile`: SAM over Adam compiled as one
    function per step, `samformer.training.compiled_step`).
    """
    torch.manual_seed(seed)
    model = SAMformer(windows.series.shape[1], SEQ_LEN, HORIZON).train()
    cfg = TrainConfig(batch_size=batch_size, precision=precision, compile=passes == "compile")
    optimizer = build_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(seed)
    if passes == "compile":
        step, update = build_step_and_update(model, optimizer, torch.device("cpu"), cfg, None)

        def run_compiled() -> None:
            for idx in torch.randperm(len(windows), generator=generator).split(batch_size):
                update(step(windows, idx)[0])

        return run_compiled
    step_fn = {"direct": None, "autograd": forward_backward}[passes]

    def run() -> None:
        for idx in torch.randperm(len(windows), generator=generator).split(batch_size):
            x, y = windows.batch(idx)
            train_step(model, optimizer, x, y, precision, forward_backward_fn=step_fn)

    return run


def reference_epoch(series: torch.Tensor, batch_size: int, seed: int = 0) -> Callable[[], None]:
    """One epoch of the re-created original training step."""
    torch.manual_seed(seed)
    model = original.OriginalSAMformer(series.shape[1], SEQ_LEN, HORIZON)
    optimizer = original.OriginalSAM(model.parameters(), torch.optim.Adam, rho=0.7, lr=1e-3)
    loader = original.make_loader(series, SEQ_LEN, HORIZON, batch_size, seed)
    return lambda: original.train_epoch(model, optimizer, loader)


def training_steps(windows: Windows, batch_size: int, precision: str, seed: int = 0) -> Callable[[], None]:
    """One call = one samformer training step (direct passes) on the next batch of a fixed shuffled order."""
    torch.manual_seed(seed)
    model = SAMformer(windows.series.shape[1], SEQ_LEN, HORIZON).train()
    optimizer = build_optimizer(model, TrainConfig(batch_size=batch_size))
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed)).split(batch_size)
    count = iter(range(10**9))

    def step() -> None:
        x, y = windows.batch(order[next(count) % (len(order) - 1)])  # never the ragged last batch
        train_step(model, optimizer, x, y, precision)

    return step


def memory_roofline(windows: Windows, batch_sizes: list[int], peak: dict[str, float], bandwidth: float) -> dict[str, dict]:
    """Per batch size and precision: bytes a step moves (the floor and as executed), FLOPs as computed, and the
    epoch's roofline floor max(FLOP floor, bytes floor) in seconds; printed and returned."""
    D, n_windows, rows = windows.series.shape[1], len(windows), {}
    header = f"{'GFLOP/step':>11}{'MB floor':>10}{'MB executed':>12}{'FLOP s':>8}{'bytes s':>9}{'exec. bytes s':>14}{'roofline s':>11}"
    print(f"\nroofline per epoch (bytes at the triad bandwidth)\n{'batch':>5} {'prec':>5}{header}")
    for batch in batch_sizes:
        steps = -(-n_windows // batch)
        gflop = batch * fused_flops_per_window(D, SEQ_LEN, HORIZON, batch) / 1e9
        floor_bytes = roofline.state_bytes_floor(D, SEQ_LEN, HORIZON, D_MODEL, batch)
        for precision in ("fp32", "bf16"):
            step = training_steps(windows, batch, precision)
            for _ in range(2):
                step()
            executed, by_op = roofline.executed_bytes_per_step(step, steps=3)
            row = {
                "gflop_per_step": gflop,
                "bytes_floor_per_step": floor_bytes,
                "bytes_executed_per_step": executed,
                "bytes_executed_by_op": dict(list(by_op.items())[:12]),
                "flop_floor_s": steps * gflop / peak[precision],
                "bytes_floor_s": steps * floor_bytes / bandwidth / 1e9,
                "executed_bytes_s": steps * executed / bandwidth / 1e9,
            }
            row["roofline_s"] = max(row["flop_floor_s"], row["bytes_floor_s"])
            rows[f"{batch}/{precision}"] = row
            print(
                f"{batch:>5} {precision:>5}{gflop:>11.3f}{floor_bytes / 1e6:>10.1f}{executed / 1e6:>12.1f}{row['flop_floor_s']:>8.3f}"
                f"{row['bytes_floor_s']:>9.3f}{row['executed_bytes_s']:>14.3f}{row['roofline_s']:>11.3f}"
            )
    return rows


def profile_epochs(windows: Windows, batch_sizes: list[int], out_dir: Path) -> dict[str, dict]:
    """Top-15 operators by self time of one epoch (direct passes) and operator counts per step, per batch size
    and precision; each table also written to `out_dir`/profile_b<batch>_<precision>.txt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for batch in batch_sizes:
        for precision in ("fp32", "bf16"):
            epoch = samformer_epoch(windows, batch, precision, "direct")
            epoch()  # warm-up
            table, top = roofline.profile_epoch(epoch)
            counts = roofline.op_counts_per_step(training_steps(windows, batch, precision))
            load = os.getloadavg()[0]
            setting = f"one epoch, batch {batch}, {precision}, {torch.get_num_threads()} threads, load average {load:.1f}"
            text = f"{setting}\n{table}\nper step: {counts}\n"
            (out_dir / f"profile_b{batch}_{precision}.txt").write_text(text)
            print(f"\n{text}", end="", flush=True)
            found[f"{batch}/{precision}"] = {"top": top, "counts_per_step": counts}
    return found


def train_cli(precision: str, data_dir: str | None, compile_cache: str | None = None) -> dict:
    """Run `samformer train --dataset ETTh1 --horizon 96` and return its summary plus the process wall time.

    With `compile_cache`, the run adds `--compile` and keeps Inductor's compiled kernels in that directory
    (an empty one: the compilation is paid in the run; a filled one: it is mostly read back).
    """
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "samformer", "train", "--dataset", "ETTh1", "--horizon", str(HORIZON), "--quiet"]
        cmd += ["--precision", precision, "--out", os.path.join(tmp, "run")] + (["--data-dir", data_dir] if data_dir else [])
        env = dict(os.environ)
        if compile_cache is not None:
            cmd.append("--compile")
            env["TORCHINDUCTOR_CACHE_DIR"] = compile_cache
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "fit_s": summary["train_seconds"],  # inside `fit`: epochs, evaluations, checkpoints, restore, test score
        "test_mse": summary["test_mse"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
    }


def _describe(run: dict) -> str:
    """One line on a `train_cli` run."""
    return (
        f"test MSE {run['test_mse']:.4f}, {run['wall_s']:.1f} s process wall time "
        f"({run['fit_s']:.1f} s in fit; best epoch {run['best_epoch']} of {run['epochs_run']})"
    )


MEMORY_PROBE = """
import resource, sys, torch
from samformer.cli.allocator import keep_freed_memory
if sys.argv[4] == "1":
    keep_freed_memory()  # as `samformer train` does
from samformer.data.series import Windows
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step
from samformer.training.evaluation import evaluate
rows, channels, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
series = torch.randn(rows, channels)  # a traffic-sized panel: (T, D)
windows = Windows(series, 512, 96)
model = SAMformer(channels, 512, 96)
optimizer = build_optimizer(model, TrainConfig())
for idx in torch.randperm(len(windows))[: 32 * steps].split(32):
    x, y = windows.batch(idx)
    train_step(model, optimizer, x, y, "fp32")
evaluate(model, Windows(series[:4000], 512, 96), batch_size=256)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(rows: int, channels: int, steps: int, keep_freed: bool) -> dict:
    """Peak RSS (MiB) of training at batch 32 on a synthetic (rows, channels) panel, in a fresh process."""
    argv = [sys.executable, "-c", MEMORY_PROBE, *map(str, (rows, channels, steps, int(keep_freed)))]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    n_windows = rows - SEQ_LEN - HORIZON + 1
    return {
        "rows": rows,
        "channels": channels,
        "train_steps": steps,
        "peak_rss_mib": int(done.stdout.strip().splitlines()[-1]) / 1024,
        "series_mib": rows * channels * 4 / 2**20,
        "materialised_windows_mib": n_windows * channels * (SEQ_LEN + HORIZON) * 4 / 2**20,
    }


@torch.inference_mode()
def inference(windows: Windows, precision: str) -> dict:
    """Latency of one forecast (batch 1, public (B, L, D) layout) and throughput at batch 256."""
    torch.manual_seed(0)
    model = SAMformer(windows.series.shape[1], SEQ_LEN, HORIZON).eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    x1 = windows.batch(slice(0, 1))[0].transpose(1, 2).contiguous()  # (1, L, D)
    x256 = windows.batch(slice(0, 256))[0].transpose(1, 2).contiguous()  # (256, L, D)
    with autocast:
        for _ in range(20):
            model(x1)
        latencies = []
        for _ in range(300):
            start = time.perf_counter()
            model(x1)
            latencies.append(time.perf_counter() - start)
        model(x256)
        start, reps = time.perf_counter(), 20
        for _ in range(reps):
            model(x256)
        per_batch = (time.perf_counter() - start) / reps
    return {"latency_ms_batch1": 1e3 * statistics.median(latencies), "windows_per_s_batch256": 256 / per_batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one timed epoch per configuration; no training runs")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per configuration (default 3, quick 1)")
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA"), help="directory with ETTh1.csv (default $SAMFORMER_DATA)")
    parser.add_argument("--batch-sizes", default="256,32", help="comma-separated (default 256,32)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    parser.add_argument("--train-runs", type=int, default=3, help="`samformer train` runs per precision (default 3; median reported)")
    parser.add_argument("--out", default=None, help="also write the JSON summary to this file")
    parser.add_argument("--profile", action="store_true", help="top-15 operators of one epoch and op counts per step, to results/speed/")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc thresholds alone (the CLI sets them)")
    args = parser.parse_args()
    kept = not args.default_malloc and keep_freed_memory()  # as the `samformer` CLI does; every configuration runs under it
    epochs = args.epochs or (1 if args.quick else 3)
    warnings.filterwarnings("ignore", message=".*torch.compile.*")
    # an empty Inductor cache, so that each compiled configuration's first epoch includes a cold compilation
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="speed-inductor-")

    data = load_dataset("ETTh1", SEQ_LEN, HORIZON, data_dir=args.data_dir)
    windows = data.windows("train")
    n_windows, n_channels = len(windows), data.n_channels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ETTh1 L={SEQ_LEN} H={HORIZON}: {n_windows} training windows")
    print(f"glibc malloc keeps freed memory (samformer.cli.allocator): {'yes' if kept else 'no'}")
    peaks = matmul_peaks()
    print(f"\nmatmul GFLOP/s{'':<12}{'fp32':>8}{'bf16':>8}{'bf16 autocast':>15}")
    for shape, row in peaks.items():
        print(f"  {shape:<24}{row['fp32']:>8.0f}{row['bf16']:>8.0f}{row['bf16_autocast']:>15.0f}")
    peak = {"fp32": max(r["fp32"] for r in peaks.values()), "bf16": max(r["bf16"] for r in peaks.values())}
    gflop_epoch = n_windows * flops_per_window(n_channels, SEQ_LEN, HORIZON) / 1e9
    floor = {p: gflop_epoch / peak[p] for p in peak}
    print(f"peak (best shape): fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    print(f"one SAM epoch: {gflop_epoch:.1f} GFLOP -> floor {floor['fp32']:.2f} s (fp32), {floor['bf16']:.2f} s (bf16)")
    folded = {b: n_windows * fused_flops_per_window(n_channels, SEQ_LEN, HORIZON, int(b)) / 1e9 for b in args.batch_sizes.split(",")}
    for b, gflop in folded.items():
        print(
            f"  as samformer computes it (samformer.nn.fused: values folded, no input gradient), batch {b}: {gflop:.1f} GFLOP "
            f"-> {gflop / peak['fp32']:.2f} s (fp32), {gflop / peak['bf16']:.2f} s (bf16)"
        )
    bandwidth = roofline.memory_bandwidth()
    print(f"memory bandwidth (fp32 tensors of 256 MB, best of 5): copy {bandwidth['copy']:.1f} GB/s, triad {bandwidth['triad']:.1f} GB/s")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    floors = memory_roofline(windows, batch_sizes, peak, bandwidth["triad"])

    configs = [
        ("reference (original step)", "fp32", None),
        ("samformer fp32", "fp32", "direct"),
        ("samformer bf16", "bf16", "direct"),
        ("samformer bf16, autograd passes", "bf16", "autograd"),
    ]
    if not args.no_compile:
        configs += [("samformer fp32 + compile", "fp32", "compile"), ("samformer bf16 + compile", "bf16", "compile")]
    precision_of = {label: precision for label, precision, _ in configs}
    epoch_s: dict[str, dict[str, float]] = {}
    first_epoch_s: dict[str, dict[str, float]] = {}
    peak_after: dict[str, dict[str, float]] = {}
    print(f"\n{'batch':>5}  {'configuration':<34}{'s/epoch':>9}{'x floor':>9}{'x roofline':>11}{'speed-up':>10}{'1st epoch':>11}")
    for batch in batch_sizes:
        runs = {
            label: reference_epoch(data.train, batch) if passes is None else samformer_epoch(windows, batch, precision, passes)
            for label, precision, passes in configs
        }
        row, first = time_interleaved(runs, epochs)
        epoch_s[str(batch)], first_epoch_s[str(batch)] = row, first
        for label, seconds in row.items():
            speedup = row["reference (original step)"] / seconds
            to_roofline = seconds / floors[f"{batch}/{precision_of[label]}"]["roofline_s"]
            to_floor = seconds / floor[precision_of[label]]
            figures = f"{seconds:>9.3f}{to_floor:>9.2f}{to_roofline:>11.2f}{speedup:>9.2f}x{first[label]:>11.2f}"
            print(f"{batch:>5}  {label:<34}{figures}", flush=True)
        peak_after[str(batch)] = report_peak_again(batch, row, peaks, peak, floors, precision_of, bandwidth["triad"])
        for precision in ("fp32", "bf16") if not args.no_compile else ():
            eager, compiled = f"samformer {precision}", f"samformer {precision} + compile"
            saved, paid = row[eager] - row[compiled], first[compiled] - row[compiled]
            payback = f"after {paid / saved:.0f} epochs" if saved > 0 else "never"
            print(f"{batch:>5}  {precision} compile: {paid:.1f} s compiling (1st epoch - median), {saved:.3f} s/epoch saved: {payback}")

    summary = {
        "peak_gflops_fp32": peak["fp32"],
        "peak_gflops_bf16": peak["bf16"],
        "matmul_gflops_by_shape": peaks,
        "gflop_per_epoch": gflop_epoch,
        "gflop_per_epoch_as_computed": folded,
        "floor_s_fp32": floor["fp32"],
        "floor_s_bf16": floor["bf16"],
        "malloc_keeps_freed_memory": kept,
        "epoch_s": epoch_s,
        "first_epoch_s": first_epoch_s,
        "peak_gflops_after_epochs": peak_after,
        "memory_bandwidth_gbs": bandwidth,
        "roofline": floors,
    }
    if args.profile:
        summary["profile"] = profile_epochs(windows, batch_sizes, Path(__file__).resolve().parent.parent / "results" / "speed")
    main_batch = epoch_s.get("256") or next(iter(epoch_s.values()))
    summary.update(
        epoch_s_reference=main_batch["reference (original step)"],
        epoch_s_fp32=main_batch["samformer fp32"],
        epoch_s_bf16=main_batch["samformer bf16"],
        test_mse_fp32=None,
        test_mse_bf16=None,
    )

    if not args.quick:
        n_runs = args.train_runs
        print(f"\nsamformer train --dataset ETTh1 --horizon 96 (the paper's protocol, seed 0), process wall time, {n_runs} runs each:")
        runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
        for _ in range(n_runs):  # alternating, so that both precisions meet the same machine
            for precision, done in runs.items():
                done.append(train_cli(precision, args.data_dir))
        for precision, done in runs.items():
            for run in done:
                print(f"  --precision {precision}: {_describe(run)}", flush=True)
            median = statistics.median(run["wall_s"] for run in done)
            print(f"  --precision {precision}: median {median:.1f} s")
            summary[f"test_mse_{precision}"] = done[0]["test_mse"]
            summary[f"train_to_best_s_{precision}"] = median
            summary[f"train_runs_{precision}"] = done
        print(f"  |MSE bf16 - MSE fp32| = {abs(summary['test_mse_bf16'] - summary['test_mse_fp32']):.5f}")
        if not args.no_compile:
            with tempfile.TemporaryDirectory() as cache:
                for label in ("cold", "warm"):  # the first run fills the empty kernel cache, the second reads it
                    run = train_cli("bf16", args.data_dir, compile_cache=cache)
                    summary[f"train_to_best_s_bf16_compile_{label}"] = run["wall_s"]
                    summary[f"train_run_bf16_compile_{label}"] = run
                    print(f"  --precision bf16 --compile ({label} Inductor cache): {_describe(run)}", flush=True)
        memory = peak_memory(rows=17544, channels=862, steps=20, keep_freed=kept)
        summary["memory_traffic_batch32"] = memory
        print(
            f"\npeak RSS, training at batch 32 on a {memory['rows']}x{memory['channels']} panel (traffic's size): "
            f"{memory['peak_rss_mib']:.0f} MiB (series {memory['series_mib']:.0f} MiB; "
            f"its windows materialised would take {memory['materialised_windows_mib']:.0f} MiB)"
        )

    summary["inference"] = {p: inference(windows, p) for p in ("fp32", "bf16")}
    for p, figures in summary["inference"].items():
        latency, throughput = figures["latency_ms_batch1"], figures["windows_per_s_batch256"]
        print(f"inference {p}: {latency:.2f} ms per forecast at batch 1, {throughput:.0f} windows/s at batch 256")
    summary["max_rss_mib_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = json.dumps(summary)
    if args.out:
        write_json(args.out, summary, make_dirs=True)
    print(line)


if __name__ == "__main__":
    main()
