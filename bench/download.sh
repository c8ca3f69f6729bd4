#!/usr/bin/env bash
# Download benchmark: `airlock fetch` against curl on the same loopback HTTPS
# server (airlock-testd), same artifact, same run. Builds the CLI and the
# server in build-bench/ (Release), signs a 64 MiB image for a 160 MiB flash
# layout written here, then alternates curl and airlock fetch N times. Each
# fetch writes into a copy of an erased flash file made before the clock
# starts (a device's flash exists before an update arrives; creating 160 MiB
# of it is not part of a download), so nothing resumes. Prints the medians, the ratio
# and airlock fetch's peak RSS, and writes bench/results/download.json.
# Works in a mktemp directory it removes; the server is stopped on exit.
#
# usage: bench/download.sh [--runs N] [--mib M] [--profile]
#   --profile   also run one fetch under perf and print where its time goes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BENCH_BUILD_DIR:-build-bench}
RESULTS=bench/results
JOBS=$(nproc 2>/dev/null || echo 2)
RUNS=5
MIB=64
PROFILE=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?--runs N}; shift 2 ;;
    --mib) MIB=${2:?--mib M}; shift 2 ;;
    --profile) PROFILE=1; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/download.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $RUNS$MIB in *[!0-9]*) echo "bench/download.sh: --runs and --mib take numbers" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$MIB" -lt 1 ] || [ "$MIB" -gt 64 ]; then
    echo "bench/download.sh: --runs at least 1, --mib 1..64 (the layout's slot is 72 MiB)" >&2
    exit 2
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "bench/download.sh: needs $tool" >&2; exit 1; }
done

mkdir -p "$BUILD" "$RESULTS"
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIRLOCK_SANITIZE=OFF \
    -DAIRLOCK_FUZZ=OFF >"$BUILD/configure.log" 2>&1; then
    cat "$BUILD/configure.log"
    exit 1
fi
if ! cmake --build "$BUILD" --target airlock airlock-testd -j"$JOBS" \
    >"$BUILD/build-download.log" 2>&1; then
    cat "$BUILD/build-download.log"
    exit 1
fi
AIRLOCK=$ROOT/$BUILD/tools/airlock
TESTD=$ROOT/$BUILD/tests/common/airlock-testd

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-download.XXXXXX")
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then
        kill -TERM "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# measure OUT CMD...: run CMD; OUT gets "seconds max_rss_kib exit_code". The
# clock starts just before the fork and stops when wait4 returns; the peak RSS
# is the child's own (getrusage via wait4), so no polling disturbs the timing.
cat >"$WORK/measure.py" <<'EOF'
import os, subprocess, sys, time
out = sys.argv[1]
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
t = time.perf_counter() - t0
with open(out, "w") as f:
    f.write("%.6f %d %d\n" % (t, ru.ru_maxrss, os.waitstatus_to_exitcode(status)))
EOF
# rss_split CMD...: run CMD once, polling /proc every 2 ms: peak anonymous
# (heap, stacks, buffers) and file-backed (the mapped flash file) RSS, KiB.
cat >"$WORK/rss.py" <<'EOF'
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:])
anon = filed = 0
while p.poll() is None:
    try:
        for line in open("/proc/%d/status" % p.pid):
            k, _, v = line.partition(":")
            if k == "RssAnon":
                anon = max(anon, int(v.split()[0]))
            elif k == "RssFile" or k == "RssShmem":
                filed = max(filed, int(v.split()[0]))
    except (OSError, ValueError):
        pass
    time.sleep(0.002)
print(anon, filed, p.returncode)
EOF
measure() { python3 "$WORK/measure.py" "$@"; }

