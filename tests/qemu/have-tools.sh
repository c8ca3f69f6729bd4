#!/usr/bin/env bash
# Are the tools the QEMU tests need installed? Exit 0 if so; else say which is
# missing on stderr and exit 77 (ctest "skipped"). Checks only; installs nothing.
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
X="${AIRLOCK_CROSS_PREFIX:-arm-none-eabi-}"
for t in "${AIRLOCK_QEMU:-qemu-system-arm}" "${X}gcc" python3; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "qemu tests: $t not found; run scripts/deps.sh" >&2
        exit 77
    fi
done
M="$("$ROOT/scripts/deps.sh" --print-mbedtls-dir 2>/dev/null || true)"
if [ -z "$M" ] || [ ! -f "$M/.airlock-ok" ]; then
    echo "qemu tests: mbedTLS source tree missing (${M:-?}); run scripts/deps.sh" >&2
    exit 77
fi
exit 0
