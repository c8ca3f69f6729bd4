#!/usr/bin/env bash
# Fuzz soak run: scripts/fuzz.sh for longer (default 600 s), with the same
# seeds, checks and pass/fail rule; the summary goes to bench/results/fuzz.json.
# Exits non-zero on any crash, leak or sanitizer report, like the smoke run.
#
# usage: bench/fuzz.sh [SECONDS] [extra libFuzzer args...]   (env FUZZ_SOAK_SECONDS)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECS=${1:-${FUZZ_SOAK_SECONDS:-600}}
shift || true
mkdir -p bench/results

FUZZ_SUMMARY_JSON=bench/results/fuzz.json exec scripts/fuzz.sh "$SECS" "$@"
