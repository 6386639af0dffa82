#!/usr/bin/env bash
# 5-seed ensembles (mean forecast) per cell, as their own table, never mixed into the paper comparison.
# Each cell's five seeds train together as one stack; `samformer benchmark --stack` then stores, beside the five
# run files, the ensemble's record (ensemble-seeds0-1-2-3-4.json). Resumable (a cell interrupted mid-stack
# is trained again as a whole). Use a fresh OUT: a cell whose seeds were stored by earlier, separate runs
# has no ensemble (its models are not kept).
#   usage: [PRECISION=bf16] bash benchmarks/ensembles.sh [OUT]   (default results/benchmark/ensembles)
set -euo pipefail
OUT="${1:-results/benchmark/ensembles}"
WORKERS="${WORKERS:-2}"
DATASETS="${DATASETS:-ETTh1,ETTh2,ETTm1,ETTm2,exchange_rate,weather}"
LOG="$OUT/wall_times.txt"
mkdir -p "$OUT"
started=$SECONDS
samformer benchmark --stack --datasets "$DATASETS" --seeds 0,1,2,3,4 --workers "$WORKERS" --out "$OUT/runs" ${PRECISION:+--precision "$PRECISION"}
echo "$(date -u +%FT%TZ) $((SECONDS - started))s samformer benchmark --stack --datasets $DATASETS --seeds 0,1,2,3,4 ${PRECISION:+--precision $PRECISION}" >> "$LOG"
samformer table "$OUT/runs" --ensembles > "$OUT/ensembles.md"
samformer table "$OUT/runs" > "$OUT/single_models.md"  # the same runs one model at a time, for comparison
echo "wrote $OUT/ensembles.md and $OUT/single_models.md"
