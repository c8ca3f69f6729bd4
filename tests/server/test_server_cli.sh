#!/usr/bin/env bash
# End-to-end test of the server CLI: `airlock server init` (files, modes,
# refusal of a non-empty DIR), `airlock server run` in the background, then
# the operator CLI against it (artifact upload incl. rejected images, device
# add and the device's token on the DDI API, groups, a campaign in waves,
# pause/resume, status --json) and its exit codes. Never touches anything
# outside its mktemp directory; the server is stopped on exit. A few seconds.
# Usage: test_server_cli.sh AIRLOCK_BINARY VECTOR_DIR   (needs bash, python3, curl)
set -u

AIRLOCK=${1:?usage: test_server_cli.sh AIRLOCK_BINARY VECTOR_DIR}
VEC=${2:?usage: test_server_cli.sh AIRLOCK_BINARY VECTOR_DIR}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
command -v python3 >/dev/null || { echo "test_server_cli.sh needs python3"; exit 1; }
command -v curl >/dev/null || { echo "test_server_cli.sh needs curl"; exit 1; }

# Exit codes (tools/exitcodes.h).
EXIT_USAGE=2 EXIT_NETWORK=14 EXIT_TLS=15 EXIT_SERVER_REJECTED=18 EXIT_UNAUTHORIZED=19

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-server-cli.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$WORK" || exit 1
unset AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_CA

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

# ---- init ----------------------------------------------------------------------------------
D=$WORK/srv
run 0 "server init" server init "$D" --host updates.test -k "$VEC/key-ed25519.pem"
has_re out "operator token: " "init prints the operator token"
check "$(stat -c %a "$D")" 700 "DIR is mode 0700"
for f in tls/ca.key tls/server.key operator.token gateway.token; do
    check "$(stat -c %a "$D/$f")" 600 "$f is mode 0600"
done
for f in server.conf tls/ca.pem tls/server.pem airlock.db keys/key-ed25519.pem; do
    if [ -s "$D/$f" ]; then ok "$f exists"; else not_ok "$f missing"; fi
done
has_re "$D/keys/key-ed25519.pem" "BEGIN PUBLIC KEY" "keys/ holds the public key"
if grep -q PRIVATE "$D/keys/key-ed25519.pem"; then not_ok "a private key was copied"; else
    ok "no private key in keys/"
fi
for k in tenant bind port public_url poll_interval threads max_inflight max_artifact_mb \
    insecure_http access_log cert_file key_file; do
    has_re "$D/server.conf" "^# $k =" "server.conf documents $k"
done
openssl x509 -in "$D/tls/server.pem" -noout -ext subjectAltName >san 2>&1
has_re san "DNS:localhost" "certificate names localhost"
has_re san "127.0.0.1" "certificate names 127.0.0.1"
has_re san "DNS:updates.test" "certificate names --host"
OP_TOKEN=$(cat "$D/operator.token")
has_re out "$OP_TOKEN" "the printed token is the one in operator.token"
run $EXIT_USAGE "init refuses a non-empty DIR" server init "$D"
has_re err "not empty" "the message says why"
mkdir -p other && touch other/x
run $EXIT_USAGE "init refuses another non-empty DIR" server init other
run 0 "init --json on a new DIR" server init "$WORK/srv2" --json
check "$(jget out port)" 8443 "--json names the port"

# ---- run -----------------------------------------------------------------------------------
start_server "$D"
has_re server.out "listening on https://.*:$PORT \(tenant DEFAULT\)" "server prints where it listens"

T=(--token-file "$D/operator.token")

# ---- artifacts -----------------------------------------------------------------------------
run 0 "upload a signed image" artifact upload "$VEC/ed25519.signed.bin" --name fw-4.5.6.bin "${T[@]}"
has_re out "4.5.6\+789" "the version comes from the header"
run $EXIT_SERVER_REJECTED "upload an unsigned image" artifact upload "$VEC/hash-only.signed.bin" "${T[@]}"
has_re err "NO_SIGNATURE" "the rejection names the error"
run $EXIT_SERVER_REJECTED "upload an image of an untrusted key" artifact upload \
    "$VEC/ecdsa-p256.signed.bin" "${T[@]}"
has_re err "UNKNOWN_KEY.*offset" "the rejection names the error and offset"
run $EXIT_SERVER_REJECTED "opaque without --version" artifact upload "$VEC/payload-5000.bin" \
    --kind opaque "${T[@]}"
run 0 "opaque with --version" artifact upload "$VEC/payload-5000.bin" --kind opaque \
    --version 2024.11 "${T[@]}"
run $EXIT_SERVER_REJECTED "duplicate name" artifact upload "$VEC/payload-5000.bin" --kind opaque \
    --version 1 "${T[@]}"
run 0 "artifact list --json" artifact list --json "${T[@]}"
check "$(jget out artifacts.0.name)" fw-4.5.6.bin "first artifact"
check "$(jget out artifacts.1.version)" 2024.11 "second artifact"
check "$(jget out artifacts.2.name)" INVALID "nothing else was stored"
run 0 "artifact show" artifact show fw-4.5.6.bin "${T[@]}"
has_re out "sha256: +$(sha256sum "$VEC/ed25519.signed.bin" | cut -d' ' -f1)" "show gives the sha256"

