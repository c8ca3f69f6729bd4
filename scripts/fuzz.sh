#!/usr/bin/env bash
# Fuzz smoke run: build tests/fuzz/fuzz_image and fuzz_ddi with clang +
# libFuzzer + ASan/UBSan in build-fuzz/, seed fresh corpora (the imgtool
# vectors; DDI answers shaped like a server's), fuzz the image target for
# SECONDS and the DDI client for a third of that (at least 5 s), and exit
# non-zero on any crash, leak, sanitizer report or timeout.
# Never touches other build dirs; safe to re-run (corpus is regenerated).
#
# usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer args...]
# env:   FUZZ_BUILD_DIR (build-fuzz), FUZZ_CORPUS (<build>/corpus),
#        FUZZ_MAX_LEN (131072), FUZZ_SUMMARY_JSON (<build>/fuzz-summary.json),
#        AIRLOCK_VECTORS (../shared/vectors/imgtool), CC (clang)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_TO_RUN=${1:-30}
shift || true
case $SECONDS_TO_RUN in
'' | *[!0-9]*) echo "usage: $0 SECONDS [libFuzzer args...]" >&2; exit 2 ;;
esac

BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
CORPUS=${FUZZ_CORPUS:-$BUILD/corpus}
ARTIFACTS=$BUILD/artifacts
LOG=$BUILD/fuzz.log
SUMMARY_JSON=${FUZZ_SUMMARY_JSON:-$BUILD/fuzz-summary.json}
# 128 KiB covers the largest vector (70.5 KB) plus its slot-mode prefix with
# room for growth; larger inputs only slow mutation down (each input is
# hashed up to 8 times), and core's length checks do not depend on size.
MAX_LEN=${FUZZ_MAX_LEN:-131072}
VECTORS=${AIRLOCK_VECTORS:-$ROOT/../shared/vectors/imgtool}
export CC=${CC:-clang}
JOBS=$(nproc 2>/dev/null || echo 2)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if ! command -v "$CC" >/dev/null; then
    echo "fuzz: $CC not found (scripts/deps.sh installs clang)" >&2
    exit 1
fi
if [ ! -d "$VECTORS" ]; then
    echo "fuzz: vectors folder $VECTORS missing (set AIRLOCK_VECTORS)" >&2
    exit 1
fi
VECTORS=$(cd "$VECTORS" && pwd)
export AIRLOCK_VECTORS=$VECTORS

# A build dir configured with another compiler cannot be switched in place.
if [ -f "$BUILD/CMakeCache.txt" ] &&
    ! grep -q "^CMAKE_C_COMPILER:[A-Z]*=.*clang" "$BUILD/CMakeCache.txt"; then
    echo "fuzz: $BUILD was configured with another compiler; recreating it"
    rm -rf "$BUILD"
fi
mkdir -p "$BUILD"
# One run at a time per build dir (make test and a soak run may overlap).
if command -v flock >/dev/null; then
    exec 9>"$BUILD/.fuzz.lock"
    if ! flock -n 9; then
        echo "fuzz: another fuzz run holds $BUILD; waiting for it"
        flock 9
    fi
fi
if ! cmake -S . -B "$BUILD" -DAIRLOCK_FUZZ=ON -DAIRLOCK_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIRLOCK_SHARED_DIR="$(cd "$VECTORS/../.." && pwd)" \
    >"$BUILD/configure.log" 2>&1; then
    cat "$BUILD/configure.log"
    exit 1
fi
if ! cmake --build "$BUILD" --target fuzz_image fuzz_ddi -j"$JOBS" >"$BUILD/build.log" 2>&1; then
    cat "$BUILD/build.log"
    exit 1
fi
FUZZER=$BUILD/tests/fuzz/fuzz_image

# ---- seed corpus (regenerated every run) ----
rm -rf "$CORPUS" "$ARTIFACTS"
mkdir -p "$CORPUS" "$ARTIFACTS"
SEEDS=$CORPUS

seed() { # seed NAME: stdin -> corpus file
    cat >"$SEEDS/$1"
}
# printf understands \xHH; le16/le32 write little-endian fields.
le16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))"; }
le32() { le16 $(($1 & 65535)); le16 $((($1 >> 16) & 65535)); }
header() { # header HDR_SIZE PROT_TLV_SIZE IMG_SIZE FLAGS
    printf '\x3d\xb8\xf3\x96'; le32 0; le16 "$1"; le16 "$2"; le32 "$3"; le32 "$4"
    printf '\x01\x02\x03\x00\x04\x00\x00\x00'; le32 0
}
ff() { head -c "$1" /dev/zero | tr '\0' '\377'; }

