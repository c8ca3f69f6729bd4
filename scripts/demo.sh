#!/usr/bin/env bash
# `make demo`: build airlock and walk through the release engineer's side of
# the chain — keygen, sign, verify, dump — on a small made-up firmware.
# PLACEHOLDER: the full demo (server, simulated device, power cuts) replaces
# this walk-through. Writes only under out/demo/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
OUT=out/demo # relative to the repo root, so the commands shown read naturally

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B='' N=''; fi
step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; }
run() {
    step "$*"
    "$@"
}

scripts/deps.sh
mkdir -p build
cmake -S . -B build >build/configure.log 2>&1 || { cat build/configure.log; exit 1; }
cmake --build build -j"$JOBS" >/dev/null

AIRLOCK=build/tools/airlock
if [ ! -x "$AIRLOCK" ]; then
    echo "demo: $AIRLOCK was not built yet; nothing more to show"
    exit 0
fi

rm -rf "$OUT"
mkdir -p "$OUT"
# A stand-in firmware: 20 KiB of deterministic bytes.
head -c 20480 /dev/zero | tr '\0' '\132' >"$OUT/firmware.bin"

run "$AIRLOCK" keygen -t ecdsa-p256 -k "$OUT/key.pem"
run "$AIRLOCK" getpub -k "$OUT/key.pem"
run "$AIRLOCK" sign -k "$OUT/key.pem" --version 1.2.3+4 --header-size 0x200 \
    --slot-size 0x40000 --align 8 --pad-header "$OUT/firmware.bin" "$OUT/firmware-signed.bin"
run "$AIRLOCK" verify -k "$OUT/key.pem" "$OUT/firmware-signed.bin"
run "$AIRLOCK" dump -k "$OUT/key.pem" "$OUT/firmware-signed.bin"

# The same firmware as an update for the secondary slot: padded to the slot,
# with the trailer magic that asks the bootloader for a trial (TEST) install.
run "$AIRLOCK" sign -k "$OUT/key.pem" --version 1.2.4 --header-size 0x200 \
    --slot-size 0x40000 --align 8 --pad-header --test "$OUT/firmware.bin" "$OUT/update-slot.bin"
run "$AIRLOCK" dump "$OUT/update-slot.bin"

# A tampered copy must be refused (exit 6: hash mismatch).
cp "$OUT/firmware-signed.bin" "$OUT/firmware-tampered.bin"
printf '\001' | dd of="$OUT/firmware-tampered.bin" bs=1 seek=4096 conv=notrunc status=none
step "$AIRLOCK verify -k $OUT/key.pem $OUT/firmware-tampered.bin   # expect refusal"
set +e
"$AIRLOCK" verify -k "$OUT/key.pem" "$OUT/firmware-tampered.bin"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
    echo "demo: FAILED: a tampered image verified" >&2
    exit 1
fi
echo "(refused with exit code $rc, as it should be)"
echo
echo "demo: done; files in $OUT/"
