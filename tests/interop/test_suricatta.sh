#!/usr/bin/env bash
# A real third-party hawkBit DDI client against airlock's server: Debian's
# SWUpdate in suricatta mode polls, downloads a signed .swu, installs a file
# and reports; a broken .swu is reported as a failure. Everything is checked
# through the operator API. ../shared/interop/swupdate-suricatta.md records
# how that client behaves (two phases: success is reported on the next start
# with -c 2; the first install comes one polling interval late).
#
# Usage: test_suricatta.sh AIRLOCK_BINARY
# Exit 77 (skipped) when swupdate is not installed (scripts/deps.sh installs it).
set -euo pipefail

AIRLOCK="$1"
command -v swupdate >/dev/null 2>&1 || { echo "SKIP: swupdate not installed"; exit 77; }
command -v cpio >/dev/null 2>&1 || { echo "SKIP: cpio not installed"; exit 77; }

W="$(mktemp -d /tmp/airlock-suricatta-XXXXXX)"
PIDS=()     # the server
SWU_PIDS=() # `timeout swupdate ...`: each leads its own process group
stop_group() { # PID: TERM the group it leads, KILL what is left a second later
    kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 10); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    local p rc=$? hung=0
    for p in "${SWU_PIDS[@]:-}"; do
        [ -n "$p" ] && stop_group "$p"
    done
    # the server must stop on SIGTERM within 10 s; one that does not is a bug
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || continue
        for _ in $(seq 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2>/dev/null; then
            echo "FAIL: the server did not stop within 10 s of SIGTERM" >&2
            kill -KILL "$p" 2>/dev/null || true
            hung=1
        fi
    done
    for p in "${PIDS[@]:-}" "${SWU_PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$W"; else echo "kept $W"; fi
    [ "$hung" = 0 ] || exit 1
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$W"/*.log; do
        [ -e "$f" ] || continue
        echo "---- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
    exit 1
}

# ---- server ---------------------------------------------------------------------
"$AIRLOCK" server init "$W/srv" >"$W/init.log" 2>&1 || fail "server init"
# poll every 2 s: the first install comes one polling interval after the first poll
sed -i 's/^#* *poll_interval *=.*/poll_interval = 00:00:02/' "$W/srv/server.conf"
grep -q '^poll_interval = 00:00:02' "$W/srv/server.conf" || echo 'poll_interval = 00:00:02' >>"$W/srv/server.conf"
"$AIRLOCK" server run "$W/srv" --port 0 >"$W/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    [ -s "$W/srv/server.port" ] && break
    sleep 0.1
done
[ -s "$W/srv/server.port" ] || fail "server did not start"
PORT="$(cat "$W/srv/server.port")"
URL="https://127.0.0.1:$PORT"
CA="$W/srv/tls/ca.pem"
OP="$(cat "$W/srv/operator.token")"