# 1. Every imgtool vector as an image, and (prefixed with a selector byte)
#    as the start of a slot: 0x00 = 1 byte of erased padding, 0x05 = 32
#    bytes, 0x0b = 4 x 4096 bytes.
for f in "$VECTORS"/*.bin; do
    b=$(basename "$f" .bin)
    cp "$f" "$SEEDS/vec-$b"
    case $b in payload-*) continue ;; esac
    for sel in 00 05 0b; do
        { printf "\\x$sel"; cat "$f"; } | seed "slot$sel-$b"
    done
done

# 2. Truncations of a small signed image at every structural boundary
#    (header, payload end, TLV info, inside a TLV, one byte short).
SMALL=$VECTORS/ecdsa-p256.signed.bin
if [ -f "$SMALL" ]; then
    size=$(wc -c <"$SMALL")
    for n in 0 1 4 31 32 33 5000 5001 5003 5004 5007 5008 5040 5044 5080 $((size - 1)); do
        if [ "$n" -le "$size" ]; then head -c "$n" "$SMALL" | seed "trunc-$n"; fi
    done
    # One byte flipped in the header, the TLV info and the signature.
    for off in 9 12 5001 5002 $((size - 10)); do
        { head -c "$off" "$SMALL"; printf '\xa5'; tail -c +$((off + 2)) "$SMALL"; } |
            seed "flip-$off"
    done
fi

# 3. Hand-made images: the smallest valid layout, a protected area with a
#    security counter, lengths that overflow, a truncated TLV.
{ header 32 0 0 0; printf '\x07\x69\x04\x00'; } | seed "min-empty-tlvs"
{ header 32 0 0 0; printf '\x07\x69\x08\x00\x10\x00\x00\x00'; } | seed "min-zero-len-hash"
{ header 32 12 4 0; printf 'abcd'; printf '\x08\x69\x0c\x00\x50\x00\x04\x00\x07\x00\x00\x00'
  printf '\x07\x69\x28\x00\x10\x00\x20\x00'; head -c 32 /dev/zero; } | seed "prot-seccnt"
{ header 32 0 4294967264 0; } | seed "huge-img-size"
{ header 65535 0 0 0; } | seed "huge-hdr-size"
{ header 32 65535 0 0; printf '\x08\x69\xff\xff'; } | seed "huge-prot"
{ header 32 0 0 0; printf '\x07\x69\x0c\x00\x10\x00\x20\x00\x00\x00\x00\x00'; } | seed "tlv-overrun"
{ header 32 0 0 0; printf '\x07\x69\x06\x00\x10\x00'; } | seed "tlv-half-header"

# 4. Slots with a trailer: classic magic (align 8), alternative magic for
#    16 and 32, image_ok / copy_done / swap_info set, and all-zero flash.
classic='\x77\xc2\x95\xf3\x60\xd2\xef\x7f\x35\x52\x50\x0f\x2c\xb6\x79\x80'
alt_tail='\x2d\xe1\x5d\x29\x41\x0b\x8d\x77\x67\x9c\x11\x0f\x1f\x8a'
{ ff 200; printf "$classic"; } | seed "trailer-classic"
{ ff 150; le32 4096; ff 4; printf '\x03'; ff 7; printf '\x01'; ff 7; printf '\x01'; ff 7
  printf "$classic"; } | seed "trailer-classic-set"
{ ff 300; le16 16; printf "$alt_tail"; } | seed "trailer-alt16"
{ ff 300; le16 32; printf "$alt_tail"; } | seed "trailer-alt32"
{ printf '\x00'; ff 100; printf "$classic"; } | seed "slot00-trailer-classic"
head -c 256 /dev/zero | seed "zeros-256"

nseeds=$(find "$CORPUS" -type f | wc -l)

# ---- fuzz ----
echo "fuzz: fuzz_image for ${SECONDS_TO_RUN}s, $nseeds seeds, max_len $MAX_LEN (log: $LOG)"
set +e
"$FUZZER" -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -detect_leaks=1 \
    -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict=tests/fuzz/fuzz_image.dict -artifact_prefix="$ARTIFACTS/" \
    "$@" "$CORPUS" >"$LOG" 2>&1
rc=$?
set -e

# ---- summary ----
final_stat() { sed -n "s/^stat::$1: *//p" "$LOG" | tail -n1; }
execs=$(final_stat number_of_executed_units)
eps=$(final_stat average_exec_per_sec)
peak=$(final_stat peak_rss_mb)
last=$(grep -E '^#[0-9]+' "$LOG" | tail -n1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
corp_files=$(find "$CORPUS" -type f | wc -l)
crashes=$(find "$ARTIFACTS" -type f | wc -l)
sanitizer=0
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$LOG"; then
    sanitizer=1
fi
status=pass
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ] || [ "$sanitizer" -ne 0 ] || [ -z "$execs" ]; then
    status=FAIL
fi