# ---- devices and groups --------------------------------------------------------------------
run 0 "device add --json" device add dev-1 --json "${T[@]}"
TOKEN1=$(jget out token)
check "${#TOKEN1}" 32 "a token is generated"
run 0 "device add with a token" device add dev-2 --name "Second device" \
    --device-token dev-2-token-0123456789 "${T[@]}"
has_re out "token: dev-2-token-0123456789" "the given token is shown once"
run $EXIT_SERVER_REJECTED "device add twice" device add dev-1 "${T[@]}"
run 0 "group create" group create canary "${T[@]}"
run $EXIT_SERVER_REJECTED "group add with an unknown device" group add canary dev-1 ghost "${T[@]}"
has_re err "ghost" "the message names the device"
run 0 "group add" group add canary dev-1 dev-2 "${T[@]}"
has_re out "2 device" "both are members"
run 0 "group show" group show canary "${T[@]}"
has_re out "dev-2 +Second device" "members are listed"
run 0 "group list" group list "${T[@]}"

# ---- campaign ------------------------------------------------------------------------------
run 0 "campaign create" campaign create first --artifact fw-4.5.6.bin --group canary \
    --waves 50,100 --failure-threshold 20 "${T[@]}"
has_re out "campaign first: running, wave 1 of 2" "status printed"
run 0 "campaign status --json" campaign status first --json "${T[@]}"
check "$(jget out state)" running "state"
check "$(jget out counts.total)" 2 "two devices"
check "$(jget out counts.offered)" 1 "one offered (wave 1)"
check "$(jget out counts.pending)" 1 "one pending (wave 2)"
check "$(jget out per_wave.0.percent)" 50 "wave 1 is 50 %"
check "$(jget out failure_threshold)" 20 "threshold"
check "$(jget out artifact.version)" "4.5.6+789" "artifact version"

# the device of wave 1 sees its deployment over DDI with the token device add returned
offered=0
for cid in dev-1 dev-2; do
    tok=$TOKEN1
    [ "$cid" = dev-2 ] && tok=dev-2-token-0123456789
    curl -s --cacert "$D/tls/ca.pem" -H "Authorization: TargetToken $tok" \
        "https://localhost:$PORT/DEFAULT/controller/v1/$cid" >poll.json
    if grep -q deploymentBase poll.json; then offered=$((offered + 1)); fi
done
check "$offered" 1 "exactly one device is offered the update"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/tls/ca.pem" \
    -H "Authorization: TargetToken $TOKEN1" "https://localhost:$PORT/api/v1/devices")
check "$code" 401 "a device token is not an operator token"

run 0 "campaign pause" campaign pause first --reason "look at logs" "${T[@]}"
has_re out "paused" "paused"
run $EXIT_SERVER_REJECTED "pause twice" campaign pause first "${T[@]}"
has_re err "is paused" "the message names the state"
run 0 "campaign resume" campaign resume first "${T[@]}"
run $EXIT_SERVER_REJECTED "bad waves" campaign create second --artifact fw-4.5.6.bin \
    --waves 50,40,100 "${T[@]}"
has_re err "waves\[1\]" "the message names the field"
run $EXIT_USAGE "malformed --waves" campaign create second --artifact fw-4.5.6.bin --waves 1,x "${T[@]}"
run $EXIT_USAGE "option of another subcommand" campaign list --waves 1,100 "${T[@]}"
run 0 "campaign list" campaign list "${T[@]}"
has_re out "first +running +1/2" "list shows state and wave"
run 0 "device list" device list "${T[@]}"
has_re out "first:offered" "a device's open action is listed"
run 0 "device show" device show dev-1 "${T[@]}"

# ---- exit codes ----------------------------------------------------------------------------
run $EXIT_UNAUTHORIZED "wrong token" campaign list --token wrong-token
run $EXIT_USAGE "no token" campaign list
run $EXIT_USAGE "no server" campaign list --server "" "${T[@]}"
run $EXIT_TLS "CA that did not sign the server" campaign list --ca "$WORK/srv2/tls/ca.pem" "${T[@]}"
run $EXIT_NETWORK "nothing listening" campaign list --server https://127.0.0.1:1 "${T[@]}"
run $EXIT_SERVER_REJECTED "unknown campaign" campaign status nothing "${T[@]}"
run 0 "--help" campaign --help

# ---- stop ----------------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
check "$?" 0 "server run exits 0 on SIGTERM"
SERVER_PID=
if [ -e "$D/server.port" ]; then not_ok "server.port left behind"; else ok "server.port removed"; fi

# ---- re-initialise ---------------------------------------------------------------------
CA_SUM=$(sha256sum <"$D/tls/ca.pem")
run 0 "init --force on the used DIR" server init "$D" --force
check "$(sha256sum <"$D/tls/ca.pem")" "$CA_SUM" "--force keeps the CA"
if openssl verify -CAfile "$D/tls/ca.pem" "$D/tls/server.pem" >/dev/null 2>&1; then
    ok "the new server certificate chains to the kept CA"
else
    not_ok "the new server certificate does not chain to the CA"
fi
NEW_TOKEN=$(cat "$D/operator.token")
if [ "$NEW_TOKEN" != "$OP_TOKEN" ]; then ok "a new operator token"; else not_ok "same token"; fi
if [ -s "$D/artifacts/$(sha256sum "$VEC/ed25519.signed.bin" | cut -d' ' -f1)" ]; then
    ok "artifacts kept"
else
    not_ok "artifacts lost"
fi

echo "# $pass passed, $fail failed"
[ "$fail" = 0 ]
