#!/usr/bin/env bash
# End-to-end test of `airlock sim device` on the real server: the demo
# firmware (examples/firmware) signed as images, devices provisioned on flash
# files, then: v1.0.0 boots and confirms; a campaign updates to 1.1.0; a
# power cut in the download and one in the bootloader's swap still end on
# 1.1.0 confirmed (the download resumed); a crashing 1.2.0, a hanging 1.3.0
# and a 1.4.0 that cannot reach the server are reverted and reported failed;
# random power cuts do not stop an update; a payload that is not an
# executable is refused clearly. Everything lives
# in a mktemp directory; the server is stopped on exit. About 30 s.
# Usage: test_sim_device.sh AIRLOCK FIRMWARE_DIR VECTOR_DIR   (needs bash, python3)
set -u

AIRLOCK=${1:?usage: test_sim_device.sh AIRLOCK FIRMWARE_DIR VECTOR_DIR}
FW=${2:?usage: test_sim_device.sh AIRLOCK FIRMWARE_DIR VECTOR_DIR}
VEC=${3:?usage: test_sim_device.sh AIRLOCK FIRMWARE_DIR VECTOR_DIR}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
case $FW in /*) ;; *) FW=$PWD/$FW ;; esac
command -v python3 >/dev/null || { echo "test_sim_device.sh needs python3"; exit 1; }

# Exit codes (tools/exitcodes.h).
EXIT_UNSUPPORTED=9 EXIT_SIM_UNFINISHED=22

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-sim-device.XXXXXX")
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

KEY=$VEC/key-ed25519.pem
SEED=${AIRLOCK_TEST_SEED:-4242}
echo "# seed $SEED"

# ---- server and images ---------------------------------------------------------------------
"$AIRLOCK" server init srv -k "$KEY" >/dev/null 2>&1 || { not_ok "server init"; exit 1; }
echo "poll_interval = 00:00:01" >>srv/server.conf
start_server srv
export AIRLOCK_TOKEN
AIRLOCK_TOKEN=$(cat srv/operator.token)

sign() { # VARIANT VERSION
    "$AIRLOCK" sign -q -k "$KEY" -H 0x200 --pad-header -v "$2" -S 0x400000 --align 4 \
        "$FW/firmware-$1" "$1-$2.img" || not_ok "sign $1 $2"
}
sign good 1.0.0
sign good 1.1.0
sign crash 1.2.0
sign hang 1.3.0
sign noconn 1.4.0
sign good 1.5.0

# sim DEV EXPECTED_EXIT DESCRIPTION ARGS...: runs the device, summary -> DEV.json, events -> DEV.log
sim() {
    local dev=$1 want=$2 desc=$3 got
    shift 3
    "$AIRLOCK" sim device --flash "$dev.img" --layout sim-device --json --seed "$SEED" \
        --timeout 25 "$@" >"$dev.json" 2>"$dev.log"
    got=$?
    if [ "$got" = "$want" ]; then
        ok "$desc (exit $got)"
    else
        not_ok "$desc: exit $got, expected $want"
        sed 's/^/    /' "$dev.json" | head -30
        tail -25 "$dev.log" | sed 's/^/    log: /'
    fi
}

# ---- 1. v1.0.0 boots and confirms ------------------------------------------------------------
GW=$(cat srv/gateway.token)
for d in dev-1 dev-2 dev-3; do
    run 0 "provision $d" sim device --flash "$d.img" --layout sim-device --provision-only \
        --server "$AIRLOCK_SERVER" --controller-id "$d" --gateway-token "$GW" --ca "$AIRLOCK_CA" \
        -k "$KEY" --image good-1.0.0.img
done
sim dev-1 0 "dev-1 boots 1.0.0 until idle" --until-idle
check "$(jget dev-1.json version)" 1.0.0 "dev-1 runs 1.0.0"
check "$(jget dev-1.json state)" confirmed "dev-1 is confirmed"
check "$(jget dev-1.json stop)" goal "dev-1 stopped at its goal"
has_re dev-1.log "^dev-1 boot: boot 1: normal 1.0.0" "the bootloader's decision is logged"
has_re dev-1.log "^dev-1 idle: version=1.0.0" "the idle event is logged"
sim dev-2 0 "dev-2 enrols" --until-idle
sim dev-3 0 "dev-3 enrols" --until-idle
# the flash file is all the state: a second run boots from it with no provisioning option
sim dev-1 0 "dev-1 boots again from its flash file alone" --until-idle --max-boots 1
check "$(jget dev-1.json boots)" 1 "one boot"

# ---- 2. campaign to 1.1.0, with power cuts in the download and in the swap -----------------------
run 0 "upload 1.1.0" artifact upload good-1.1.0.img --name good-1.1.0
run 0 "group" group create all
run 0 "group add" group add all dev-1 dev-2 dev-3
run 0 "campaign to 1.1.0" campaign create to-1.1 --artifact good-1.1.0 --group all
sim dev-1 0 "dev-1 updates to 1.1.0" --until-version 1.1.0
check "$(jget dev-1.json state)" confirmed "dev-1: 1.1.0 confirmed"
check "$(jget dev-1.json installs)" 1 "dev-1: one install"
check "$(jget dev-1.json bytes_downloaded)" "$(stat -c %s good-1.1.0.img)" "dev-1: downloaded the artifact once"
has_re dev-1.log "^dev-1 boot: boot 2: installed 1.1.0" "dev-1: the install is logged"

# dev-2: a cut halfway through the flash operations dev-1's download spanned
# (its "download" event names them; the operations before it are the same: the
# DDI record writes of the same steps)
read -r OPS_FROM OPS_TO < <(sed -nE 's/^dev-1 download: .*ops_from=([0-9]+) ops_to=([0-9]+).*/\1 \2/p' dev-1.log | head -1)
if [ "${OPS_TO:-0}" -gt "$((${OPS_FROM:-0} + 4))" ]; then
    ok "dev-1's download spanned flash operations $OPS_FROM to $OPS_TO"
