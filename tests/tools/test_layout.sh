#!/usr/bin/env bash
# End-to-end tests of `airlock layout check|show|list`: built-ins by name and as
# files, good and bad layouts (kept in tests/tools/layouts/ or written here),
# exact exit codes, file:line:column in messages, --json, --strict, -q, usage.
# Usage: test_layout.sh AIRLOCK_BINARY LAYOUTS_DIR TEST_LAYOUTS_DIR   (needs bash, cmp, grep)
set -u

AIRLOCK=${1:?usage: test_layout.sh AIRLOCK_BINARY LAYOUTS_DIR TEST_LAYOUTS_DIR}
LAYOUTS=${2:?usage: test_layout.sh AIRLOCK_BINARY LAYOUTS_DIR TEST_LAYOUTS_DIR}
TLAYOUTS=${3:?usage: test_layout.sh AIRLOCK_BINARY LAYOUTS_DIR TEST_LAYOUTS_DIR}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
case $LAYOUTS in /*) ;; *) LAYOUTS=$PWD/$LAYOUTS ;; esac
case $TLAYOUTS in /*) ;; *) TLAYOUTS=$PWD/$TLAYOUTS ;; esac

# Exit codes (tools/exitcodes.h).
EXIT_USAGE=2 EXIT_IO=3 EXIT_LAYOUT=12

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-layout-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
hasnot() {
    if grep -qF -- "$2" "$1"; then
        not_ok "$3: '$2' in $1"
    else ok "$3"; fi
}
empty() { if [ ! -s "$1" ]; then ok "$2"; else not_ok "$2: $1 not empty"; fi; }
# json_ok FILE DESC: FILE is valid JSON (when python3 is there to say so).
json_ok() {
    if ! command -v python3 >/dev/null; then
        ok "$2 (not checked: no python3)"
    elif python3 -m json.tool "$1" >/dev/null 2>&1; then
        ok "$2"
    else
        not_ok "$2: invalid JSON"
    fi
}

# ---- list and show ----------------------------------------------------------

run 0 "layout list" layout list
cp out list.out
for f in "$LAYOUTS"/*.layout; do
    name=$(basename "$f" .layout)
    has list.out "$name " "list names $name"
    run 0 "layout show $name" layout show "$name"
    if cmp -s out "$f"; then ok "show $name prints layouts/$name.layout exactly"; else
        not_ok "show $name differs from layouts/$name.layout"
    fi
done
has out "# " "show keeps comments"
run 0 "layout list --json" layout list --json
json_ok out "list --json is JSON"
has out '"name": "nrf52840"' "list --json names nrf52840"
has out '"description": "nRF52840-like' "list --json has descriptions"
run $EXIT_USAGE "show an unknown name" layout show nrf99
has err "airlock layout: error: show: no built-in layout 'nrf99'" "show names the missing built-in"
run $EXIT_USAGE "show without a name" layout show

# ---- check: the built-ins, by name and as files -----------------------------

for f in "$LAYOUTS"/*.layout; do
    name=$(basename "$f" .layout)
    run 0 "check built-in $name --strict" layout check --strict "$name"
    has out "builtin:$name: valid layout" "check $name names the built-in"
    has out "no warnings" "$name has no warnings"
    run 0 "check file layouts/$name.layout" layout check "$f"
    has out "$f: valid layout" "check names the file"
done

run 0 "check nrf52840" layout check nrf52840
has out "flash internal: 1 MiB (0x100000), write 4, erased 0xff" "flash line"
has out "sectors: 256 x 4 KiB" "sector map"
has out "primary     internal   0x00c000   0x082000   0x076000 (472 KiB)" "primary row"
has out "118 x 4 KiB" "primary sector count"
has out "(free)      internal   0x0fb000   0x100000" "free gap at the end"
has out "sign images with: -S 0x76000 --align 4" "sign options"
hasnot out " -M " "no -M for 118 sectors"

run 0 "check stm32f4" layout check stm32f4
has out "sectors: 4 x 16 KiB + 1 x 64 KiB + 7 x 128 KiB" "mixed sector map"
has out "mapped at 0x08000000" "base address"
has out "3 x 128 KiB (0x08020000)" "primary sectors and address"
has out "(free)      internal   0x010000   0x020000   0x010000 (64 KiB)" "the 64 KiB sector is free"

run 0 "check esp32" layout check esp32
has out "0x140000 (1.25 MiB)" "1.25 MiB slots"
has out "-S 0x140000 --align 4 -M 320" "esp32 needs -M 320"

run 0 "check nrf52840-qspi" layout check nrf52840-qspi
has out "flash qspi: 8 MiB" "second flash"
has out "secondary   qspi" "secondary on qspi"

run 0 "check sim-device" layout check sim-device
has out "settings    sim        0x010000   0x020000   0x010000 (64 KiB)      2 x 32 KiB" "the settings area is listed, not free"
run 0 "check --json sim-device" layout check --json sim-device
has out '"name": "settings"' "json lists the settings area"

run 0 "check --json nrf52840" layout check --json nrf52840
json_ok out "check --json is JSON"
has out '"ok": true' "json ok"
has out '"source": "builtin:nrf52840"' "json source"
has out '"name": "secondary"' "json areas"
has out '"offset": 532480' "json secondary offset"
has out '"sector_count": 118' "json sector count"
has out '"warnings": []' "json no warnings"

run 0 "check -q" layout check -q esp32
empty out "-q prints nothing"
empty err "-q prints no warnings when there are none"

# ---- check: warnings --------------------------------------------------------

W=$TLAYOUTS/warn-two-flashes.layout
run 0 "check a layout with warnings" layout check "$W"
has out "3 warnings:" "warning count"
has out "$W:10: warning: the slots' sectors do not line up" "SECTORS_DIFFER with line"
has out "[SCRATCH_SMALL]" "SCRATCH_SMALL"
has out "[STATUS_ONE_SECTOR]" "STATUS_ONE_SECTOR"
run $EXIT_LAYOUT "--strict fails on warnings" layout check --strict "$W"
has err "3 warnings and --strict" "--strict says why"
run $EXIT_LAYOUT "--strict --json" layout check --strict --json "$W"
has out '"ok": false' "json ok false under --strict"
has out '"code": "SECTORS_DIFFER"' "json warning code"
run 0 "-q with warnings" layout check -q "$W"
empty out "-q: nothing on stdout"
has err "airlock layout: warning: $W:7: scratch (16 KiB) is smaller" "-q: warnings on stderr"

# No scratch: say which engine is ruled out.
cat >noscratch.layout <<'EOF'
flash internal size=1M sectors=256x4K write=4
primary internal 0xC000 472K
secondary internal 0x82000 472K
EOF
run 0 "no scratch is a warning" layout check noscratch.layout
has out "noscratch.layout: warning: no scratch area: the swap-scratch engine cannot be used" \
    "NO_SCRATCH message"

# ---- check: errors ----------------------------------------------------------

run $EXIT_LAYOUT "misaligned secondary" layout check "$TLAYOUTS/bad-misaligned.layout"
has err "airlock layout: error: $TLAYOUTS/bad-misaligned.layout:7:26: secondary: offset 0x82100 is not on a sector boundary of flash 'internal' (sectors there start at 0x82000 and 0x83000)" \
    "misaligned: file:line:col and both neighbours"
empty out "no summary on error"

run $EXIT_LAYOUT "overlapping scratch" layout check "$TLAYOUTS/bad-overlap.layout"
has err "bad-overlap.layout:8:23: scratch (0x280000..0x2c0000) overlaps secondary (0x160000..0x2a0000, line 7) on flash 'spi'" \
    "overlap names both areas"

run $EXIT_LAYOUT "--json error" layout check --json "$TLAYOUTS/bad-overlap.layout"
json_ok out "error JSON is JSON"
has out '"ok": false' "json error ok false"
has out '"code": "OVERLAP"' "json error code"
has out '"line": 8' "json error line"
has out '"column": 23' "json error column"
has out '"exit": 12' "json error exit"
empty err "json mode: nothing on stderr"

# bad CASE LINE:COL WORDS TEXT: TEXT (a layout) fails check with exit 12 at LINE:COL.
bad() {
    local name=$1 where=$2 words=$3
    printf '%s' "$4" >"$name.layout"
    run $EXIT_LAYOUT "bad: $name" layout check "$name.layout"
    if [ -n "$where" ]; then has err "$name.layout:$where: " "bad: $name at $where"; fi
    if [ -n "$words" ]; then has err "$words" "bad: $name says '$words'"; fi
}
F='flash internal size=1M sectors=256x4K write=4
'
bad keyword 2:1 "unknown keyword 'slot0' (did you mean 'primary'?" "${F}slot0 internal 0 4K
"
bad attribute 1:47 "unknown attribute 'wirte'" "flash internal size=1M sectors=256x4K write=4 wirte=4
"
bad duplicate 3:1 "primary defined again (first on line 2)" "${F}primary internal 0xC000 4K
primary internal 0xD000 4K
"
bad unknown-flash 2:9 "unknown flash 'qspi' (declared so far: internal)" "${F}primary qspi 0 4K
"
bad number 2:25 "primary: size: expected a number" "${F}primary internal 0xC000 47ZK
"
bad write 1:39 "write=3 is not a valid write size" "flash internal size=1M sectors=256x4K write=3
"
bad write-big 1:39 "write=64" "flash internal size=1M sectors=256x4K write=64
"
bad runs 1:16 "size=0x100000 (1 MiB) but its sectors add up to 0xe0000 (896 KiB)" \
    "flash internal size=1M sectors=4x16K,1x64K,6x128K write=1
"
bad outside 2:26 "past the end of flash 'internal'" "${F}primary internal 0xF0000 472K
"
bad end-misaligned 3:28 "size 0x75000 or 0x76000 would end on a boundary" "${F}primary internal 0xC000 472K
secondary internal 0x82000 0x75800
"
bad missing "" "" "${F}primary internal 0xC000 472K
"
has err "missing.layout: no secondary area" "missing: whole-file error without a line"

# A file named like a built-in wins over the built-in.
printf 'flash x sectors=1x4K write=3\n' >stm32f4
run $EXIT_LAYOUT "a file shadows the built-in" layout check stm32f4
has err "stm32f4:1:" "error names the file, not the built-in"
rm -f stm32f4

run $EXIT_IO "missing file" layout check no-such.layout
has err "no-such.layout: no such file, and no built-in layout of that name (built-ins: esp32, nrf52840" \
    "missing file lists the built-ins"
mkdir adir
run $EXIT_IO "a directory" layout check adir
has err "cannot read layout file" "directory: read error"
run $EXIT_IO "--json missing file" layout check --json no-such.layout
has out '"code": "NOT_FOUND"' "json NOT_FOUND"

# ---- usage ------------------------------------------------------------------

run $EXIT_USAGE "no action" layout
run $EXIT_USAGE "unknown action" layout frob
has err "unknown action 'frob'" "unknown action named"
run $EXIT_USAGE "check without a file" layout check
run $EXIT_USAGE "check with two files" layout check nrf52840 esp32
run $EXIT_USAGE "unknown option" layout check --frob nrf52840
has err "unknown option '--frob'" "unknown option named"
run $EXIT_USAGE "list with an argument" layout list extra
for args in "layout --help" "layout check --help" "layout show --help" "layout list --help" \
    "help layout"; do
    # shellcheck disable=SC2086
    run 0 "$args" $args
    has out "usage: airlock layout" "$args prints usage"
done
run 0 "airlock --help lists layout" --help
has out "layout" "airlock --help names the layout command"

echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