# ---- the artifact ---------------------------------------------------------------
# 160 MiB NOR with 64 KiB sectors: 72 MiB slots hold a 64 MiB image and its trailer.
cat >"$WORK/bench.layout" <<'EOF'
# bench/download.sh: 160 MiB NOR, 64 KiB sectors, 4-byte writes, 72 MiB slots
flash nor size=160M sectors=2560x64K write=4 erased=0xff
bootloader  nor  0x0000000  64K
primary     nor  0x0010000  72M
secondary   nor  0x4810000  72M
scratch     nor  0x9010000  64K
status      nor  0x9020000  128K
EOF
SEC_OFF=$((0x4810000))
cd "$WORK"
"$AIRLOCK" keygen -t ecdsa-p256 -k key.pem -q
"$AIRLOCK" getpub -k key.pem --lang pem -o pub.pem
# Seeded, incompressible firmware: the same bytes every run.
python3 -c 'import random,sys; random.seed(1); sys.stdout.buffer.write(random.randbytes(int(sys.argv[1]) << 20))' \
    "$MIB" >fw.bin
"$AIRLOCK" sign -k key.pem -v 1.0.0 -H 0x200 --pad-header --align 4 -M 1152 -S 0x4800000 \
    fw.bin img.bin >/dev/null 2>&1
IMG_LEN=$(stat -c %s img.bin)

mkdir srv
"$TESTD" --file img.bin --dir srv >srv/stdout 2>srv/stderr &
SERVER=$!
for ((i = 0; i < 200; i++)); do
    [ -s srv/port ] && break
    sleep 0.05
done
[ -s srv/port ] || { echo "bench/download.sh: airlock-testd did not start" >&2; cat srv/stderr; exit 1; }
URL=https://localhost:$(cat srv/port)/artifact.bin
CURL=(curl -sS --cacert srv/ca.pem -o curl.out "$URL")
FETCH=("$AIRLOCK" fetch "$URL" --flash dev.img --layout bench.layout -k pub.pem --ca srv/ca.pem -q)

# One unmeasured round warms the page cache, the server and the dynamic loader;
# it also checks both tools get the artifact right.
rm -f curl.out dev.img
"${CURL[@]}"
cmp -s curl.out img.bin || { echo "bench/download.sh: curl got other bytes" >&2; exit 1; }
"${FETCH[@]}" || { echo "bench/download.sh: airlock fetch failed" >&2; exit 1; }
if ! cmp -s <(tail -c +$((SEC_OFF + 1)) dev.img | head -c "$IMG_LEN") img.bin; then
    echo "bench/download.sh: the secondary slot does not hold the image" >&2
    exit 1
fi

# The device's flash before any update: erased, made once, copied before each run.
"$AIRLOCK" fetch https://127.0.0.1:1/none --flash blank.img --layout bench.layout -k pub.pem \
    --attempts 1 -q 2>/dev/null || true
[ -s blank.img ] || { echo "bench/download.sh: could not make the erased flash file" >&2; exit 1; }

# ---- the runs, alternating -------------------------------------------------------------
CURL_S=() FETCH_S=() CURL_RSS=() FETCH_RSS=()
printf '%d MiB firmware, %d-byte signed image, %s\n' "$MIB" "$IMG_LEN" "$URL"
printf '%-4s %12s %10s %12s %10s\n' run "curl s" "curl MB/s" "fetch s" "fetch MB/s"
for ((i = 1; i <= RUNS; i++)); do
    rm -f curl.out dev.img
    cp blank.img dev.img
    sync dev.img 2>/dev/null || sync
    measure m.curl "${CURL[@]}"
    rm -f curl.out
    measure m.fetch "${FETCH[@]}"
    rm -f dev.img
    read -r cs crss crc <m.curl
    read -r fs frss frc <m.fetch
    if [ "$crc" != 0 ] || [ "$frc" != 0 ]; then
        echo "bench/download.sh: run $i: curl exit $crc, airlock fetch exit $frc" >&2
        exit 1
    fi
    CURL_S+=("$cs") FETCH_S+=("$fs") CURL_RSS+=("$crss") FETCH_RSS+=("$frss")
    awk -v i="$i" -v c="$cs" -v f="$fs" -v n="$IMG_LEN" \
        'BEGIN { printf "%-4s %12.3f %10.1f %12.3f %10.1f\n", i, c, n / c / 1e6, f, n / f / 1e6 }'
done

# Where fetch's peak RSS is: anonymous memory, or file-backed pages (the flash
# file is mapped whole, and every page of it is touched when it is created).
cp blank.img dev.img
read -r ANON FILEB _ < <(python3 "$WORK/rss.py" "${FETCH[@]}")
rm -f dev.img

