#!/usr/bin/env bash
# Fleet benchmark: `airlock sim fleet` with 10,000 devices (default) against
# the real `airlock server` on this machine: enrolment by gateway token, a
# campaign to v1.1.0 in waves with every fault on, then a campaign to a
# crashing v1.2.0 that reverts and pauses itself, as tests/sim/test_fleet.sh
# does with 200. Prints wall time, peak RSS of simulator and server, server
# check-ins per second, and writes bench/results/fleet.json. Fails if a device
# is bricked, a report is lost, or a device ends elsewhere than on 1.1.0.
# Target: the whole run under 10 minutes. Never leaves processes behind.
#
# usage: bench/fleet.sh   env: FLEET_N (10000), FLEET_SEED, FLEET_SCALE (2), FLEET_CONNS (64),
#                              POLL (server poll_interval, 00:00:10), MAX_INFLIGHT (4096),
#                              THREADS (server worker threads, 8: polls go on while writes sync)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BENCH_BUILD_DIR:-build-bench}
RESULTS=bench/results
JOBS=$(nproc 2>/dev/null || echo 2)
N=${FLEET_N:-10000}
SEED=${FLEET_SEED:-$(($(date +%s) % 100000))}
SCALE=${FLEET_SCALE:-2}
CONNS=${FLEET_CONNS:-64}
POLL=${POLL:-00:00:10}
MAX_INFLIGHT=${MAX_INFLIGHT:-4096}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench/fleet: needs /usr/bin/time (Debian package time)" >&2; exit 1; }

mkdir -p "$BUILD" "$RESULTS"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIRLOCK_SANITIZE=OFF -DAIRLOCK_FUZZ=OFF \
    >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" --target airlock -j"$JOBS" >"$BUILD/build-fleet.log" 2>&1 ||
    { cat "$BUILD/build-fleet.log"; exit 1; }
AIRLOCK="$ROOT/$BUILD/tools/airlock"

T=$(mktemp -d /tmp/airlock-bench-fleet-XXXXXX)
SERVER_PID=
FLEET_PID=
cleanup() {
    [ -n "$FLEET_PID" ] && pkill -TERM -P "$FLEET_PID" 2>/dev/null
    for p in $FLEET_PID $SERVER_PID; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() { echo "bench/fleet: $*" >&2; [ -f "$T/fleet.err" ] && tail -5 "$T/fleet.err" >&2; exit 1; }

# ---- keys, images, server ---------------------------------------------------------------
"$AIRLOCK" keygen -t ed25519 -k "$T/key.pem" -q >/dev/null || die "keygen"
head -c 20000 /dev/urandom >"$T/payload.bin"
for v in 1.0.0 1.1.0 1.2.0; do
    "$AIRLOCK" sign -H 32 --pad-header -v "$v" -S 49152 -k "$T/key.pem" -q "$T/payload.bin" \
        "$T/v$v.bin" >/dev/null || die "sign $v"
done
D="$T/srv"
"$AIRLOCK" server init "$D" -k "$T/key.pem" >/dev/null || die "server init"
{
    echo "poll_interval = $POLL"
    echo "max_inflight = $MAX_INFLIGHT"
    echo "threads = ${THREADS:-8}"
} >>"$D/server.conf"
"$AIRLOCK" server run "$D" --port 0 >"$T/server.out" 2>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$D/server.port" ] && break; sleep 0.1; done
PORT=$(cat "$D/server.port" 2>/dev/null) || die "server did not start: $(cat "$T/server.err")"
export AIRLOCK_SERVER=https://localhost:$PORT AIRLOCK_CA=$D/tls/ca.pem
TOK=(--token-file "$D/operator.token")
for v in 1.0.0 1.1.0 1.2.0; do
    "$AIRLOCK" artifact upload "$T/v$v.bin" --name "fw-$v.bin" "${TOK[@]}" >/dev/null ||
        die "upload $v"
done
api() {
    curl -sS --cacert "$D/tls/ca.pem" -H "Authorization: Bearer $(cat "$D/operator.token")" \
        "https://localhost:$PORT$1"
}

# ---- the fleet ------------------------------------------------------------------------------
echo "bench/fleet: $N devices, seed $SEED, time scale $SCALE, $CONNS connections, poll $POLL"
START=$(date +%s.%N)
"$TIME" -v -o "$T/fleet.time" "$AIRLOCK" sim fleet -n "$N" --server "https://localhost:$PORT" \
    --ca "$D/tls/ca.pem" --gateway-token-file "$D/gateway.token" --token-file "$D/operator.token" \
    --factory "$T/v1.0.0.bin" -k "$T/key.pem" --slot-size 49152 --time-scale "$SCALE" \
    --seed "$SEED" --bad-version 1.2.0 --trials 2 --max-conns "$CONNS" \
    --drop 0.1 --powercut 0.05 --slow 0.05 --offline 0.001 --offline-time 30 --storm 0.001 \
    --until-campaign-done to-1.2.0 --json >"$T/fleet.json" 2>"$T/fleet.err" &
FLEET_PID=$!

count_on() { # devices the server has on version $1
    api /api/v1/devices 2>/dev/null | python3 -c 'import json,sys
try: print(sum(1 for x in json.load(sys.stdin)["devices"] if x["version"] == sys.argv[1]))
except Exception: print(0)' "$1"
}
state_of() { api "/api/v1/campaigns/$1" 2>/dev/null | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["state"])
except Exception: print("?")'; }
wait_until() { # wait_until SECONDS WHAT COMMAND...
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs; i++)); do
        "$@" && return 0
        kill -0 "$FLEET_PID" 2>/dev/null || die "the simulator exited while waiting for $what"
        sleep 1
    done
    die "$what: not within $secs s"
}
all_enrolled() { [ "$(count_on 1.0.0)" = "$N" ]; }
wait_until 300 "enrolment" all_enrolled
T_ENROLLED=$(date +%s.%N)
"$AIRLOCK" campaign create to-1.1.0 --artifact fw-1.1.0.bin --waves 1,10,50,100 \
    --failure-threshold 10 "${TOK[@]}" >/dev/null || die "campaign to-1.1.0"