mkdir -p "$(dirname "$SUMMARY_JSON")"
cat >"$SUMMARY_JSON" <<EOF
{
  "target": "fuzz_image",
  "status": "$status",
  "exit_code": $rc,
  "seconds": $SECONDS_TO_RUN,
  "max_len": $MAX_LEN,
  "seeds": $nseeds,
  "execs": ${execs:-0},
  "execs_per_sec": ${eps:-0},
  "coverage_edges": ${cov:-0},
  "features": ${ft:-0},
  "corpus_units": ${corp:-0},
  "corpus_files": $corp_files,
  "peak_rss_mb": ${peak:-0},
  "artifacts": $crashes,
  "clang": "$("$CC" --version | head -n1)",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF

echo "fuzz: $status: ${execs:-0} execs in ${SECONDS_TO_RUN}s (${eps:-0} exec/s), cov ${cov:-?} edges, ft ${ft:-?}, corpus ${corp:-?} units ($corp_files files, $nseeds seeds), peak rss ${peak:-?} MB"
if [ "$status" != pass ]; then
    echo "fuzz: libFuzzer exit $rc; last 60 lines of $LOG:" >&2
    tail -n 60 "$LOG" >&2
    for a in "$ARTIFACTS"/*; do
        [ -f "$a" ] || continue
        echo "fuzz: reproducer $a  (re-run: $FUZZER $a)" >&2
    done
    exit 1
fi

# ---- the DDI client: answers a server could send, in any order ----
DDI_SECONDS=$((SECONDS_TO_RUN / 3 > 5 ? SECONDS_TO_RUN / 3 : 5))
DDI_FUZZER=$BUILD/tests/fuzz/fuzz_ddi
DDI_CORPUS=$BUILD/corpus-ddi
DDI_ARTIFACTS=$BUILD/artifacts-ddi
DDI_LOG=$BUILD/fuzz-ddi.log
rm -rf "$DDI_CORPUS" "$DDI_ARTIFACTS"
mkdir -p "$DDI_CORPUS" "$DDI_ARTIFACTS"
# Seeds (tests/fuzz/fuzz_ddi.c's layout): a flags byte, a zero persist record,
# then answers (status index 1 = 200) for an update, a cancel and errors.
python3 - "$DDI_CORPUS" <<'PY'
import struct, sys
out = sys.argv[1]
base = b"https://updates.example:8443/DEFAULT/controller/v1/dev-1"
def ans(i, body=b""):
    return bytes([i]) + struct.pack("<H", len(body)) + body
poll = (b'{"config":{"polling":{"sleep":"00:00:05"}},"_links":{"deploymentBase":{"href":"' + base +
        b'/deploymentBase/7?c=1"},"configData":{"href":"' + base + b'/configData"}}}')
dep = (b'{"id":"7","deployment":{"download":"forced","update":"forced","chunks":[{"part":"os",'
       b'"version":"1.2.0","name":"fw","artifacts":[{"filename":"fw.bin","hashes":{"sha1":"00",'
       b'"md5":"00","sha256":"' + b"ab" * 32 + b'"},"size":1234,"_links":{"download":{"href":"' +
       base + b'/softwaremodules/1/artifacts/fw.bin"}}}]}]}}')
cpoll = (b'{"config":{"polling":{"sleep":"00:01:00"}},"_links":{"cancelAction":{"href":"' + base +
         b'/cancelAction/7"}}}')
cancel = b'{"id":"7","cancelAction":{"stopId":"7"}}'
head = bytes([0]) + bytes(128)
seeds = {
    "update": head + ans(1) + ans(1, poll) + ans(1, dep) + ans(1) + b"\x00" + ans(1) + ans(1),
    "update-fails": head + ans(1) + ans(1, poll) + ans(1, dep) + ans(1) + b"\x07" + ans(1),
    "cancel": head + ans(1) + ans(1, cpoll) + ans(1, cancel) + ans(1) + ans(1, poll),
    "errors": head + ans(0) + ans(14) + ans(13) + ans(7) + ans(1, b"{") + ans(1, b"[]"),
    "reverted": bytes([14]) + bytes(128) + ans(1) + ans(1, poll) + ans(1, dep),
}
for name, data in seeds.items():
    open("%s/%s" % (out, name), "wb").write(data)
PY
echo "fuzz: fuzz_ddi for ${DDI_SECONDS}s (log: $DDI_LOG)"
set +e
"$DDI_FUZZER" -max_total_time="$DDI_SECONDS" -max_len=4096 -detect_leaks=1 -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$DDI_ARTIFACTS/" \
    "$DDI_CORPUS" >"$DDI_LOG" 2>&1
rc=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$DDI_LOG" | tail -n1)
cov=$(grep -E '^#[0-9]+' "$DDI_LOG" | tail -n1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
crashes=$(find "$DDI_ARTIFACTS" -type f | wc -l)
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ] || [ -z "$execs" ] ||
    grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$DDI_LOG"; then
    echo "fuzz: fuzz_ddi FAIL: libFuzzer exit $rc; last 40 lines of $DDI_LOG:" >&2
    tail -n 40 "$DDI_LOG" >&2
    for a in "$DDI_ARTIFACTS"/*; do
        [ -f "$a" ] && echo "fuzz: reproducer $a  (re-run: $DDI_FUZZER $a)" >&2
    done
    exit 1
fi
echo "fuzz: fuzz_ddi pass: $execs execs in ${DDI_SECONDS}s, cov ${cov:-?} edges"