else
    not_ok "no flash operation span for dev-1's download (${OPS_FROM:-?} to ${OPS_TO:-?})"
    OPS_FROM=40 OPS_TO=80
fi
DL_CUT=$(((OPS_FROM + OPS_TO) / 2))
sim dev-2 0 "dev-2 updates with a power cut in the download" --until-version 1.1.0 --cut-at-op $DL_CUT
check "$(jget dev-2.json version)" 1.1.0 "dev-2 runs 1.1.0"
check "$(jget dev-2.json state)" confirmed "dev-2: confirmed"
check "$(jget dev-2.json power_cuts)" 1 "dev-2: one power cut survived"
check "$(jget dev-2.json resumes)" 1 "dev-2: the download resumed after the cut"
has_re dev-2.log "^dev-2 powercut: boot 1: power cut in the firmware's flash operation $DL_CUT" "dev-2: the cut is logged"
has_re dev-2.log "resuming at byte [1-9]" "dev-2: the download continued from the bytes already in flash"
if [ "$(jget dev-2.json bytes_downloaded)" -lt "$(stat -c %s good-1.1.0.img)" ]; then
    ok "dev-2: the resumed download fetched less than the whole artifact"
else
    not_ok "dev-2: downloaded $(jget dev-2.json bytes_downloaded) bytes after the cut"
fi

# dev-3: cut the bootloader halfway through the swap (dev-1's install boot counted its operations)
SWAP_OPS=$(sed -nE 's/^dev-1 boot: boot 2: installed .*\(trial, ([0-9]+) erases, ([0-9]+) programs\)$/\1 \2/p' dev-1.log |
    awk '{ print $1 + $2 }')