finished() { [ "$(state_of to-1.1.0)" = finished ]; }
wait_until 900 "campaign to-1.1.0" finished
T_C1=$(date +%s.%N)
"$AIRLOCK" campaign create to-1.2.0 --artifact fw-1.2.0.bin --waves 1,10,50,100 \
    --failure-threshold 10 "${TOK[@]}" >/dev/null || die "campaign to-1.2.0"
wait "$FLEET_PID"
RC=$?
FLEET_PID=
END=$(date +%s.%N)
SERVER_HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
api /api/v1/campaigns/to-1.1.0 >"$T/c1.json"
api /api/v1/campaigns/to-1.2.0 >"$T/c2.json"

python3 - "$T" "$N" "$RC" "$START" "$T_ENROLLED" "$T_C1" "$END" "$SERVER_HWM" "$SEED" \
    "$SCALE" "$CONNS" "$POLL" "$RESULTS/fleet.json" <<'EOF'
import json, re, sys
t, n, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start, enrolled, c1, end = map(float, sys.argv[4:8])
server_hwm_kb, seed, scale, conns, poll, out = int(sys.argv[8] or 0), *sys.argv[9:14]
r = json.load(open(t + "/fleet.json"))
sim_hwm_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(t + "/fleet.time").read()).group(1))
c1s, c2s = json.load(open(t + "/c1.json")), json.load(open(t + "/c2.json"))
final = {"%s/%s" % (b["version"], b["state"]): b["devices"] for b in r["by_version_state"]}
res = {
    "devices": n, "seed": int(seed), "time_scale": float(scale), "max_conns": int(conns),
    "poll_interval": poll,
    "wall_s": round(end - start, 1), "enrol_s": round(enrolled - start, 1),
    "campaign_1_1_0_s": round(c1 - enrolled, 1), "campaign_1_2_0_s": round(end - c1, 1),
    "sim_peak_rss_mb": round(sim_hwm_kb / 1024, 1), "server_peak_rss_mb": round(server_hwm_kb / 1024, 1),
    "checkins": r["checkins"], "checkins_per_s": round(r["checkins_per_s"], 1),
    "requests": r["requests"], "requests_per_s": round(r["requests"] / r["wall_s"], 1),
    "bricked": r["bricked"], "final": final,
    "audit_reports": r["audit"]["reports"], "audit_missing": r["audit"]["missing"],
    "reverts": r["reverts"], "powercuts": r["powercuts"], "drops": r["drops"],
    "resumes": r["resumes"], "slow_links": r["slow_links"], "offline_spells": r["offline_spells"],
    "storms": r["storms"], "verify_failures": r["verify_failures"],
    "bytes_downloaded": r["bytes_downloaded"], "bytes_min": r["bytes_min"],
    "server_5xx": r["http_5xx"], "server_429": r["http_429"], "conn_failures": r["conn_failures"],
    "campaign_1_1_0": c1s["counts"], "campaign_1_2_0": {"state": c2s["state"], "reason": c2s["reason"], **c2s["counts"]},
    "failures_first": r.get("failures_first", []), "conn_first": r.get("conn_first", ""),
    "exit": rc,
}
ok = rc == 0 and r["bricked"] == 0 and r["audit"]["missing"] == 0 and final == {"1.1.0/idle": n} \
    and c1s["counts"]["success"] == n and c2s["state"] == "paused"
res["ok"] = ok
res["under_10_min"] = res["wall_s"] < 600
json.dump(res, open(out, "w"), indent=2)
print("%-34s %s" % ("devices", n))
for k in ["wall_s", "enrol_s", "campaign_1_1_0_s", "campaign_1_2_0_s", "sim_peak_rss_mb",
          "server_peak_rss_mb", "checkins", "checkins_per_s", "requests_per_s", "bricked",
          "audit_reports", "audit_missing", "reverts", "powercuts", "drops", "resumes",
          "slow_links", "offline_spells", "storms", "bytes_downloaded", "bytes_min",
          "server_5xx", "server_429", "conn_failures"]:
    print("%-34s %s" % (k, res[k]))
print("%-34s %s" % ("final (version/state: devices)", final))
print("%-34s %s" % ("campaign to-1.2.0", "%s: %s" % (c2s["state"], c2s["reason"])))
if res["conn_first"]:
    print("%-34s %s" % ("first connection failure", res["conn_first"]))
for f in res["failures_first"]:
    print("%-34s %s" % ("failure report", f))
print("%-34s %s" % ("target: whole run < 600 s", "met" if res["under_10_min"] else "MISSED"))
print("result: %s (written to %s)" % ("ok" if ok else "FAILED", out))
sys.exit(0 if ok else 1)
EOF
