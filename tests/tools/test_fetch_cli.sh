#!/usr/bin/env bash
# End-to-end test of `airlock fetch`: downloads signed images from the test
# HTTPS server (airlock-testd) into a nrf52840 flash file and checks the slot
# byte for byte, resume after kill -9 and SIGTERM, and every exit code a
# script relies on. Never touches anything outside its mktemp directory;
# the servers it starts are stopped on exit. About ten seconds.
# Usage: test_fetch_cli.sh AIRLOCK_BINARY AIRLOCK_TESTD_BINARY   (needs bash, python3)
set -u

AIRLOCK=${1:?usage: test_fetch_cli.sh AIRLOCK_BINARY AIRLOCK_TESTD_BINARY}
TESTD=${2:?usage: test_fetch_cli.sh AIRLOCK_BINARY AIRLOCK_TESTD_BINARY}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
case $TESTD in /*) ;; *) TESTD=$PWD/$TESTD ;; esac
command -v python3 >/dev/null || { echo "test_fetch_cli.sh needs python3"; exit 1; }

# Exit codes (tools/exitcodes.h).
EXIT_USAGE=2 EXIT_IO=3 EXIT_HASH=6 EXIT_UNTRUSTED=8 EXIT_LAYOUT=12 EXIT_NETWORK=14 EXIT_TLS=15
EXIT_HTTP=16 EXIT_CANCELLED=17

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-fetch-test.XXXXXX")
SERVERS=()
cleanup() {
    local pid
    for pid in "${SERVERS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [ -n "${FETCH_PID:-}" ] && kill -KILL "$FETCH_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$WORK" || exit 1

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

# start_server DIR ARGS...: airlock-testd on DIR (its ca.pem, port); sets PORT.
start_server() {
    local dir=$1 i
    shift
    mkdir -p "$dir"
    "$TESTD" --dir "$dir" "$@" >"$dir/stdout" 2>"$dir/stderr" &
    SERVERS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -s "$dir/port" ] && break
        sleep 0.05
    done
    PORT=$(cat "$dir/port" 2>/dev/null)
    if [ -z "$PORT" ]; then
        echo "FAIL - airlock-testd did not start in $dir"
        cat "$dir/stderr"
        exit 1
    fi
}

# ---- the layout, the keys, the images ----------------------------------------------
KEYS=$WORK/keys
mkdir -p "$KEYS"
run 0 "keygen ecdsa-p256" keygen -t ecdsa-p256 -k "$KEYS/key.pem" -q
run 0 "keygen another key" keygen -t ecdsa-p256 -k "$KEYS/other.pem" -q
run 0 "getpub pem" getpub -k "$KEYS/key.pem" --lang pem -o "$KEYS/pub.pem"
PUB=$KEYS/pub.pem

# Where the secondary slot sits in the device's flash, from the layout itself.
run 0 "layout check --json nrf52840" layout check --json nrf52840
read -r FLASH_SIZE SEC_OFF SEC_SIZE PRI_OFF < <(python3 -c 'import json,sys
j = json.load(open("out"))
a = {x["name"]: x for x in j["areas"]}
print(j["flash"][0]["size"], a["secondary"]["offset"], a["secondary"]["size"], a["primary"]["offset"])')
check "$SEC_SIZE" 483328 "nrf52840 secondary is 472 KiB at $SEC_OFF"

# slot_is FLASH IMAGE DESC: the secondary slot of FLASH starts with IMAGE's bytes.
slot_is() {
    local n
    n=$(stat -c %s "$2")
    if cmp -s <(tail -c +$((SEC_OFF + 1)) "$1" | head -c "$n") "$2"; then ok "$3"; else
        not_ok "$3: secondary slot of $1 differs from $2"
    fi
}

sign() { run 0 "sign $*" sign -H 0x200 --pad-header --align 4 -S "$SEC_SIZE" "$@"; }
# A 400 KiB payload that cannot be mistaken for erased flash anywhere.
python3 -c 'import random,sys; random.seed(7); sys.stdout.buffer.write(random.randbytes(409600))' \
    >fw.bin
sign -v 1.2.0 -k "$KEYS/key.pem" fw.bin img.bin
sign -v 1.2.0 -k "$KEYS/other.pem" fw.bin other.bin
sign -v 1.1.0 -k "$KEYS/key.pem" fw.bin old.bin
sign -v 2.0.0 -k "$KEYS/key.pem" fw.bin new.bin
IMG_LEN=$(stat -c %s img.bin)
# One payload byte flipped: the header and TLVs parse, the hash does not match.
cp img.bin bad.bin
python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(0x200 + 1000); b = f.read(1); f.seek(0x200 + 1000)
f.write(bytes([b[0] ^ 0x01]))' bad.bin
if cmp -s img.bin bad.bin; then not_ok "corrupted copy differs"; else ok "corrupted copy differs"; fi

# One server per artifact, each with its own CA: A fast, S throttled for the kill tests.
start_server srv-a --file img.bin
PA=$PORT URL=https://localhost:$PORT/artifact.bin
start_server srv-s --file img.bin --rate 200000
URL_SLOW=https://localhost:$PORT/artifact.bin
start_server srv-bad --file bad.bin
URL_BAD=https://localhost:$PORT/artifact.bin
start_server srv-other --file other.bin
URL_OTHER=https://localhost:$PORT/artifact.bin
start_server srv-old --file old.bin
URL_OLD=https://localhost:$PORT/artifact.bin

# ---- a plain fetch ---------------------------------------------------------------
F=(--layout nrf52840 -k "$PUB")
run 0 "plain fetch" fetch "$URL" --flash dev.img "${F[@]}" --ca srv-a/ca.pem
check "$(stat -c %s dev.img)" "$FLASH_SIZE" "a new flash file is the layout's flash size"
slot_is dev.img img.bin "the secondary slot holds the image"
has_re err '^airlock fetch: +[0-9]+%  [0-9]+/[0-9]+ bytes$' "progress lines with a percentage (stderr not a tty)"
has_re err "100%  $IMG_LEN/$IMG_LEN bytes" "progress reaches 100%"

rm -f dev.img
run 0 "fetch --json" fetch "$URL" --flash dev.img "${F[@]}" --ca srv-a/ca.pem --json
check "$(jget out ok)" true "--json: ok is true"
check "$(jget out image_len)" "$IMG_LEN" "--json: image_len is the image's size"
check "$(jget out resumed_from)" 0 "--json: a fresh flash starts at byte 0"
check "$(jget out request)" none "--json: no install requested"
slot_is dev.img img.bin "--json: the slot holds the image"

rm -f dev.img
run 0 "fetch -q" fetch "$URL" --flash dev.img "${F[@]}" --ca srv-a/ca.pem -q
if [ -s err ]; then not_ok "-q: nothing on stderr"; else ok "-q: nothing on stderr"; fi

# ---- resume after kill -9 and after SIGTERM ---------------------------------------------
# wait_progress FLASH: until the slot holds the image's bytes at 150000 (a
# resume point has been recorded by then; 200000 B/s leaves about a second of
# work). The bytes are compared with the image's own, not with erased flash: a
# flash file being created reads as zeros until it has been erased.
wait_progress() {
    local i at=150000
    for ((i = 0; i < 500; i++)); do
        if [ -s "$1" ] && cmp -s <(tail -c +$((SEC_OFF + at + 1)) "$1" | head -c 64) \
            <(tail -c +$((at + 1)) img.bin | head -c 64); then
            return 0
        fi
        kill -0 "$FETCH_PID" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}
SLOW=(fetch "$URL_SLOW" --flash kill.img "${F[@]}" --ca srv-s/ca.pem --json)
"$AIRLOCK" "${SLOW[@]}" >out 2>err &
FETCH_PID=$!
if wait_progress kill.img; then ok "kill -9: download under way"; else not_ok "kill -9: no progress"; fi
kill -KILL "$FETCH_PID" 2>/dev/null
wait "$FETCH_PID" 2>/dev/null
check "$?" 137 "kill -9: the fetch died mid-download"
FETCH_PID=
run 0 "kill -9: the same command again" "${SLOW[@]}"
check "$(jget out ok)" true "kill -9 rerun: ok"
RESUMED=$(jget out resumed_from)
if [ "$RESUMED" -gt 0 ] 2>/dev/null && [ "$RESUMED" -lt "$IMG_LEN" ]; then
    ok "kill -9 rerun resumed at byte $RESUMED"
else
    not_ok "kill -9 rerun: resumed_from $RESUMED, expected 0 < it < $IMG_LEN"
fi
check "$(jget out received)" $((IMG_LEN - RESUMED)) "kill -9 rerun: only the rest was downloaded"
has_re err "resuming at byte $RESUMED" "kill -9 rerun says where it resumes"
slot_is kill.img img.bin "kill -9: the slot holds the image, byte for byte"

run 0 "a finished download, fetched again with --pending" "${SLOW[@]}" --pending
check "$(jget out resumed_from)" "$IMG_LEN" "--pending rerun: resumed at the image's end"
check "$(jget out received)" 0 "--pending rerun: nothing downloaded again"
check "$(jget out request)" trial "--pending: requested as a trial"
check "$(jget out pending_version)" "1.2.0+0" "--pending: the pending version"
# The trailer of the slot now asks for a trial install (airlock dump reads it).
tail -c +$((SEC_OFF + 1)) kill.img | head -c "$SEC_SIZE" >slot.bin
run 0 "dump the secondary slot" dump slot.bin
has_re out "request: TEST" "the slot's trailer requests a trial install"
slot_is kill.img img.bin "--pending: the image is untouched"

"$AIRLOCK" fetch "$URL_SLOW" --flash term.img "${F[@]}" --ca srv-s/ca.pem >out 2>err &
FETCH_PID=$!
if wait_progress term.img; then ok "SIGTERM: download under way"; else not_ok "SIGTERM: no progress"; fi
kill -TERM "$FETCH_PID" 2>/dev/null
wait "$FETCH_PID"
check "$?" "$EXIT_CANCELLED" "SIGTERM: exit 17"
FETCH_PID=
has_re err "run the same command again to resume" "SIGTERM: says how to resume"
run 0 "SIGTERM: the same command again" fetch "$URL_SLOW" --flash term.img "${F[@]}" \
    --ca srv-s/ca.pem --json
RESUMED=$(jget out resumed_from)
if [ "$RESUMED" -gt 0 ] 2>/dev/null; then ok "SIGTERM rerun resumed at byte $RESUMED"; else
    not_ok "SIGTERM rerun: resumed_from $RESUMED, expected > 0"
fi
slot_is term.img img.bin "SIGTERM: the slot holds the image, byte for byte"

# ---- TLS ----------------------------------------------------------------------------
run $EXIT_TLS "a CA that did not sign the server's certificate" fetch "$URL" --flash tls.img \
    "${F[@]}" --ca srv-s/ca.pem
run $EXIT_TLS "wrong --ca-pin" fetch "$URL" --flash tls.img "${F[@]}" --ca srv-a/ca.pem \
    --ca-pin 0000000000000000000000000000000000000000000000000000000000000000
has_re err "pinned key" "wrong pin: says the pin did not match"
run $EXIT_TLS "another server's CA pin" fetch "$URL" --flash tls.img "${F[@]}" --ca srv-a/ca.pem \
    --ca-pin "$(cat srv-s/ca-spki.sha256)"
run 0 "the right --ca-pin" fetch "$URL" --flash pin.img "${F[@]}" --ca srv-a/ca.pem \
    --ca-pin "$(cat srv-a/ca-spki.sha256)"
slot_is pin.img img.bin "right pin: the slot holds the image"
run $EXIT_USAGE "a --ca-pin that is not 64 hex digits" fetch "$URL" --flash tls.img "${F[@]}" \
    --ca srv-a/ca.pem --ca-pin 1234

# ---- HTTP and network ---------------------------------------------------------------
run $EXIT_HTTP "404" fetch "https://localhost:$PA/no-such-artifact.bin" --flash net.img "${F[@]}" \
    --ca srv-a/ca.pem
has_re err "HTTP 404" "404: names the status"
run $EXIT_NETWORK "nothing listening, --attempts 2" fetch "https://localhost:1/artifact.bin" \
    --flash net.img "${F[@]}" --ca srv-a/ca.pem --attempts 2
has_re err "giving up after 2 failed requests" "network: gives up after 2 attempts"
run $EXIT_USAGE "http:// without --insecure-http" fetch "http://localhost:$PA/artifact.bin" \
    --flash net.img "${F[@]}"

# ---- images the device must refuse -----------------------------------------------------
run $EXIT_HASH "a corrupted payload byte" fetch "$URL_BAD" --flash bad.img "${F[@]}" \
    --ca srv-bad/ca.pem
run $EXIT_UNTRUSTED "an image signed by another key" fetch "$URL_OTHER" --flash other.img \
    "${F[@]}" --ca srv-other/ca.pem
# A device running 2.0.0 (written into its primary slot) refuses 1.1.0.
head -c "$FLASH_SIZE" /dev/zero | tr '\0' '\377' >down.img
dd if=new.bin of=down.img bs=4096 seek=$((PRI_OFF / 4096)) conv=notrunc status=none
run $EXIT_UNTRUSTED "a downgrade (1.1.0 over a running 2.0.0)" fetch "$URL_OLD" --flash down.img \
    "${F[@]}" --ca srv-old/ca.pem --json
check "$(jget out error)" DOWNGRADE "--json names the error DOWNGRADE"
check "$(jget out ok)" false "--json: ok is false"

# ---- usage and flash file errors ----------------------------------------------------------
head -c 1000 /dev/zero >small.img
run $EXIT_IO "a flash file of the wrong size" fetch "$URL" --flash small.img "${F[@]}" \
    --ca srv-a/ca.pem
check "$(stat -c %s small.img)" 1000 "the wrong-size flash file is left alone"
run $EXIT_IO "--json: the wrong-size flash file" fetch "$URL" --flash small.img "${F[@]}" \
    --ca srv-a/ca.pem --json
check "$(jget out ok)" false "--json before any download: ok is false"
check "$(jget out exit)" "$EXIT_IO" "--json before any download: the exit code"
has out "another layout" "--json before any download: the message"
run $EXIT_IO "an unknown layout name" fetch "$URL" --flash lay.img --layout no-such-board \
    -k "$PUB" --ca srv-a/ca.pem
printf 'flash internal size=1M sectors=256x4K write=3 erased=0xff\n' >bad.layout
run $EXIT_LAYOUT "an invalid layout file" fetch "$URL" --flash lay.img --layout bad.layout -k "$PUB" \
    --ca srv-a/ca.pem
run $EXIT_USAGE "no -k" fetch "$URL" --flash usage.img --layout nrf52840 --ca srv-a/ca.pem
run $EXIT_USAGE "no --flash" fetch "$URL" "${F[@]}" --ca srv-a/ca.pem
run $EXIT_USAGE "no URL" fetch --flash usage.img "${F[@]}"
run $EXIT_USAGE "--pending and --permanent" fetch "$URL" --flash usage.img "${F[@]}" --pending \
    --permanent
run $EXIT_USAGE "--attempts 0" fetch "$URL" --flash usage.img "${F[@]}" --attempts 0
run 0 "--help" fetch --help
has_re out "--ca-pin" "help lists --ca-pin"

echo
echo "fetch cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