if [ "${SWAP_OPS:-0}" -gt 20 ]; then ok "the swap took $SWAP_OPS flash operations"; else
    not_ok "no operation count for dev-1's install boot"
    SWAP_OPS=100
fi
HALF=$((SWAP_OPS / 2))
sim dev-3 0 "dev-3 updates with a power cut in the swap" --until-version 1.1.0 --cut-boot-at-op $HALF
check "$(jget dev-3.json version)" 1.1.0 "dev-3 runs 1.1.0"
check "$(jget dev-3.json state)" confirmed "dev-3: confirmed"
check "$(jget dev-3.json power_cuts)" 1 "dev-3: one power cut survived"
has_re dev-3.log "^dev-3 powercut: boot 2: power cut in the bootloader's flash operation $HALF " "dev-3: the cut is in the install boot"
has_re dev-3.log "^dev-3 boot: boot 3: installed 1.1.0" "dev-3: the next boot finished the install"
run 0 "campaign status" campaign status to-1.1 --json
check "$(jget out counts.success)" 3 "the server counts three successes"

# ---- 3. bad updates revert and are reported ---------------------------------------------------------
run 0 "upload 1.2.0 (crashes)" artifact upload crash-1.2.0.img --name crash-1.2.0
run 0 "upload 1.3.0 (hangs)" artifact upload hang-1.3.0.img --name hang-1.3.0
run 0 "upload 1.4.0 (no connectivity)" artifact upload noconn-1.4.0.img --name noconn-1.4.0
for g in g1 g2 g3; do run 0 "group $g" group create $g; done
run 0 "g1" group add g1 dev-1
run 0 "g2" group add g2 dev-2
run 0 "g3" group add g3 dev-3
run 0 "campaign to crashing 1.2.0" campaign create to-1.2 --artifact crash-1.2.0 --group g1
run 0 "campaign to hanging 1.3.0" campaign create to-1.3 --artifact hang-1.3.0 --group g2
run 0 "campaign to unconnected 1.4.0" campaign create to-1.4 --artifact noconn-1.4.0 --group g3

sim dev-1 0 "dev-1 takes 1.2.0, crashes, reverts" --until-idle
check "$(jget dev-1.json version)" 1.1.0 "dev-1 is back on 1.1.0"
check "$(jget dev-1.json state)" confirmed "dev-1: 1.1.0 confirmed"
check "$(jget dev-1.json crashes)" 1 "dev-1: one crash"
check "$(jget dev-1.json reverts)" 1 "dev-1: one revert"
check "$(jget dev-1.json reverted_from)" 1.2.0 "dev-1: reverted from 1.2.0"
has_re dev-1.log "^dev-1 crash: boot 2: the firmware died of signal 6" "dev-1: the crash is logged"

sim dev-2 0 "dev-2 takes 1.3.0, hangs, the watchdog resets it, it reverts" --until-idle --watchdog-ms 800
check "$(jget dev-2.json version)" 1.1.0 "dev-2 is back on 1.1.0"
check "$(jget dev-2.json watchdog_resets)" 1 "dev-2: one watchdog reset"
check "$(jget dev-2.json reverts)" 1 "dev-2: one revert"
check "$(jget dev-2.json reverted_from)" 1.3.0 "dev-2: reverted from 1.3.0"

sim dev-3 0 "dev-3 takes 1.4.0, cannot check in, reverts" --until-idle --time-scale 4
check "$(jget dev-3.json version)" 1.1.0 "dev-3 is back on 1.1.0"
check "$(jget dev-3.json health_failures)" 1 "dev-3: its health check failed"
check "$(jget dev-3.json reverts)" 1 "dev-3: one revert"

for c in to-1.2 to-1.3 to-1.4; do
    run 0 "status $c" campaign status $c --json
    check "$(jget out counts.failure)" 1 "$c: the server has the failure"
done
run 0 "device show dev-1" device show dev-1
has_re out "1\.2\.0" "dev-1's failure report names the reverted version"

