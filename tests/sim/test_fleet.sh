#!/usr/bin/env bash
# End-to-end test of `airlock sim fleet`: the real server (`airlock server
# init/run`, TLS with its demo CA, poll interval 1 s) and N simulated devices
# (default 200) starting on v1.0.0; a campaign to v1.1.0 in waves with every
# fault on (drops, power cuts in downloads and swaps, slow links, offline
# spells, reboot storms), then a campaign to v1.2.0, an image that crashes at
# start-up, whose devices revert and whose failure threshold pauses it.
# Asserts: 0 bricked, no acknowledged report missing on the server, every
# device on 1.1.0 at the end. Stays in its mktemp directory; stops the server.
# Usage: test_fleet.sh AIRLOCK_BINARY   env: FLEET_N (200), FLEET_SEED, FLEET_SCALE (5)
set -u

AIRLOCK=${1:?usage: test_fleet.sh AIRLOCK_BINARY}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
command -v python3 >/dev/null || { echo "test_fleet.sh needs python3"; exit 1; }
command -v curl >/dev/null || { echo "test_fleet.sh needs curl"; exit 1; }
N=${FLEET_N:-200}
SEED=${FLEET_SEED:-$(( $(date +%s) % 100000 ))}
SCALE=${FLEET_SCALE:-5}
echo "# test_fleet: $N devices, seed $SEED (FLEET_SEED=$SEED reproduces the fault plan)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-fleet.XXXXXX")
SERVER_PID=
FLEET_PID=
cleanup() {
    for p in $FLEET_PID $SERVER_PID; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "${FLEET_KEEP:-}" ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$WORK" || exit 1
unset AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_CA

# shellcheck source=../lib/check.sh
. "$HERE/../lib/check.sh"
T0=$(date +%s.%N)

# ---- keys, images, server --------------------------------------------------------------------
run 0 "keygen" keygen -t ed25519 -k key.pem
head -c 20000 /dev/urandom >payload.bin
for v in 1.0.0 1.1.0 1.2.0; do
    run 0 "sign v$v" sign -H 32 --pad-header -v "$v" -S 49152 -k key.pem payload.bin "v$v.bin"
done
D=$WORK/srv
run 0 "server init" server init "$D" -k key.pem
sed -i 's/^#* *poll_interval *=.*/poll_interval = 00:00:01/' "$D/server.conf"
grep -q '^poll_interval = 00:00:01' "$D/server.conf" || echo "poll_interval = 00:00:01" >>"$D/server.conf"
start_server "$D"
TOK=(--token-file "$D/operator.token")
for v in 1.0.0 1.1.0 1.2.0; do
    run 0 "upload v$v" artifact upload "v$v.bin" --name "fw-$v.bin" "${TOK[@]}"
done

api() { # api PATH > stdout
    curl -sS --cacert "$D/tls/ca.pem" -H "Authorization: Bearer $(cat "$D/operator.token")" \
        "https://localhost:$PORT$1"
}

# ---- a factory image the bootloaders do not trust: every device bricked, exit 20 -----------------
run 0 "keygen another key" keygen -t ed25519 -k other.pem
run 20 "fleet with an untrusted factory image exits 20 (bricked)" sim fleet -n 3 \
    --server "https://localhost:$PORT" --ca "$D/tls/ca.pem" --gateway-token-file "$D/gateway.token" \
    --factory v1.0.0.bin -k other.pem --slot-size 49152 --duration 2 --json -q
check "$(jget out bricked)" 3 "... and reports the 3 devices bricked"
has_re err "bricked" "... and says so"

# ---- the fleet ---------------------------------------------------------------------------------
"$AIRLOCK" sim fleet -n "$N" --server "https://localhost:$PORT" --ca "$D/tls/ca.pem" \
    --gateway-token-file "$D/gateway.token" --token-file "$D/operator.token" \
    --factory v1.0.0.bin -k key.pem --slot-size 49152 --time-scale "$SCALE" --seed "$SEED" \
    --bad-version 1.2.0 --trials 2 --max-conns 16 \
    --drop 0.2 --powercut 0.15 --slow 0.1 --offline 0.002 --offline-time 15 --storm 0.002 \
    --until-campaign-done to-1.2.0 --json >fleet.json 2>fleet.err &
FLEET_PID=$!

# every device enrolled (gateway token) and reporting v1.0.0
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local secs=$1 desc=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        if "$@"; then
            ok "$desc"
            return 0
        fi
        if ! kill -0 "$FLEET_PID" 2>/dev/null; then
            not_ok "$desc: the fleet simulator exited"
            tail -5 fleet.err
            return 1
        fi
        sleep 0.2
    done
    not_ok "$desc: not within $secs s"
    tail -3 fleet.err
    return 1
}
enrolled() {
    api /api/v1/devices >devices.json 2>/dev/null &&
        [ "$(python3 -c 'import json,sys
d = json.load(open("devices.json"))["devices"]
print(sum(1 for x in d if x["version"] == "1.0.0"))' 2>/dev/null)" = "$N" ]
}
wait_for 30 "all $N devices enrolled on 1.0.0" enrolled || exit 1

campaign_state() { # campaign_state NAME STATE
    api "/api/v1/campaigns/$1" >"c-$1.json" 2>/dev/null && [ "$(jget "c-$1.json" state)" = "$2" ]
}
run 0 "campaign to 1.1.0 in waves" campaign create to-1.1.0 --artifact fw-1.1.0.bin \
    --waves 10,50,100 --failure-threshold 20 "${TOK[@]}"
wait_for 75 "campaign to 1.1.0 finished" campaign_state to-1.1.0 finished || exit 1
check "$(jget c-to-1.1.0.json counts.success)" "$N" "every device updated to 1.1.0"
check "$(jget c-to-1.1.0.json counts.failure)" 0 "no device failed the good update"

run 0 "campaign to the crashing 1.2.0" campaign create to-1.2.0 --artifact fw-1.2.0.bin \
    --waves 10,50,100 --failure-threshold 20 "${TOK[@]}"
for ((i = 0; i < 300; i++)); do
    kill -0 "$FLEET_PID" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$FLEET_PID" 2>/dev/null; then
    not_ok "the fleet did not stop within 60 s of the second campaign (stopping it)"
    kill -TERM "$FLEET_PID"
fi
wait "$FLEET_PID"
rc=$?
FLEET_PID=
check "$rc" 0 "sim fleet exits 0 (nothing bricked, no report lost)"
if [ "$rc" != 0 ]; then tail -5 fleet.err; fi

# ---- what the fleet says -----------------------------------------------------------------------
check "$(jget fleet.json devices)" "$N" "report covers every device"
check "$(jget fleet.json stopped_by)" campaign "stopped when the campaign was done"
check "$(jget fleet.json bricked)" 0 "0 bricked"
check "$(jget fleet.json audit.done)" true "audit against the operator API done"
check "$(jget fleet.json audit.missing)" 0 "no acknowledged report missing on the server"
check "$(jget fleet.json audit.errors)" 0 "every device's record checked"
check "$(jget fleet.json by_version_state.0.version)" 1.1.0 "final version 1.1.0"
check "$(jget fleet.json by_version_state.0.devices)" "$N" "... on every device"
check "$(jget fleet.json by_version_state.1)" INVALID "... and no other version or state"
check "$(jget fleet.json verify_failures)" 0 "no verification failure"
python3 - "$N" <<'EOF' >checks.txt
import json, sys
n = int(sys.argv[1])
r = json.load(open("fleet.json"))
def say(ok, what): print(("ok   - " if ok else "FAIL - ") + what)
say(r["audit"]["reports"] >= 3 * n, "audit checked %d acknowledged reports" % r["audit"]["reports"])
say(r["reverts"] >= 1, "devices reverted 1.2.0 (%d reverts)" % r["reverts"])
say(r["reports_failed"] == r["reverts"], "every revert reported as a failure (%d)" % r["reports_failed"])
say(r["powercuts_download"] >= 1 and r["powercuts_swap"] >= 1,
    "power cuts in downloads (%d) and in swaps (%d)" % (r["powercuts_download"], r["powercuts_swap"]))
say(r["drops"] >= 1 and r["resumes"] >= 1, "drops (%d) resumed with Range (%d resumes)" % (r["drops"], r["resumes"]))
say(r["slow_links"] >= 1, "slow links (%d)" % r["slow_links"])
say(r["bytes_min"] > 0 and r["bytes_downloaded"] >= r["bytes_min"],
    "bytes downloaded %d >= minimum %d" % (r["bytes_downloaded"], r["bytes_min"]))
say(r["bytes_downloaded"] < 2 * r["bytes_min"], "resumes keep bytes under 2x the minimum")
say(r["checkins"] > 0, "check-ins counted (%.0f/s)" % r["checkins_per_s"])
EOF
cat checks.txt
pass=$((pass + $(grep -c '^ok' checks.txt)))
fail=$((fail + $(grep -c '^FAIL' checks.txt)))

# ---- what the server says ----------------------------------------------------------------------
api /api/v1/campaigns/to-1.2.0 >c2.json
check "$(jget c2.json state)" paused "the failure threshold paused the 1.2.0 campaign"
has_re c2.json '"reason": *"wave 1 of 3' "the reason names wave 1"
check "$(jget c2.json counts.success)" 0 "no device kept 1.2.0"
check "$(jget c2.json counts.offered)" 0 "no action left offered"
check "$(jget c2.json counts.running)" 0 "no action left running"
api /api/v1/devices >devices.json
check "$(python3 -c 'import json
d = json.load(open("devices.json"))["devices"]
print(sorted(set(x["version"] for x in d)))')" "['1.1.0']" "the server has every device on 1.1.0"
# a failed device's history on the server says why: the bootloader reverted it
python3 - "$PORT" "$D/tls/ca.pem" "$D/operator.token" <<'EOF' >checks2.txt
import json, ssl, sys, urllib.request
port, ca, tok = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip()
ctx = ssl.create_default_context(cafile=ca)
def get(path):
    rq = urllib.request.Request("https://localhost:%s%s" % (port, path),
                                headers={"Authorization": "Bearer " + tok})
    return json.load(urllib.request.urlopen(rq, context=ctx))
why = None
for dev in get("/api/v1/devices")["devices"]:
    d = get("/api/v1/devices/" + dev["controller_id"])
    for a in d["actions"]:
        if a["campaign"] == "to-1.2.0" and a["state"] == "failure":
            why = (dev["controller_id"], a["details"])
            break
    if why:
        break
ok = why is not None and "reverted from 1.2.0" in why[1]
print(("ok   - " if ok else "FAIL - ") + "a failed device's report says it reverted: %s" % (why,))
EOF
cat checks2.txt
pass=$((pass + $(grep -c '^ok' checks2.txt)))
fail=$((fail + $(grep -c '^FAIL' checks2.txt)))

echo "# test_fleet took $(python3 -c "import time; print(round(time.time() - $T0, 1))") s"
finish test_fleet
