#!/usr/bin/env bash
# Build what the QEMU tests run: the Cortex-M3 cross build (bootloader and
# example firmware, cmake/cortexm/qemu-mps2.cmake) and the signed images.
# Exit 77 (ctest "skipped") when qemu-system-arm, the cross compiler or the
# mbedTLS source is missing. Never touches another build directory.
#
# usage: tests/qemu/build.sh AIRLOCK_CLI OUT_DIR
#   OUT_DIR/cm3: the cross build; OUT_DIR/images: v1..v4 and bench images
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
AIRLOCK="${1:?usage: $0 AIRLOCK_CLI OUT_DIR}"
OUT="${2:?usage: $0 AIRLOCK_CLI OUT_DIR}"
X="${AIRLOCK_CROSS_PREFIX:-arm-none-eabi-}"
KEYS="$ROOT/examples/qemu-app/keys"

"$ROOT/tests/qemu/have-tools.sh" || exit 77
MBEDTLS_SRC="$("$ROOT/scripts/deps.sh" --print-mbedtls-dir)"

B="$OUT/cm3"
mkdir -p "$B" "$OUT/images"
if ! cmake -S "$ROOT" -B "$B" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/arm-none-eabi.cmake" \
    -DAIRLOCK_MBEDTLS_SRC="$MBEDTLS_SRC" >"$B/configure.log" 2>&1; then
    cat "$B/configure.log" >&2
    exit 1
fi
cmake --build "$B" -j"${AIRLOCK_JOBS:-2}" --target airlock_boot_mps2 airlock_boot_mps2_full \
    qemu_app qemu_app_noconfirm >"$B/build.log" 2>&1 || {
    tail -40 "$B/build.log" >&2
    exit 1
}

# The key compiled into the bootloader must be the public half of the test key.
if ! "$AIRLOCK" getpub -k "$KEYS/test-p256.pem" --lang c | cmp -s - "$KEYS/test_p256_pub.c"; then
    echo "build.sh: examples/qemu-app/keys/test_p256_pub.c is not 'airlock getpub -k test-p256.pem'" >&2
    exit 1
fi

I="$OUT/images"
sign() { # raw out version key [extra...]
    local raw="$1" out="$2" ver="$3" key="$4"
    shift 4
    "$AIRLOCK" sign -q -H 0x200 --pad-header -v "$ver" -S 0x50000 --align 4 -k "$key" "$@" \
        "$raw" "$out"
}
sign "$B/qemu_app.bin" "$I/v1.img" 1.0.0 "$KEYS/test-p256.pem"
sign "$B/qemu_app.bin" "$I/v2.img" 2.0.0 "$KEYS/test-p256.pem"
sign "$B/qemu_app.bin" "$I/v3-wrong-key.img" 3.0.0 "$KEYS/other-p256.pem"
sign "$B/qemu_app.bin" "$I/v3-wrong-key-padded.img" 3.0.0 "$KEYS/other-p256.pem" --pad
sign "$B/qemu_app_noconfirm.bin" "$I/v4-noconfirm.img" 4.0.0 "$KEYS/test-p256.pem"
echo "build.sh: bootloader and app images ready in $OUT"
"${X}size" "$B/airlock_boot_mps2.elf" "$B/airlock_boot_mps2_full.elf" "$B/qemu_app.elf"
