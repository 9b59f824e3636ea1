#!/usr/bin/env bash
# The hot start at the paper's decoder on one GPU: the controls grid (40x40 not squeezed against permuted
# glyphs, noise images and an adapter started at the index table's scale, with index) and the explain grid's
# paper-decoder rows (index, orig 8x8, 40x40 not squeezed), every seed, then the report of the folder.
# Resumable: rerun the same command and finished runs are skipped, a half-finished one resumes.
#
#   scripts/gpu_hot_start.sh [OUT]        OUT defaults to docs/results/paper
#
# Settings from the environment: SCALE (paper), DEVICE (cuda), PRECISION (bf16), SEEDS (0,1,2), DATA (a
# prepared corpus; default: the built-in one, prepared into OUT/data). The same script at smoke scale on a
# CPU, as tests/test_gpu_script.py runs it (there on a small prepared corpus):
#   SCALE=smoke DEVICE=cpu PRECISION=fp32 SEEDS=0 scripts/gpu_hot_start.sh /tmp/hot-smoke
set -euo pipefail
out=${1:-docs/results/paper}
common=(--scale "${SCALE:-paper}" --out "$out" --device "${DEVICE:-cuda}" --precision "${PRECISION:-bf16}"
        --seeds "${SEEDS:-0,1,2}" ${DATA:+--data "$DATA"} --quiet)
start=$(date +%s)
hotstart sweep controls "${common[@]}"
hotstart sweep explain "${common[@]}" --only hot-orig-8x8-s
hotstart report "$out" --out "$out"
echo "gpu_hot_start: ${SCALE:-paper} scale into $out in $(( $(date +%s) - start )) s"
