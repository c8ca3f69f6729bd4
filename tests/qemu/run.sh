#!/usr/bin/env bash
# ctest entry for one QEMU test script: skip (77) without the tools, fail if
# the qemu_build fixture left no bootloader, else run the script.
# usage: tests/qemu/run.sh SCRIPT.py OUT_DIR [ARGS...]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SCRIPT="$1"
OUT="$2"
shift 2
"$HERE/have-tools.sh" || exit 77
if [ ! -f "$OUT/cm3/airlock_boot_mps2.elf" ] || [ ! -f "$OUT/images/v2.img" ]; then
    echo "qemu: $OUT has no bootloader or images: the qemu_build test failed or did not run" >&2
    exit 1
fi
exec python3 "$HERE/$SCRIPT" "$OUT" "$@"
