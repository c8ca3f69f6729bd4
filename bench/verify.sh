#!/usr/bin/env bash
# Verification throughput benchmark: builds bench_verify (and the airlock CLI,
# used to make the signed images) in build-bench/ as Release, runs it, and
# writes bench/results/verify.json. Leaves other build dirs alone; re-runnable.
#
# usage: bench/verify.sh [bench_verify args...]   (e.g. --min-time 1 --seed 42)
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
if ! cmake --build "$BUILD" --target bench_verify -j"$JOBS" >"$BUILD/build.log" 2>&1; then
    cat "$BUILD/build.log"
    exit 1
fi

# Sign with the real CLI when it builds and has 'sign'; otherwise bench_verify
# makes the same images with OpenSSL in-process (and says so).
CLI=()
if cmake --build "$BUILD" --target airlock -j"$JOBS" >"$BUILD/build-cli.log" 2>&1 &&
    "$BUILD/tools/airlock" sign --help >/dev/null 2>&1; then
    CLI=(--cli "$BUILD/tools/airlock")
elif [ -x build/tools/airlock ] && build/tools/airlock sign --help >/dev/null 2>&1; then
    echo "bench: CLI did not build in $BUILD (see $BUILD/build-cli.log); using build/tools/airlock"
    CLI=(--cli build/tools/airlock)
else
    echo "bench: no airlock CLI with 'sign'; images are signed in-process"
fi

exec "$BUILD/bench/bench_verify" "${CLI[@]}" --json "$RESULTS/verify.json" "$@"
