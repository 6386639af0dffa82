#!/usr/bin/env bash
# Reproduce the paper's table and ablations with the paper's protocol (see results/benchmark/README.md).
# Resumable: re-running skips every run already stored under $OUT. Phases are ordered so that the
# cheapest, most informative cells finish first.
#   usage: bash benchmarks/reproduce.sh [OUT]   (default results/benchmark/runs)
set -euo pipefail
OUT="${1:-results/benchmark/runs}"
WORKERS="${WORKERS:-2}"
LOG="$(dirname "$OUT")/wall_times.txt"
phase() {
  local started=$SECONDS
  samformer benchmark --workers "$WORKERS" --out "$OUT" "$@"
  echo "$(date -u +%FT%TZ) $((SECONDS - started))s samformer benchmark --workers $WORKERS --out $OUT $*" >> "$LOG"
}
phase --datasets ETTh1,ETTh2 --seeds 0
phase --datasets exchange_rate --seeds 0
phase --datasets ETTh1,ETTh2 --seeds 0 --variants no-sam,sigma-reparam,linear,no-revin
phase --datasets ETTh1,ETTh2,exchange_rate --seeds 1,2
phase --datasets ETTm1,ETTm2 --seeds 0
phase --datasets weather --seeds 0
phase --datasets ETTm1,ETTm2 --seeds 1,2
phase --datasets weather --seeds 1,2
