#!/usr/bin/env bash
# Wall time of `samformer train --dataset ETTh1 --horizon 96` (the paper's protocol), repeated over time:
# this machine's speed drifts by tens of percent within minutes, so one run says little.
#
#   RUNS=12 PAUSE=240 PRECISION=bf16 bash benchmarks/train_to_best.sh > results/speed/train_to_best.jsonl
#
# One JSON line per run: UTC start, process wall time, and the run's test MSE, best epoch, epochs and
# seconds per epoch. Needs SAMFORMER_DATA (or the benchmark CSVs in samformer's cache).
set -euo pipefail
runs="${RUNS:-12}" pause="${PAUSE:-240}" precision="${PRECISION:-bf16}"
python="${PYTHON:-python}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$runs"); do
  started="$(date -u +%FT%TZ)"
  t0="$(date +%s.%N)"
  "$python" -m samformer train --dataset ETTh1 --horizon 96 --precision "$precision" --quiet --out "$out/run$i" > /dev/null
  t1="$(date +%s.%N)"
  "$python" - "$out/run$i/result.json" "$started" "$t0" "$t1" "$precision" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
print(json.dumps({
    "started_utc": sys.argv[2], "precision": sys.argv[5], "wall_s": round(float(sys.argv[4]) - float(sys.argv[3]), 2),
    "fit_s": round(result["train_seconds"], 2), "test_mse": result["test_mse"], "best_epoch": result["best_epoch"],
    "epochs_run": result["epochs_run"], "epoch_s": [round(h["seconds"], 2) for h in result["history"]],
}), flush=True)
PY
  if [ "$i" -lt "$runs" ]; then sleep "$pause"; fi
done
