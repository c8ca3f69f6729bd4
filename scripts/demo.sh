#!/usr/bin/env bash
# `make demo`: the whole update chain on one machine, on the embedded defaults
# (SQLite, TLS with the demo CA). Signs three releases of the demo firmware,
# starts the update server, enrols 20 simulated devices on 1.0.0, rolls 1.1.0
# out in waves while power is cut in downloads and swaps, then rolls out a
# 1.2.0 that crashes at start-up: its devices revert by themselves and the
# failure threshold pauses the campaign. Ends with a table of the devices and
# the dashboard's address; exits non-zero if any device ends unbootable or on
# an unexpected version. Writes only under out/demo/.
#
# env: DEMO_DEVICES (20), DEMO_SEED (from the clock), DEMO_HEADLESS=1 (no bars,
#      no pause for the dashboard at the end; also when stdout is not a terminal),
#      DEMO_BUILD_DIR (build), DEMO_TIMEOUT (seconds per campaign, 120),
#      DEMO_OUT (out/demo), DEMO_NO_DEPS=1 / DEMO_NO_BUILD=1 (skip those steps:
#      the test suite runs it on its own build)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
OUT=${DEMO_OUT:-out/demo}
BUILD=${DEMO_BUILD_DIR:-build}
N=${DEMO_DEVICES:-20}
SEED=${DEMO_SEED:-$(($(date +%s) % 100000))}
TIMEOUT=${DEMO_TIMEOUT:-120}
TTY=0
if [ -t 1 ] && [ -z "${DEMO_HEADLESS:-}" ]; then TTY=1; fi
if [ "$TTY" = 1 ]; then B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N0=$'\033[0m'; else B='' G='' R='' N0=''; fi
T0=$(date +%s)

say() { printf '%s==>%s %s\n' "$B" "$N0" "$*"; }
die() {
    printf '%sdemo: %s%s\n' "$R" "$*" "$N0" >&2
    exit 1
}
elapsed() { echo $(($(date +%s) - T0)); }
rel() { echo "${1#"$ROOT"/}"; } # a path as shown: relative to the repo when inside it

# ---- build -----------------------------------------------------------------------------------
if [ -z "${DEMO_NO_DEPS:-}" ]; then scripts/deps.sh; fi
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
if [ -z "${DEMO_NO_BUILD:-}" ]; then
    mkdir -p "$BUILD"
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S . -B "$BUILD" >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
    fi
    say "building airlock and the demo firmware (${BUILD#"$ROOT"/}/)"
    cmake --build "$BUILD" -j"$JOBS" --target airlock firmware-good firmware-crash \
        >"$BUILD/demo-build.log" 2>&1 || { tail -30 "$BUILD/demo-build.log"; exit 1; }
fi
AIRLOCK=$BUILD/tools/airlock
FW=$BUILD/examples/firmware
[ -x "$AIRLOCK" ] && [ -x "$FW/firmware-good" ] && [ -x "$FW/firmware-crash" ] ||
    die "$AIRLOCK or the demo firmware in $FW is missing: build first"

# ---- a clean stage ---------------------------------------------------------------------------
PIDS=()
SERVER_PID=
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$OUT"
mkdir -p "$OUT/images" "$OUT/devices"
A() { "$AIRLOCK" "$@"; }

# ---- 1. sign three releases ------------------------------------------------------------------
say "signing the releases: 1.0.0 and 1.1.0 (good), 1.2.0 (crashes at start-up)"
A keygen -q -t ecdsa-p256 -k "$OUT/images/fw-signing-key.pem"
sign() { # VARIANT VERSION
    A sign -q -k "$OUT/images/fw-signing-key.pem" -H 0x200 --pad-header -v "$2" -S 0x400000 \
        --align 4 "$FW/firmware-$1" "$OUT/images/firmware-$2.img"
    printf '    %-26s %9s bytes  (%s build)\n' "firmware-$2.img" "$(stat -c %s "$OUT/images/firmware-$2.img")" "$1"
}
sign good 1.0.0
sign good 1.1.0
sign crash 1.2.0