# ---- 4. random power cuts through a whole update ------------------------------------------------
# A cut before the trial boot confirms uses up a trial: give three (the bootloader record
# keeps its keys), and at most two random cuts, so the update must come through.
run 0 "three trial boots for dev-1" sim device --flash dev-1.img --layout sim-device \
    --provision-only --trials 3
run 0 "upload 1.5.0" artifact upload good-1.5.0.img --name good-1.5.0
run 0 "campaign to 1.5.0" campaign create to-1.5 --artifact good-1.5.0 --group g1
sim dev-1 0 "dev-1 updates to 1.5.0 through random power cuts" --until-version 1.5.0 \
    --cut-random 1 --max-cuts 2 --cut-window-ms 100 --timeout 40
check "$(jget dev-1.json version)" 1.5.0 "dev-1 runs 1.5.0"
check "$(jget dev-1.json state)" confirmed "dev-1: 1.5.0 confirmed"
# (a boot that ends before its random moment escapes its cut: one or two cuts)
cuts=$(jget dev-1.json power_cuts)
case $cuts in 1 | 2) ok "dev-1: $cuts random power cut(s) survived" ;; *) not_ok "dev-1: $cuts cuts" ;; esac
check "$(grep -c '^dev-1 powercut: boot [0-9]*: power cut at a random moment' dev-1.log)" "$cuts" \
    "dev-1: every cut is logged"
run 0 "status to-1.5" campaign status to-1.5 --json
check "$(jget out counts.success)" 1 "to-1.5: the server has the success"

# ---- 5. stopping from a script ---------------------------------------------------------------------
t0=$(date +%s.%N)
sim dev-3 0 "--until-idle --idle-for 2" --until-idle --idle-for 2
t1=$(date +%s.%N)
if python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 2 else 1)"; then
    ok "--idle-for kept it running two seconds"
else
    not_ok "--idle-for 2 stopped after $(python3 -c "print($t1 - $t0)") s"
fi
"$AIRLOCK" sim device --flash dev-3.img --layout sim-device --json >dev-3.json 2>dev-3.log &
pid=$!
sleep 2
kill -TERM $pid
wait $pid
check "$?" 0 "SIGTERM stops a device with no goal, exit 0"
check "$(jget dev-3.json message)" interrupted "the summary says it was interrupted"
check "$(jget dev-3.json state)" confirmed "and still reports its state"

# ---- 6. refusals -------------------------------------------------------------------------------------
printf 'not a program\n' >notexec.bin
"$AIRLOCK" sign -q -k "$KEY" -H 0x200 --pad-header -v 1.0.0 -S 0x400000 --align 4 notexec.bin notexec.img
run 0 "provision a device with a non-executable payload" sim device --flash dev-x.img \
    --layout sim-device --provision-only --server "$AIRLOCK_SERVER" --controller-id dev-x \
    --gateway-token "$GW" --ca "$AIRLOCK_CA" -k "$KEY" --image notexec.img
sim dev-x $EXIT_UNSUPPORTED "a non-executable payload is refused" --until-idle
has_re dev-x.log "not an ELF executable" "the message says why"
sim dev-1 $EXIT_SIM_UNFINISHED "an unreachable goal ends with its own code" --until-version 9.9.9 --timeout 3
run 3 "a device never provisioned cannot boot" sim device --flash blank.img --layout sim-device --max-boots 1
has_re err "no bootloader record" "the message says what is missing"

# a sanitizer build of the firmware reports into the device logs: none may have anything to say
if grep -lE "runtime error|AddressSanitizer|LeakSanitizer" ./*.log server.err >sanitizer.txt 2>/dev/null; then
    not_ok "sanitizer reports in: $(tr '\n' ' ' <sanitizer.txt)"
    grep -hE -A5 "runtime error|Sanitizer" ./*.log | head -30
else
    ok "no sanitizer report in any device log"
fi

finish "sim device"
