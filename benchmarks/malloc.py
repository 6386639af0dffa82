"""Training steps with glibc's default malloc thresholds and with `samformer.cli.allocator.keep_freed_memory`.

    python benchmarks/malloc.py [--rounds 3] [--data-dir ../shared/data] [--out results/speed/malloc.json]

The thresholds are process-wide and fixed at start-up, so each measurement is a fresh child process;
the two settings alternate, `--rounds` times each. A child times bf16 SAM steps on ETTh1 (L=512, H=96)
at batch 32 and 256 (best of 3 passes over the same batches, after a warm-up) and counts the minor page
faults per step. Prints a table; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from samformer.files import write_json

CHILD = """
import json, resource, sys, time, torch
from samformer.cli.allocator import keep_freed_memory
kept = sys.argv[1] == "kept" and keep_freed_memory()
from samformer.data.loading import load_dataset
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step
windows = load_dataset("ETTh1", 512, 96, data_dir=sys.argv[2] or None).windows("train")
result = {"kept": kept}
for batch, steps in ((32, 200), (256, 31)):
    batches = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0)).split(batch)[:steps]
    torch.manual_seed(0)
    model = SAMformer(7, 512, 96).train()
    optimizer = build_optimizer(model, TrainConfig())
    for idx in batches[:10]:
        train_step(model, optimizer, *windows.batch(idx), "bf16")
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        start = time.perf_counter()
        for idx in batches:
            train_step(model, optimizer, *windows.batch(idx), "bf16")
        times.append((time.perf_counter() - start) / len(batches) * 1e3)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (3 * len(batches))
    result[str(batch)] = {"ms_per_step": min(times), "faults_per_step": faults}
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="child processes per setting (alternating)")
    parser.add_argument("--data-dir", default=os.environ.get("SAMFORMER_DATA", ""), help="benchmark CSVs (default $SAMFORMER_DATA)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "kept": []}
    for _ in range(args.rounds):
        for setting, done in runs.items():
            child = subprocess.run([sys.executable, "-c", CHILD, setting, args.data_dir], check=True, capture_output=True, text=True)
            done.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(setting, done[-1], flush=True)
    if not all(run["kept"] for run in runs["kept"]):
        sys.exit("keep_freed_memory() did not apply here (not Linux with glibc): nothing to compare")
    summary = {}
    print(f"\n{'malloc':<10}{'batch':>6}{'ms/step (median)':>18}{'page faults/step':>18}")
    for setting, done in runs.items():
        for batch in ("32", "256"):
            ms = statistics.median(run[batch]["ms_per_step"] for run in done)
            faults = statistics.median(run[batch]["faults_per_step"] for run in done)
            summary[f"{setting}_{batch}"] = {"ms_per_step": ms, "faults_per_step": faults}
            print(f"{setting:<10}{batch:>6}{ms:>18.2f}{faults:>18.0f}")
    result = {"rounds": args.rounds, "median": summary, "runs": runs}
    if args.out:
        write_json(args.out, result, make_dirs=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