# ---- 2. the update server --------------------------------------------------------------------
say "starting the update server (SQLite store, TLS with the demo CA)"
SRV=$OUT/server
A server init "$SRV" -k "$OUT/images/fw-signing-key.pem" >"$OUT/server-init.log"
sed -i 's/^#* *poll_interval *=.*/poll_interval = 00:00:01/' "$SRV/server.conf"
"$AIRLOCK" server run "$SRV" --port 0 >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$SRV/server.port" ] && break; sleep 0.1; done
[ -s "$SRV/server.port" ] || { cat "$OUT/server.log"; die "the server did not start"; }
export AIRLOCK_SERVER="https://localhost:$(cat "$SRV/server.port")"
export AIRLOCK_CA=$SRV/tls/ca.pem
AIRLOCK_TOKEN=$(cat "$SRV/operator.token")
export AIRLOCK_TOKEN
echo "    $AIRLOCK_SERVER  (log: $(rel "$OUT/server.log"))"
A artifact upload "$OUT/images/firmware-1.1.0.img" --name firmware-1.1.0 >/dev/null
A artifact upload "$OUT/images/firmware-1.2.0.img" --name firmware-1.2.0 >/dev/null
echo "    uploaded firmware-1.1.0 and firmware-1.2.0 (verified against the signing key on upload)"

# ---- 3. twenty devices on 1.0.0 --------------------------------------------------------------
# Faults, by device number (1-based): power cut in the download's flash
# operations (every 5th from 2), in the bootloader's swap (every 5th from 4),
# and at random moments (the last device).
say "enrolling $N simulated devices on 1.0.0 (seed $SEED)"
GW=$(cat "$SRV/gateway.token")
dev_name() { printf 'dev-%02d\n' "$1"; }
for i in $(seq 1 "$N"); do
    d=$(dev_name "$i")
    # The device with random cuts gets three trial boots: a cut during a trial
    # boot uses one up, as it would on a real device.
    trials=1
    if [ "$i" = "$N" ]; then trials=3; fi
    A sim device --flash "$OUT/devices/$d.img" --layout sim-device --provision-only --trials $trials \
        --server "$AIRLOCK_SERVER" --controller-id "$d" --gateway-token "$GW" --ca "$AIRLOCK_CA" \
        -k "$OUT/images/fw-signing-key.pem" --image "$OUT/images/firmware-1.0.0.img" \
        >>"$OUT/provision.log" 2>&1 || { cat "$OUT/provision.log"; die "cannot provision $d"; }
done
FAULTS=()
for i in $(seq 1 "$N"); do
    d=$(dev_name "$i")
    f=()
    if [ $((i % 5)) = 2 ]; then f=(--cut-at-op $((40 + (SEED + i) % 40))); fi
    if [ $((i % 5)) = 4 ]; then f=(--cut-boot-at-op $((20 + (SEED + i) % 30))); fi
    if [ "$i" = "$N" ]; then f=(--cut-random 0.5 --cut-window-ms 1500 --max-cuts 2); fi
    FAULTS[$i]="${f[*]:-}"
    # the binary itself in the background (not through A): its pid is the one to signal
    # shellcheck disable=SC2086
    "$AIRLOCK" sim device --flash "$OUT/devices/$d.img" --layout sim-device --json --seed $((SEED + i)) \
        ${FAULTS[$i]} >"$OUT/devices/$d.json" 2>"$OUT/devices/$d.log" &
    PIDS[$i]=$!
done
plan() { for i in $(seq 1 "$N"); do if [ $((i % 5)) = "$1" ]; then printf '%s ' "$(dev_name "$i")"; fi; done; }
echo "    power cuts planned: in the download on $(plan 2)"
echo "                        in the swap on     $(plan 4)"
echo "                        at random on       $(dev_name "$N")"

