#!/usr/bin/env bash
# Reproduce the paper's table and ablations with the paper's protocol (see results/benchmark/README.md).
# Resumable: re-running skips every run already stored under $OUT. Phases are ordered so that the
# cheapest, most informative cells finish first. The seeds of a cell train together as one stack
# (`samformer benchmark --stack` stacks a cell's pending seeds), so they are asked for together.
#   usage: [PRECISION=bf16] bash benchmarks/reproduce.sh [OUT]   (default results/benchmark/runs, fp32)
set -euo pipefail
OUT="${1:-results/benchmark/runs}"
WORKERS="${WORKERS:-2}"
LOG="$(dirname "$OUT")/wall_times.txt"
phase() {
  local started=$SECONDS
  samformer benchmark --stack --workers "$WORKERS" --out "$OUT" ${PRECISION:+--precision "$PRECISION"} "$@"
  echo "$(date -u +%FT%TZ) $((SECONDS - started))s samformer benchmark --stack --workers $WORKERS --out $OUT ${PRECISION:+--precision $PRECISION} $*" >> "$LOG"
}
phase --datasets ETTh1,ETTh2 --seeds 0,1,2
phase --datasets exchange_rate --seeds 0,1,2
phase --datasets ETTh1,ETTh2 --seeds 0 --variants no-sam,sigma-reparam,linear,no-revin
phase --datasets ETTm1,ETTm2 --seeds 0,1,2
phase --datasets weather --seeds 0,1,2
