#!/usr/bin/env bash
# Freestanding check of a Cortex-M cross build (scripts/cross-check.sh makes
# one): fails if core/ or the device link needs the C heap, stdio or exit, and
# reports code size and stack use. Reads the build; never modifies it except
# for the link-check ELF and map it writes into it.
#
# usage: scripts/check-freestanding.sh BUILD_DIR
set -euo pipefail

B="${1:?usage: $0 BUILD_DIR}"
B="$(cd "$B" && pwd)"
HERE="$(cd "$(dirname "$0")" && pwd)"
X="${AIRLOCK_CROSS_PREFIX:-arm-none-eabi-}"
CPU=(-mcpu=cortex-m3 -mthumb -mfloat-abi=soft)

CORE_LIB="$B/libairlock_core_cm3.a"
CRYPTO_LIB="$B/libairlock_crypto_mbedtls_cm3.a"
MBED_LIB="$B/libmbedcrypto_cm3.a"
CORE_DIR="$B/CMakeFiles/airlock_core_cm3.dir"

# Symbols a device image must never need: the C heap, stdio, process exit,
# newlib's reentrancy struct (which drags stdio in) and assert's printer.
FORBIDDEN='^_*(malloc|calloc|realloc|free|printf|fprintf|sprintf|snprintf|vprintf|vfprintf|vsprintf|vsnprintf|iprintf|fiprintf|siprintf|sniprintf|puts|fputs|putchar|fputc|fopen|fclose|fwrite|fread|fflush|FILE|stdin|stdout|stderr|_impure_ptr|_global_impure_ptr|exit|_exit|abort|__assert_func|_sbrk|sbrk|_write|_read|_open|_close|_(malloc|calloc|realloc|free)_r)$'

fail=0
[ -f "$CORE_LIB" ] || { echo "check-freestanding: $CORE_LIB missing (build first)" >&2; exit 1; }
[ -f "$MBED_LIB" ] || MBED_LIB=""
[ -f "$CRYPTO_LIB" ] || CRYPTO_LIB=""

undefined_in() { # libs... -> symbols used but not defined by any of them
    comm -23 \
        <("${X}nm" -u "$@" 2>/dev/null | awk '$1 == "U" {print $2}' | sort -u) \
        <("${X}nm" --defined-only "$@" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u)
}

check_set() { # title libs...
    local title="$1" ext bad
    shift
    ext="$(undefined_in "$@")"
    bad="$(grep -E "$FORBIDDEN" <<<"$ext" || true)"
    echo "== $title: external symbols: $(tr '\n' ' ' <<<"${ext:-(none)}")"
    if [ -n "$bad" ]; then
        echo "FAIL: $title references forbidden symbols:"
        local s
        for s in $bad; do
            "${X}nm" -A -u "$@" 2>/dev/null | awk -v s="$s" '$NF == s {sub(/:$/, "", $1); print "   " s "  <- " $1}'
        done
        fail=1
    fi
}

echo "== Cortex-M3 freestanding check ($B)"
check_set "core (objects)" "$CORE_LIB"
if [ -n "$CRYPTO_LIB" ]; then
    check_set "core + crypto/mbedtls.c + mbedTLS" "$CORE_LIB" "$CRYPTO_LIB" ${MBED_LIB:+"$MBED_LIB"}
elif [ -n "$MBED_LIB" ]; then
    check_set "mbedTLS subset (crypto/mbedtls.c not built yet)" "$MBED_LIB"
fi