# Wait until every device has checked in and reported 1.0.0.
j_devices() { A device list --json; }
count_on() { # VERSION -> number of devices the server has on it
    j_devices | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for x in d["devices"] if x.get("version")==sys.argv[1]))' "$1"
}
for _ in $(seq 120); do
    [ "$(count_on 1.0.0 2>/dev/null || echo 0)" -ge "$N" ] && break
    sleep 0.5
done
[ "$(count_on 1.0.0)" -ge "$N" ] || die "not every device reported 1.0.0 (see $(rel "$OUT")/devices/*.log)"
echo "    all $N devices checked in, running 1.0.0 ($(elapsed) s)"
A group create demo >/dev/null
# shellcheck disable=SC2046
A group add demo $(for i in $(seq 1 "$N"); do dev_name "$i"; done) >/dev/null

# ---- campaign progress -----------------------------------------------------------------------
# watch NAME UNTIL_STATES: a bar of the campaign's actions until its state is one of UNTIL_STATES
watch() {
    local name=$1 until=$2 line state last='' t_end=$(($(date +%s) + TIMEOUT))
    while :; do
        line=$(A campaign status "$name" --json | python3 -c '
import json, sys
c = json.load(sys.stdin)
n = c["counts"]; tot = max(n["total"], 1); w = 30
done_ = n["success"] + n["failure"] + n["cancelled"] + n["skipped"]
bar = "#" * (w * n["success"] // tot) + "x" * (w * n["failure"] // tot)
bar += "." * (w - len(bar))
print(c["state"], "[%s] %2d/%d done: %d ok, %d failed, %d downloading/installing | wave %d/%d | %s" % (
    bar, done_, n["total"], n["success"], n["failure"], n["running"] + n["offered"],
    c["wave"], c["nwaves"], c["state"] + (" (" + c["reason"] + ")" if c["reason"] else "")))')
        state=${line%% *}
        line=${line#* }
        if [ "$TTY" = 1 ]; then
            printf '\r    %s\033[K' "$line"
        elif [ "$line" != "$last" ]; then
            printf '    %s\n' "$line"
        fi
        last=$line
        case " $until " in *" $state "*) break ;; esac
        if [ "$(date +%s)" -ge "$t_end" ]; then
            [ "$TTY" = 1 ] && echo
            die "campaign $name still $state after ${TIMEOUT} s"
        fi
        sleep 0.5
    done
    [ "$TTY" = 1 ] && echo
    return 0
}

# ---- 4. campaign to 1.1.0 --------------------------------------------------------------------
say "campaign to-1.1.0: waves of 20 %, 50 %, 100 %; failure threshold 20 %"
A campaign create to-1.1.0 --artifact firmware-1.1.0 --group demo --waves 20,50,100 \
    --failure-threshold 20 >/dev/null
watch to-1.1.0 "finished paused cancelled"
echo "    ($(elapsed) s)"

# ---- 5. campaign to 1.2.0, which crashes at start-up -----------------------------------------
say "campaign to-1.2.0 (crashes at start-up): waves of 20 %, 100 %; failure threshold 25 %"
A campaign create to-1.2.0 --artifact firmware-1.2.0 --group demo --waves 20,100 \
    --failure-threshold 25 >/dev/null
watch to-1.2.0 "paused finished cancelled"
echo "    ($(elapsed) s)"
# the devices that tried 1.2.0 are back on 1.1.0 once their failure is reported; let the
# reverted ones finish their report and the rest settle before stopping everyone
for _ in $(seq 60); do
    [ "$(count_on 1.1.0)" -ge "$N" ] && break
    sleep 0.5
done

# ---- 6. stop the devices and tell their story ------------------------------------------------
say "stopping the devices"
for i in $(seq 1 "$N"); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
FAIL=0
for i in $(seq 1 "$N"); do
    rc=0
    wait "${PIDS[$i]}" || rc=$?
    [ "$rc" = 0 ] || { echo "    $(dev_name "$i") exited $rc (see $(rel "$OUT")/devices/$(dev_name "$i").log)"; FAIL=1; }
done
PIDS=()
A campaign status to-1.1.0 --json >"$OUT/campaign-1.1.0.json"
A campaign status to-1.2.0 --json >"$OUT/campaign-1.2.0.json"
A device list --json >"$OUT/devices.json"

python3 - "$OUT" "$N" <<'EOF' || FAIL=1
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
rows, bad = [], []
server = {d["controller_id"]: d for d in json.load(open(out + "/devices.json"))["devices"]}
for i in range(1, n + 1):
    d = "dev-%02d" % i
    try:
        s = json.load(open("%s/devices/%s.json" % (out, d)))
    except Exception as e:  # no summary: the simulator died
        bad.append("%s: no summary (%s)" % (d, e)); continue
    rows.append((d, s["version"], s["state"], s["reverts"], s["bytes_downloaded"], s["resumes"],
                 s["power_cuts"], s["boots"]))
    if s["version"] != "1.1.0" or s["state"] != "confirmed":
        bad.append("%s: ends on %s %s, expected 1.1.0 confirmed" % (d, s["version"], s["state"]))
    if s.get("stop") == "unbootable" or s["exit"] not in (0,):
        bad.append("%s: simulator stopped with %s (exit %d)" % (d, s.get("stop"), s["exit"]))
    if server.get(d, {}).get("version") != "1.1.0":
        bad.append("%s: the server has it on %s" % (d, server.get(d, {}).get("version")))
hdr = ("device", "version", "state", "reverts", "bytes down", "resumes", "power cuts", "boots")
print("    %-7s %-8s %-10s %7s %11s %8s %10s %6s" % hdr)
for r in rows:
    print("    %-7s %-8s %-10s %7d %11d %8d %10d %6d" % r)
tot = lambda k: sum(r[k] for r in rows)
print("    %-7s %-8s %-10s %7d %11d %8d %10d %6d" % ("total", "", "", tot(3), tot(4), tot(5), tot(6), tot(7)))
c1 = json.load(open(out + "/campaign-1.1.0.json"))
c2 = json.load(open(out + "/campaign-1.2.0.json"))
print("    campaign to-1.1.0: %s, %d succeeded, %d failed" % (c1["state"], c1["counts"]["success"], c1["counts"]["failure"]))
print("    campaign to-1.2.0: %s%s, %d failed (reverted), %d never offered" % (
    c2["state"], " (" + c2["reason"] + ")" if c2["reason"] else "", c2["counts"]["failure"],
    c2["counts"]["pending"]))
if c1["state"] != "finished" or c1["counts"]["success"] != n:
    bad.append("campaign to-1.1.0 is %s with %d of %d succeeded" % (c1["state"], c1["counts"]["success"], n))
if c2["state"] != "paused" or c2["counts"]["failure"] < 1:
    bad.append("campaign to-1.2.0 is %s with %d failures: the threshold should have paused it" % (c2["state"], c2["counts"]["failure"]))
if tot(3) < c2["counts"]["failure"]:
    bad.append("fewer reverts (%d) than devices that failed 1.2.0 (%d)" % (tot(3), c2["counts"]["failure"]))
if tot(6) < 1:
    bad.append("no power cut happened")
for b in bad:
    print("    FAIL " + b)
sys.exit(1 if bad else 0)
EOF

echo
if [ "$FAIL" = 0 ]; then
    printf '%sdemo: every device ended on 1.1.0, verified and confirmed; 1.2.0 was reverted and its campaign paused (%s s)%s\n' "$G" "$(elapsed)" "$N0"
else
    printf '%sdemo: FAILED (logs in %s/)%s\n' "$R" "${OUT#"$ROOT"/}" "$N0"
fi
echo "Dashboard: $AIRLOCK_SERVER/dashboard   (CA $(rel "$AIRLOCK_CA"); log in with the operator token in $(rel "$SRV")/operator.token)"
if [ "$TTY" = 1 ] && [ "$FAIL" = 0 ]; then
    read -r -p "Press Enter to stop the server. " _ || true
fi
exit "$FAIL"