api() { # METHOD PATH [curl args...] -> body on stdout; fails on HTTP >= 400
    local m="$1" p="$2"
    shift 2
    curl -sS --fail-with-body --cacert "$CA" -X "$m" -H "Authorization: Bearer $OP" "$@" "$URL$p"
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("print("+sys.argv[1]+")")' "$1"; }

# ---- the .swu files --------------------------------------------------------------
mkswu() { # DIR VERSION PAYLOAD-TEXT CORRUPT(0|1)
    local d="$1" v="$2" text="$3" corrupt="$4"
    mkdir -p "$d"
    printf '%s\n' "$text" >"$d/payload.txt"
    local sum
    sum="$(sha256sum "$d/payload.txt" | cut -d' ' -f1)"
    cat >"$d/sw-description" <<EOF
software =
{
	version = "$v";
	description = "install one file";
	hardware-compatibility: [ "1.0" ];
	files: (
		{
			filename = "payload.txt";
			path = "$W/installed-$(basename "$d").txt";
			sha256 = "$sum";
			properties = { create-destination = "true"; };
		}
	);
};
EOF
    openssl cms -sign -in "$d/sw-description" -out "$d/sw-description.sig" -signer "$W/signer.crt" \
        -inkey "$W/signer.key" -outform DER -nosmimecap -binary
    # corrupt: the payload changes after its sha256 went into sw-description
    [ "$corrupt" = 1 ] && printf 'tampered\n' >>"$d/payload.txt"
    (cd "$d" && printf '%s\n' sw-description sw-description.sig payload.txt |
        cpio -o -H crc --quiet >"$d/update.swu")
}
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$W/signer.key" -out "$W/signer.crt" \
    -subj "/O=airlock-test/CN=swu-signer" >/dev/null 2>&1
mkswu "$W/good" 1.0.0 "hello from airlock" 0
mkswu "$W/bad" 1.0.1 "this one is broken" 1

# ---- fleet: two devices, two groups, two artifacts, two campaigns ----------------
TOK1="$(api POST /api/v1/devices -H 'Content-Type: application/json' \
    -d '{"controller_id":"dev01","token":"tok-dev01-0123456789"}' | jget 'd["token"]')"
TOK2="$(api POST /api/v1/devices -H 'Content-Type: application/json' \
    -d '{"controller_id":"dev02","token":"tok-dev02-0123456789"}' | jget 'd["token"]')"
[ "$TOK1" = tok-dev01-0123456789 ] || fail "device add returned token '$TOK1'"
api POST /api/v1/groups -H 'Content-Type: application/json' -d '{"name":"g1"}' >/dev/null
api POST /api/v1/groups -H 'Content-Type: application/json' -d '{"name":"g2"}' >/dev/null
api POST /api/v1/groups/g1/devices -H 'Content-Type: application/json' -d '{"devices":["dev01"]}' >/dev/null
api POST /api/v1/groups/g2/devices -H 'Content-Type: application/json' -d '{"devices":["dev02"]}' >/dev/null
api POST "/api/v1/artifacts?name=update.swu&kind=opaque&version=1.0.0" \
    --data-binary @"$W/good/update.swu" >/dev/null || fail "upload good .swu"
api POST "/api/v1/artifacts?name=broken.swu&kind=opaque&version=1.0.1" \
    --data-binary @"$W/bad/update.swu" >/dev/null || fail "upload bad .swu"
api POST /api/v1/campaigns -H 'Content-Type: application/json' \
    -d '{"name":"good","artifact":"update.swu","group":"g1","failure_threshold":50}' >/dev/null
api POST /api/v1/campaigns -H 'Content-Type: application/json' \
    -d '{"name":"bad","artifact":"broken.swu","group":"g2","failure_threshold":50}' >/dev/null

# ---- suricatta -------------------------------------------------------------------
cfg() { # ID TOKEN -> config file
    cat >"$W/$1.cfg" <<EOF
globals : { verbose = true; loglevel = 6; };
suricatta :
{
	tenant = "DEFAULT";
	id = "$1";
	url = "$URL";
	polldelay = 2;
	retry = 2;
	retrywait = "1";
	connection-timeout = 10;
	targettoken = "$2";
	cafile = "$CA";
};
identify : (
	{ name = "hwRevision"; value = "1.0"; },
	{ name = "client"; value = "swupdate-suricatta"; }
);
EOF
}
suricatta() { # ID PHASE [-c N] -> runs in the background, pid in LAST
    local id="$1" phase="$2"
    shift 2
    mkdir -p "$W/ipc-$id-$phase"
    TMPDIR="$W/ipc-$id-$phase" timeout -k 5 120 swupdate -v -H probe:1.0 -k "$W/signer.crt" \
        -f "$W/$id.cfg" -u "-t DEFAULT -i $id $*" >"$W/suricatta-$id-$phase.log" 2>&1 &
    LAST=$!
    SWU_PIDS+=("$LAST")
}
action_state() { # CAMPAIGN DEVICE -> state of the device's action
    api GET "/api/v1/devices/$2" | python3 -c '
import json,sys
d=json.load(sys.stdin)
acts=[a for a in d.get("actions",[]) if a.get("campaign")==sys.argv[1]]
print(acts[-1]["state"] if acts else "none")' "$1"
}
wait_for() { # SECONDS DESCRIPTION COMMAND...
    local t="$1" what="$2"
    shift 2
    for _ in $(seq $((t * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    fail "timed out after ${t}s waiting for: $what"
}
state_is() { [ "$(action_state "$1" "$2")" = "$3" ]; }

cfg dev01 "$TOK1"
cfg dev02 "$TOK2"

# phase 1: poll, deploymentBase, configData, download, install, "All Chunks Installed."
suricatta dev01 1
P1=$LAST
suricatta dev02 1
P2=$LAST
wait_for 60 "dev01 installed the file" test -s "$W/installed-good.txt"
cmp -s "$W/installed-good.txt" "$W/good/payload.txt" || fail "installed file differs from the payload"
wait_for 30 "dev01's action running (proceeding feedback)" state_is good dev01 running
# the broken .swu: failure reported at once, file not written
wait_for 60 "dev02's action failed" state_is bad dev02 failure
[ ! -e "$W/installed-bad.txt" ] || fail "the broken .swu installed its file"
stop_group "$P1"
stop_group "$P2"

# phase 2: the restart with -c 2 reports success
suricatta dev01 2 -c 2
wait_for 60 "dev01's action succeeded" state_is good dev01 success
stop_group "$LAST"

# ---- what the server saw ----------------------------------------------------------
DEV1="$(api GET /api/v1/devices/dev01)"
echo "$DEV1" | python3 -c '
import json,sys
d=json.load(sys.stdin)
attrs=d.get("attributes") or {}
assert attrs.get("client")=="swupdate-suricatta", ("configData attributes", attrs)
assert d.get("polls",0)>=2, ("polls", d.get("polls"))
fb=d.get("feedback",[])
ex=[(f["execution"],f["finished"]) for f in fb]
assert ("proceeding","none") in ex, ex
assert ("closed","success") in ex, ex
print("dev01: %d polls, %d feedback messages, attributes %s" % (d["polls"], len(fb), sorted(attrs)))
' || fail "dev01 as seen by the operator API"
api GET /api/v1/devices/dev02 | python3 -c '
import json,sys
d=json.load(sys.stdin)
fb=d.get("feedback",[])
ex=[(f["execution"],f["finished"]) for f in fb]
assert ("closed","failure") in ex, ex
print("dev02: failure reported:", [f.get("details") for f in fb if f["finished"]=="failure"][-1])
' || fail "dev02 as seen by the operator API"
api GET /api/v1/campaigns/good | jget 'd["state"]' | grep -qx finished || fail "campaign good not finished"
api GET /api/v1/campaigns/bad | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["state"] in ("paused","finished"), d["state"]
print("campaign bad:", d["state"], "-", d.get("reason",""))' || fail "campaign bad"
echo "PASS: suricatta polled, downloaded, installed and reported success; the broken .swu reported failure"
