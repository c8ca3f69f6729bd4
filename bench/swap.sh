#!/usr/bin/env bash
# Install-engine benchmark: builds bench_swap in build-bench/ (Release), runs
# every engine of airlock_engines[] over 1/16/64/256 x 4 KiB images and a
# 512 KiB image on an STM32F4-like layout, prints the table and writes
# bench/results/swap.json. Needs nothing but the build; about a second to run.
#
# usage: bench/swap.sh [bench_swap args...]   (e.g. --engine swap-2n)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BENCH_BUILD_DIR:-build-bench}
RESULTS=bench/results
JOBS=$(nproc 2>/dev/null || echo 2)

mkdir -p "$BUILD" "$RESULTS"
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIRLOCK_SANITIZE=OFF \
    -DAIRLOCK_FUZZ=OFF >"$BUILD/configure.log" 2>&1; then
    cat "$BUILD/configure.log"
    exit 1
fi
if ! cmake --build "$BUILD" --target bench_swap -j"$JOBS" >"$BUILD/build-swap.log" 2>&1; then
    cat "$BUILD/build-swap.log"
    exit 1
fi

exec "$BUILD/bench/bench_swap" --json "$RESULTS/swap.json" "$@"