# Link check: an ELF whose roots are every global function of core (and of
# the crypto backend), garbage-collected, against newlib-nano with no OS stubs:
# anything needing the heap or stdio fails to link (no _sbrk/_write), and the
# size is what a bootloader would carry.
link_elf() { # name libs...
    local name="$1" elf map roots=() s entry out
    shift
    elf="$B/$name.elf"
    map="$B/$name.map"
    while read -r s; do roots+=("-Wl,--undefined=$s"); done < <(
        for lib in "$@"; do
            case "$lib" in *mbedcrypto*) continue ;; esac
            "${X}nm" -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[TDRB]$/ {print $3}'
        done | sort -u)
    entry="${roots[0]#-Wl,--undefined=}"
    if ! out="$("${X}gcc" "${CPU[@]}" -nostartfiles --specs=nano.specs -Wl,--gc-sections \
        -Wl,--entry="$entry" "${roots[@]}" -Wl,-Map="$map" -o "$elf" \
        -Wl,--start-group "$@" -Wl,--end-group 2>&1)"; then
        echo "FAIL: link of $name needs more than a freestanding runtime provides; undefined:"
        grep -o "undefined reference to \`[^']*'" <<<"$out" | sort -u | sed 's/^/   /' || true
        grep -v "undefined reference" <<<"$out" | grep -E "error|multiple definition" |
            awk 'NR <= 10 {print "   " $0}' || true
        fail=1
        return
    fi
    local bad
    bad="$("${X}nm" "$elf" | awk '{print $NF}' | grep -E "$FORBIDDEN" || true)"
    if [ -n "$bad" ]; then
        echo "FAIL: $name.elf contains forbidden symbols: $(tr '\n' ' ' <<<"$bad")"
        fail=1
    fi
    # Library members (newlib, libgcc) the link pulled in, and why.
    local pulled
    pulled="$(awk '/^Archive member included/ {on=1; next} /^(Discarded|Memory Configuration|Allocating common)/ {on=0}
        on && /^\/.*\((.*)\)$/ && /lib(c_nano|g_nano|gcc|c|m)\.a/ {sub(/.*\//, ""); m=$0; getline; sub(/.*\(/, "", $0); sub(/\)$/, "", $0); print "   " m " for " $0}' "$map" | sort -u)"
    echo "== $name.elf: linked from ${#roots[@]} public symbols; runtime members pulled in:"
    echo "${pulled:-   (none)}"
}

link_elf airlock_core_cm3 "$CORE_LIB"
DDI_LIB="$B/libairlock_ddi_cm3.a" # agent/ddi.c + ddi_boot.c: the DDI client (uses core)
if [ -f "$DDI_LIB" ]; then
    check_set "agent/ddi.c, agent/ddi_boot.c (objects)" "$DDI_LIB"
    link_elf airlock_ddi_cm3 "$DDI_LIB" "$CORE_LIB"
    "${X}size" "$DDI_LIB" | sed 's/^/   /'
fi
if [ -n "$CRYPTO_LIB" ]; then
    link_elf airlock_device_cm3 "$CORE_LIB" "$CRYPTO_LIB" ${MBED_LIB:+"$MBED_LIB"}
fi

echo "== code size (arm-none-eabi-size, -Os, Cortex-M3)"
"${X}size" -t "$CORE_LIB" | sed 's/^/   /'
for e in "$B"/airlock_core_cm3.elf "$B"/airlock_device_cm3.elf; do
    [ -f "$e" ] && "${X}size" "$e" | sed 1d | sed 's/^/   /'
done
[ -n "$CRYPTO_LIB" ] && "${X}size" -t "$CRYPTO_LIB" | tail -1 | sed 's/(TOTALS)/crypto\/mbedtls.c (all, before gc)/; s/^/   /'
[ -n "$MBED_LIB" ] && "${X}size" -t "$MBED_LIB" | tail -1 | sed 's/(TOTALS)/mbedTLS subset (all, before gc)/; s/^/   /'

echo "== stack use per function, core (-fstack-usage, bytes; largest first)"
su_files=()
while IFS= read -r -d '' f; do su_files+=("$f"); done < <(find "$CORE_DIR" -name '*.su' -print0)
if [ "${#su_files[@]}" -gt 0 ]; then
    cat "${su_files[@]}" | awk -F'\t' '{n=split($1, p, ":"); printf "   %6d  %-8s %s (%s)\n", $2, $3, p[n], p[n-3] ":" p[n-2]}' |
        sed "s#$(dirname "$HERE")/##" | sort -rn | awk 'NR <= 15'
    dyn="$(cat "${su_files[@]}" | awk -F'\t' '$3 != "static"' || true)"
    if [ -n "$dyn" ]; then
        echo "FAIL: core has functions with dynamic stack frames (VLA/alloca):"
        sed 's/^/   /' <<<"$dyn"
        fail=1
    fi
    max="$(cat "${su_files[@]}" | awk -F'\t' '$2 > m {m = $2; f = $1} END {n = split(f, p, ":"); print m " bytes in " p[n]}')"
    echo "   max single frame in core: $max"
fi

if command -v python3 >/dev/null 2>&1; then
    echo "== worst-case stack depth of core entry points (call graph; indirect calls such as"
    echo "   the crypto port count 0 — add the backend's figure below)"
    core_report="$(python3 "$HERE/stack-report.py" --roots-from "$CORE_DIR" "$B/CMakeFiles")"
    echo "$core_report"
    if [ -n "$CRYPTO_LIB" ]; then
        echo "== worst-case stack depth of crypto/mbedtls.c functions (incl. mbedTLS; the port's"
        echo "   ops are static functions reached through airlock_crypto_mbedtls)"
        crypto_report="$(python3 "$HERE/stack-report.py" --static \
            --roots-from "$B/CMakeFiles/airlock_crypto_mbedtls_cm3.dir" "$B/CMakeFiles")"
        echo "$crypto_report"
        # Row 2 of each table is its deepest entry: "total own name ...".
        read -r c_tot _ c_fn _ <<<"$(sed -n 2p <<<"$core_report")"
        read -r k_tot _ k_fn _ <<<"$(sed -n 2p <<<"$crypto_report")"
        echo "== stack budget, upper bound: $c_fn $c_tot + crypto $k_fn $k_tot = $((c_tot + k_tot)) bytes"
        echo "   (plus the flash port's callbacks and interrupt frames)"
    fi
fi

if [ "$fail" -ne 0 ]; then
    echo "check-freestanding: FAILED"
    exit 1
fi
echo "check-freestanding: OK (no heap, stdio or exit in device code)"
