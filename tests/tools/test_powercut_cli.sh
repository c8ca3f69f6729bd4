#!/usr/bin/env bash
# End-to-end test of `airlock powercut`: signs two images with the real CLI,
# proves them on the built-in nrf52840 layout with the overwrite and swap-2n
# engines (table, --json, exit 0), then checks every bad-input exit code and
# that broken setups are caught. Small images keep it to a few seconds.
# Usage: test_powercut_cli.sh AIRLOCK_BINARY   (needs bash, grep, awk; python3 optional)
set -u

AIRLOCK=${1:?usage: test_powercut_cli.sh AIRLOCK_BINARY}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac

# Exit codes (tools/exitcodes.h).
EXIT_USAGE=2 EXIT_IO=3 EXIT_UNTRUSTED=8 EXIT_SIGNATURE=7 EXIT_TOO_BIG=10 EXIT_LAYOUT=12
EXIT_POWERCUT=13

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-powercut-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
empty() { if [ ! -s "$1" ]; then ok "$2"; else not_ok "$2: $1 not empty" && head -3 "$1"; fi; }
json_ok() {
    if ! command -v python3 >/dev/null; then
        ok "$2 (not checked: no python3)"
    elif python3 -m json.tool "$1" >/dev/null 2>&1; then
        ok "$2"
    else
        not_ok "$2: invalid JSON"
    fi
}
# table_ok DESC: every row of the table in `out` has passed == cut runs > 0 and failed 0.
table_ok() {
    local bad
    bad=$(awk '/^scenario/ { t = 1; next } t && NF == 0 { t = 0 }
               t { n = NF; if ($(n-3) != $(n-2) || $(n-3) + 0 == 0 || $(n-1) != 0) print }' out)
    if [ -z "$bad" ] && grep -q '^scenario' out; then ok "$1"; else
        not_ok "$1: rows not all passed: $bad"
    fi
}

# ---- images -------------------------------------------------------------------
# nrf52840 built-in: 472 KiB slots (0x76000), 4-byte writes.
SLOT=0x76000
run 0 "keygen ed25519" keygen -t ed25519 -k key.pem -q
run 0 "keygen another ed25519" keygen -t ed25519 -k other.pem -q
run 0 "getpub pem" getpub -k key.pem --lang pem -o pub.pem
# Deterministic payloads, 20 KiB each, different for old and new.
yes "airlock power-cut test, old firmware" | head -c 20480 >old.payload
yes "airlock power-cut test, new firmware" | head -c 20480 >new.payload
head -c 500000 /dev/zero | tr '\0' 'x' >big.payload
sign() { run 0 "sign $*" sign -H 0x200 --pad-header --align 4 -S "$SLOT" "$@"; }
sign -v 1.0.0 -k key.pem old.payload old.bin
sign -v 1.1.0 -k key.pem new.payload new.bin
sign -v 1.0.0 -k other.pem old.payload old-other.bin
sign -v 1.1.0 new.payload new-unsigned.bin
sign -v 1.0.0 old.payload old-unsigned.bin
sign -v 1.1.0 -k key.pem --non-bootable new.payload new-nonboot.bin
SLOT=0x80000 sign -v 1.2.0 -k key.pem big.payload big.bin
# ram-load: images linked for RAM (the harness simulates RAM at 0x20000000)
sign -v 1.0.0 -k key.pem -L 0x20000000 old.payload old-ram.bin
sign -v 1.1.0 -k key.pem -L 0x20000000 new.payload new-ram.bin

PC=(powercut --layout nrf52840 --old old.bin --new new.bin --key pub.pem)

# ---- the proof on nrf52840 ----------------------------------------------------------
run 0 "overwrite on nrf52840" "${PC[@]}" --engine overwrite
cat out
table_ok "overwrite: every row passed"
has out "permanent, every cut" "overwrite: permanent scenario"
has out "test+confirm, every cut" "overwrite: test+confirm scenario"
has out "test, no confirm, every cut" "overwrite: no-confirm scenario"
has out "engine overwrite (cannot revert)" "overwrite says it cannot revert"
has out "seed 1" "the seed is printed"
has out "all " "summary line"
empty err "no progress on stderr when it is not a terminal"

run 0 "swap-2n on nrf52840 with 1000 random multi-cut runs" "${PC[@]}" --engine swap-2n --random 1000
cat out
table_ok "swap-2n: every row passed"
has out "1-3 random cuts" "swap-2n: random rows"
has out "staged at secondary + " "swap-2n: staging offset shown"

run 0 "swap-2n, --confirm only, 3 trials, 4 cuts" "${PC[@]}" --engine swap-2n --confirm --trials 3 \
    --random 50 --max-cuts 4 --seed 99
table_ok "swap-2n --confirm: every row passed"
has out "1-4 random cuts" "--max-cuts shows in the table"
if grep -q "permanent" out; then not_ok "--confirm alone runs only that scenario"; else
    ok "--confirm alone runs only that scenario"
fi

run 0 "--json" "${PC[@]}" --engine swap-2n --permanent --random 20 --json
json_ok out "--json is JSON"
has out '"ok": true' "--json ok"
has out '"engine": "swap-2n"' "--json engine"
has out '"scenario": "permanent"' "--json scenario"
has out '"uncut_ops":' "--json uncut ops"
has out '"failed": 0' "--json failed count"

# The slot-selecting engines: nothing is copied, the newer valid slot boots.
run 0 "direct-xip on nrf52840" "${PC[@]}" --engine direct-xip --random 50
table_ok "direct-xip: every row passed"
run $EXIT_USAGE "ram-load with images not linked for RAM" "${PC[@]}" --engine ram-load
has err "-L 0x20000000" "says how to sign for ram-load"
run 0 "ram-load with RAM images" powercut --layout nrf52840 --engine ram-load \
    --old old-ram.bin --new new-ram.bin --key pub.pem --random 50
table_ok "ram-load: every row passed"

run 0 "--allow-unsigned with hash-only images" powercut --layout nrf52840 --engine overwrite \
    --old old-unsigned.bin --new new-unsigned.bin --allow-unsigned --permanent
table_ok "--allow-unsigned: every row passed"

run 0 "--engine list" powercut --engine list
has out "overwrite" "engine list names overwrite"
has out "swap-2n" "engine list names swap-2n"
run 0 "--help" powercut --help
has out "--max-cuts" "help lists options"

# ---- bad input -------------------------------------------------------------------
run $EXIT_IO "missing old image" powercut --layout nrf52840 --engine overwrite --old nope.bin \
    --new new.bin --key pub.pem
has err "nope.bin" "names the missing file"
run $EXIT_IO "unknown layout name" powercut --layout no-such-board --engine overwrite \
    --old old.bin --new new.bin --key pub.pem
printf 'flash internal size=1M sectors=256x4K write=3 erased=0xff\n' >bad.layout
run $EXIT_LAYOUT "invalid layout" powercut --layout bad.layout --engine overwrite \
    --old old.bin --new new.bin --key pub.pem
has err "bad.layout:1:" "names file:line"
"$AIRLOCK" layout show nrf52840 | grep -v '^status' >nostatus.layout
run $EXIT_LAYOUT "swap-2n without a status area" powercut --layout nostatus.layout \
    --engine swap-2n --old old.bin --new new.bin --key pub.pem
has err "swap-2n cannot run on layout" "says the engine cannot run on the layout"
run $EXIT_USAGE "unknown engine" "${PC[@]}" --engine bogus
has err "engines: overwrite, swap-2n" "lists the engines"
run $EXIT_USAGE "unknown engine, --json" "${PC[@]}" --engine bogus --json
json_ok out "--json error is JSON"
has out '"ok": false' "--json error: ok false"
run $EXIT_USAGE "missing --engine" powercut --layout nrf52840 --old old.bin --new new.bin \
    --key pub.pem
run $EXIT_USAGE "neither --key nor --allow-unsigned" powercut --layout nrf52840 \
    --engine overwrite --old old.bin --new new.bin
run $EXIT_USAGE "--max-cuts 0" "${PC[@]}" --engine overwrite --max-cuts 0
run $EXIT_USAGE "--trials 9" "${PC[@]}" --engine overwrite --trials 9
run $EXIT_USAGE "bad option" "${PC[@]}" --engine overwrite --frobnicate
run $EXIT_TOO_BIG "image too big for the slot" powercut --layout nrf52840 --engine swap-2n \
    --old old.bin --new big.bin --key pub.pem
has err "at most 477616 bytes" "gives the room the engine leaves"
has err "is 50" "gives the image size"
run $EXIT_USAGE "old and new the same" powercut --layout nrf52840 --engine overwrite \
    --old old.bin --new old.bin --key pub.pem
run $EXIT_UNTRUSTED "downgrade" powercut --layout nrf52840 --engine overwrite \
    --old new.bin --new old.bin --key pub.pem
has err "refuses downgrades" "explains the downgrade"

# ---- broken setups are caught -----------------------------------------------------------
run $EXIT_UNTRUSTED "old image signed by another key" powercut --layout nrf52840 \
    --engine swap-2n --old old-other.bin --new new.bin --key pub.pem
has err "old image old-other.bin does not verify" "names the image that does not verify"
has err "KEYHASH" "says why (KEYHASH)"
run $EXIT_SIGNATURE "unsigned update with --key" powercut --layout nrf52840 --engine swap-2n \
    --old old.bin --new new-unsigned.bin --key pub.pem
run $EXIT_POWERCUT "update the bootloader will not install" powercut --layout nrf52840 \
    --engine swap-2n --old old.bin --new new-nonboot.bin --key pub.pem --permanent
has out "FAILED" "the table says FAILED"
has out "does not work even without a power cut" "says the update fails without a cut"
has out "NOT_BOOTABLE" "says why"
has err "broke the device" "error line on stderr"

echo
echo "powercut cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