python3 - "$IMG_LEN" "$RUNS" "$MIB" "$ANON" "$FILEB" "$ROOT/$RESULTS/download.json" \
    "${CURL_S[*]}" "${FETCH_S[*]}" "${CURL_RSS[*]}" "${FETCH_RSS[*]}" "$(nproc)" \
    "$(curl --version | head -1)" <<'EOF'
import json, statistics, sys, time
n, runs, mib, anon, filed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
flash_mib = 160
cs, fs = [float(x) for x in sys.argv[7].split()], [float(x) for x in sys.argv[8].split()]
crss, frss = [int(x) for x in sys.argv[9].split()], [int(x) for x in sys.argv[10].split()]
cpu = "unknown"
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
cm, fm = statistics.median(cs), statistics.median(fs)
c_mbs, f_mbs = n / cm / 1e6, n / fm / 1e6
ratio = f_mbs / c_mbs
print()
print("%-34s %10s %10s" % ("", "curl", "fetch"))
print("%-34s %10.3f %10.3f" % ("median wall time, s", cm, fm))
print("%-34s %10.1f %10.1f" % ("median throughput, MB/s", c_mbs, f_mbs))
print("%-34s %10.1f %10.1f" % ("peak RSS (getrusage), MiB", max(crss) / 1024, max(frss) / 1024))
print()
print("ratio fetch/curl: %.2f (target >= 0.90)%s" % (ratio, "" if ratio >= 0.9 else "  BELOW TARGET"))
print("airlock fetch peak RSS: %.1f MiB; polled: %.1f MiB anonymous, %.1f MiB file-backed"
      % (max(frss) / 1024, anon / 1024, filed / 1024))
print("  (file-backed: the simulated flash, a %d MiB file mapped whole, plus shared libraries)"
      % (flash_mib))
print("(MB = 1e6 bytes; %d runs each, alternating, after one unmeasured warm-up round)" % runs)
res = {
    "benchmark": "download",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "cpu": cpu, "cpus": int(sys.argv[11]), "curl": sys.argv[12],
    "units": "MB = 1e6 bytes of signed image; times in seconds, wall clock; RSS in KiB",
    "firmware_mib": mib, "image_bytes": n, "runs": runs,
    "layout": "160 MiB NOR, 2560 x 64 KiB sectors, write 4, 72 MiB slots",
    "curl_s": cs, "fetch_s": fs, "curl_median_s": cm, "fetch_median_s": fm,
    "curl_mb_per_s": round(c_mbs, 2), "fetch_mb_per_s": round(f_mbs, 2),
    "ratio_fetch_curl": round(ratio, 4),
    "curl_max_rss_kib": max(crss), "fetch_max_rss_kib": max(frss),
    "fetch_rss_anon_kib": anon, "fetch_rss_file_kib": filed,
}
with open(out, "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
print("wrote %s" % out)
EOF

# ---- optional: where does fetch's time go? --------------------------------------------
if [ "$PROFILE" = 1 ]; then
    if ! command -v perf >/dev/null; then
        echo "--profile: perf is not installed"
        exit 0
    fi
    rm -f dev.img
    cp blank.img dev.img # as in the measured runs: the flash exists before the update
    if ! perf record -q -F 2000 --call-graph dwarf,16384 -o perf.data -- "${FETCH[@]}" \
        >/dev/null 2>perf.err; then
        echo "--profile: perf record failed:"
        cat perf.err
        exit 0
    fi
    echo
    echo "airlock fetch, share of its CPU samples (inclusive; perf, one run):"
    perf report -i perf.data --children --stdio --sort sym -g none 2>/dev/null |
        awk '$1 ~ /%$/ { s = $NF; if (!(s in seen)) { seen[s] = 1; pct[s] = $1 } }
             END {
                 n = split("airlock_download SSL_read airlock_ota_write absorb hash_update " \
                           "program record_crc32 sim_prog sim_erase airlock_sim_flash_open " \
                           "airlock_ota_end", want, " ")
                 for (i = 1; i <= n; i++)
                     printf "  %-24s %8s\n", want[i], (want[i] in pct) ? pct[want[i]] : "-"
             }'
fi
