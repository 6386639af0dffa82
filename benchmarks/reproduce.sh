#!/usr/bin/env bash
# Reproduce the paper's table (six datasets x four horizons x seeds 0-2, the paper's protocol; see
# results/benchmark/README.md) into OUT, then the ablations. Resumable: re-running skips every run already
# stored under OUT/runs. The seeds of a cell train together as one stack (`--stack`), and the workers take
# the largest stacks first, so the table is one phase with no worker idle until its last stack.
# Each phase's wall time and load average are appended to OUT/wall_times.txt.
#   usage: [PRECISION=bf16|fp32] [WORKERS=cores] [ABLATIONS=1|0] [DATASETS=ETTh1,...] bash benchmarks/reproduce.sh [OUT]
#   (default OUT results/benchmark/reproduction, PRECISION bf16; the committed fp32 table is results/benchmark/runs,
#   made with PRECISION=fp32)
set -euo pipefail
OUT="${1:-results/benchmark/reproduction}"
PRECISION="${PRECISION:-bf16}"
WORKERS="${WORKERS:-$(nproc)}"  # one single-thread worker per core
ABLATIONS="${ABLATIONS:-1}"
DATASETS="${DATASETS:-ETTh1,ETTh2,ETTm1,ETTm2,weather,exchange_rate}"  # a subset runs part of the table; re-run for the rest
mkdir -p "$OUT"
LOG="$OUT/wall_times.txt"
phase() {
  local name=$1 started=$SECONDS
  shift
  "$@"
  echo "$(date -u +%FT%TZ) $name $((SECONDS - started))s (load $(cut -d' ' -f1-3 /proc/loadavg)): $*" >> "$LOG"
}
benchmark() {
  samformer benchmark --stack --workers "$WORKERS" --precision "$PRECISION" --out "$OUT/runs" "$@"
}
phase table benchmark --datasets "$DATASETS" --seeds 0,1,2
phase render sh -c "samformer table '$OUT/runs' > '$OUT/table.md' && samformer table '$OUT/runs' --ensembles > '$OUT/ensembles.md'"
phase compare python benchmarks/reproduction_summary.py "$OUT/runs" --out "$OUT/summary.json"
if [ "$ABLATIONS" = 1 ]; then
  phase ablations benchmark --datasets ETTh1,ETTh2 --seeds 0 --variants no-sam,sigma-reparam,linear,no-revin
  phase render-ablations sh -c "samformer table '$OUT/runs' > '$OUT/table.md'"
fi
