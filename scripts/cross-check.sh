#!/usr/bin/env bash
# Cortex-M3 cross build of the device code (every core/*.c, crypto/mbedtls.c,
# the mbedTLS subset from Debian's source package) followed by the freestanding
# check. Incremental: a second run rebuilds nothing that did not change.
# Exit 77 (ctest "skipped") when the toolchain or mbedTLS source is missing.
#
# usage: scripts/cross-check.sh [BUILD_DIR]   (default: build-cm3)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="${1:-$ROOT/build-cm3}"
X="${AIRLOCK_CROSS_PREFIX:-arm-none-eabi-}"

if ! command -v "${X}gcc" >/dev/null 2>&1; then
    echo "cross-check: ${X}gcc not found; run scripts/deps.sh" >&2
    exit 77
fi
MBEDTLS_SRC="$("$ROOT/scripts/deps.sh" --print-mbedtls-dir 2>/dev/null || true)"
if [ -z "$MBEDTLS_SRC" ] || [ ! -f "$MBEDTLS_SRC/.airlock-ok" ]; then
    echo "cross-check: mbedTLS source tree missing (${MBEDTLS_SRC:-?}); run scripts/deps.sh" >&2
    exit 77
fi

mkdir -p "$B"
LOG="$B/configure.log"
cmake -S "$ROOT" -B "$B" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/arm-none-eabi.cmake" \
    -DAIRLOCK_MBEDTLS_SRC="$MBEDTLS_SRC" >"$LOG" 2>&1 || {
    cat "$LOG" >&2
    exit 1
}
# Surface configure warnings (e.g. "crypto/mbedtls.c not found").
awk '/^CMake Warning/ {getline; sub(/^ +/, ""); print "cross-check: warning: " $0}' "$LOG"
cmake --build "$B" -j"${AIRLOCK_JOBS:-2}"
exec "$ROOT/scripts/check-freestanding.sh" "$B"
