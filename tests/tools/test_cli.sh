#!/usr/bin/env bash
# End-to-end tests of the airlock CLI (keygen, getpub, sign) against the MCUboot
# imgtool vectors: every imgtool command in manifest.json is re-run with
# `airlock sign`; deterministic images (hash-only, Ed25519) must be byte-identical,
# the others identical in structure. Also every sign error path: exact exit code,
# no output file, no temporary left, an existing OUTFILE untouched.
# Usage: test_cli.sh AIRLOCK_BINARY VECTORS_DIR     (needs bash, od, cmp, openssl, cc)
set -u

AIRLOCK=${1:?usage: test_cli.sh AIRLOCK_BINARY VECTORS_DIR}
VEC=${2:?usage: test_cli.sh AIRLOCK_BINARY VECTORS_DIR}
case $AIRLOCK in /*) ;; *) AIRLOCK=$PWD/$AIRLOCK ;; esac
case $VEC in /*) ;; *) VEC=$PWD/$VEC ;; esac

# Exit codes (tools/exitcodes.h).
EXIT_USAGE=2 EXIT_IO=3 EXIT_KEY=4 EXIT_TOO_BIG=10

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-cli-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
not_ok() { fail=$((fail + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# Little-endian integers at a byte offset of a file.
u16() { od -An -v -t u2 --endian=little -j "$2" -N 2 "$1" | tr -d ' \n'; }
u32() { od -An -v -t u4 --endian=little -j "$2" -N 4 "$1" | tr -d ' \n'; }
hexat() { od -An -v -t x1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

# Bytes covered by the image hash: header + payload + protected TLV area.
hashed_len() { echo $(($(u16 "$1" 8) + $(u32 "$1" 12) + $(u16 "$1" 10))); }

# TLV layout of an image, e.g. "p50/4 10/32 1/32 22/72" ("p" = protected area).
tlv_layout() {
    local f=$1 off pos end tot t l out="" size
    size=$(wc -c <"$f")
    off=$(($(u16 "$f" 8) + $(u32 "$f" 12)))
    if [ "$(u16 "$f" "$off")" = $((0x6908)) ]; then
        tot=$(u16 "$f" $((off + 2)))
        pos=$((off + 4)) end=$((off + tot))
        while [ "$pos" -lt "$end" ] && [ "$pos" -lt "$size" ]; do
            t=$(u16 "$f" "$pos") l=$(u16 "$f" $((pos + 2)))
            out+="p$(printf %x "$t")/$l "
            pos=$((pos + 4 + l))
        done
        off=$end
    fi
    if [ "$(u16 "$f" "$off")" != $((0x6907)) ]; then
        echo "no-tlv-info-at-$off"
        return
    fi
    tot=$(u16 "$f" $((off + 2)))
    pos=$((off + 4)) end=$((off + tot))
    while [ "$pos" -lt "$end" ] && [ "$pos" -lt "$size" ]; do
        t=$(u16 "$f" "$pos") l=$(u16 "$f" $((pos + 2)))
        out+="$(printf %x "$t")/$l "
        pos=$((pos + 4 + l))
    done
    echo "${out% }"
}

# Value of the first unprotected TLV of type $2 (hex), empty if none.
tlv_value() {
    local f=$1 want=$2 off pos end t l
    off=$(hashed_len "$f")
    pos=$((off + 4)) end=$((off + $(u16 "$f" $((off + 2)))))
    while [ "$pos" -lt "$end" ]; do
        t=$(u16 "$f" "$pos") l=$(u16 "$f" $((pos + 2)))
        if [ "$t" = "$want" ]; then
            hexat "$f" $((pos + 4)) "$l"
            return
        fi
        pos=$((pos + 4 + l))
    done
}

# ECDSA DER signatures vary by a byte or two: mask their length.
mask_sig() { sed -E 's#(^| )22/[0-9]+#\122/*#'; }

# Run airlock, capturing stderr; sets rc and err.
run() {
    err=$("$AIRLOCK" "$@" 2>&1 >/dev/null)
    rc=$?
}

# expect_fail DESC CODE OUTFILE ARGS...: exits with CODE, says "error:", leaves no
# OUTFILE and no temporary file next to it.
expect_fail() {
    local desc=$1 code=$2 out=$3 dir
    shift 3
    dir=$(dirname "$out")
    rm -f "$out" # a leftover from an earlier case must not decide this one
    run "$@"
    if [ "$rc" -ne "$code" ]; then
        not_ok "$desc: exit $rc, expected $code ($err)"
    elif [ -e "$out" ]; then
        not_ok "$desc: left $out behind"
    elif [ -d "$dir" ] && ls -A "$dir" | grep -q "^\.$(basename "$out")\."; then
        not_ok "$desc: left a temporary file in $dir"
    elif ! printf '%s' "$err" | grep -q "^airlock [a-z]*: error: "; then
        not_ok "$desc: no 'airlock CMD: error:' message (got: $err)"
    else
        ok "$desc (exit $code: ${err#airlock * error: })"
    fi
}

echo "# airlock: $AIRLOCK"
echo "# vectors: $VEC"
[ -x "$AIRLOCK" ] || { echo "FAIL - $AIRLOCK is not executable"; exit 1; }
[ -f "$VEC/manifest.json" ] || { echo "FAIL - no manifest.json in $VEC"; exit 1; }

# Inputs copied into the work dir so the manifest's relative paths resolve.
cp "$VEC"/payload-*.bin "$VEC"/key-*.pem . || exit 1
chmod u+w ./*

# --- 1. every imgtool command of the manifest, run with airlock sign -----------
ncmd=0
while IFS= read -r cmd; do
    ncmd=$((ncmd + 1))
    read -ra words <<<"$cmd"
    vector=${words[${#words[@]} - 1]}
    ours="ours-$vector"
    args=("${words[@]:2:${#words[@]}-3}" "$ours")
    key=""
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[i]} in -k | --key) key=${args[i + 1]} ;; esac
    done
    run sign -q "${args[@]}"
    if [ "$rc" -ne 0 ]; then
        not_ok "$vector: airlock sign ${args[*]} failed (exit $rc): $err"
        continue
    fi
    if [ -z "$key" ] || [ "$key" = key-ed25519.pem ]; then
        # No randomness in hash-only and Ed25519 images: imgtool's bytes exactly.
        check "$vector: byte-identical to imgtool (${args[*]})" cmp -s "$ours" "$VEC/$vector"
    else
        n=$(hashed_len "$VEC/$vector")
        check "$vector: header, payload and protected TLVs identical" \
            cmp -s -n "$n" "$ours" "$VEC/$vector"
        check "$vector: same hash TLV value" \
            test "$(tlv_value "$ours" 16)$(tlv_value "$ours" 17)" = \
            "$(tlv_value "$VEC/$vector" 16)$(tlv_value "$VEC/$vector" 17)"
        check "$vector: same KEYHASH/PUBKEY value" \
            test "$(tlv_value "$ours" 1)$(tlv_value "$ours" 2)" = \
            "$(tlv_value "$VEC/$vector" 1)$(tlv_value "$VEC/$vector" 2)"
        a=$(tlv_layout "$ours") b=$(tlv_layout "$VEC/$vector")
        check "$vector: TLV types and lengths match ($a vs imgtool's $b)" \
            test "$(echo "$a" | mask_sig)" = "$(echo "$b" | mask_sig)"
        siglen=$(echo "$a" | sed -nE 's#.*(^| )22/([0-9]+).*#\2#p')
        if [ -n "$siglen" ]; then
            max=$([ "$key" = key-ecdsa-p384.pem ] && echo 104 || echo 72)
            check "$vector: ECDSA signature length $siglen <= $max" test "$siglen" -le "$max"
        fi
    fi
    if [ -n "$key" ]; then
        pub=${key%.pem}.pub.pem
        run verify -k "$pub" "$ours"
        check "$vector: airlock verify -k $pub accepts our image (exit $rc)" test "$rc" -eq 0
    fi
done < <(sed -nE 's/^ *"imgtool_command": "imgtool sign (.*)",?$/imgtool sign \1/p' \
    "$VEC/manifest.json")
check "manifest lists imgtool sign commands ($ncmd)" test "$ncmd" -ge 3

# KEYHASH in imgtool's images == airlock getpub --hash of the same key.
for v in ecdsa-p256 ecdsa-p384 rsa-2048 ed25519; do
    img="$VEC/$v.signed.bin"
    [ -f "$img" ] || continue
    want=$(tlv_value "$img" 1)
    got=$("$AIRLOCK" getpub --hash -k "key-$v.pub.pem")
    check "getpub --hash of key-$v.pub.pem equals imgtool's KEYHASH" test "$got" = "$want"
    got=$("$AIRLOCK" getpub --hash -k "key-$v.pem")
    check "getpub --hash of the private key-$v.pem gives the same" test "$got" = "$want"
done

# --- 2. sign error paths ------------------------------------------------------
P5=payload-5000.bin P70=payload-70001.bin
mkdir out
base=(sign -H 0x20 -v 1.2.3 -S 0x20000)
expect_fail "missing key file" $EXIT_IO out/a.bin "${base[@]}" -k nope.pem $P5 out/a.bin
expect_fail "public-only key" $EXIT_KEY out/a.bin "${base[@]}" -k key-ecdsa-p256.pub.pem $P5 out/a.bin
expect_fail "key file that is no key" $EXIT_KEY out/a.bin "${base[@]}" -k $P5 $P5 out/a.bin
for ver in 1.2.3.4 256.0.0 x 1.2.65536 1.2.3+4294967296 01.2 1.2+3 ""; do
    expect_fail "bad version '$ver'" $EXIT_USAGE out/a.bin sign -H 0x20 -v "$ver" -S 0x20000 $P5 out/a.bin
done
expect_fail "header size 31" $EXIT_USAGE out/a.bin sign -H 31 -v 1 -S 0x20000 $P5 out/a.bin
expect_fail "header size 0x10" $EXIT_USAGE out/a.bin sign -H 0x10 -v 1 -S 0x20000 $P5 out/a.bin
expect_fail "header size > 0xffff" $EXIT_USAGE out/a.bin sign -H 0x10000 -v 1 -S 0x20000 --pad-header $P5 out/a.bin
expect_fail "non-zero header area without --pad-header" $EXIT_USAGE out/a.bin \
    sign -H 0x200 -v 1 -S 0x40000 $P70 out/a.bin
case $err in *"offset"*) ok "non-zero header message names the offset" ;;
*) not_ok "non-zero header message names the offset: $err" ;; esac
expect_fail "image + trailer too big for the slot" $EXIT_TOO_BIG out/a.bin \
    sign -H 0x20 -v 1 -S 0x1000 $P5 out/a.bin
# 5040-byte image + 432-byte trailer > 0x1500 = 5376, though the image alone fits.
expect_fail "too big even without --pad (imgtool checks too)" $EXIT_TOO_BIG out/a.bin \
    sign -H 0x20 -v 1 -S 0x1500 $P5 out/a.bin
run sign -H 0x20 -v 1 -S 0x1500 --overwrite-only $P5 out/a.bin
check "... but fits with the 32-byte overwrite-only trailer (exit $rc)" test "$rc" -eq 0
rm -f out/a.bin
expect_fail "missing -S" $EXIT_USAGE out/a.bin sign -H 0x20 -v 1 $P5 out/a.bin
expect_fail "missing -H" $EXIT_USAGE out/a.bin sign -v 1 -S 0x20000 $P5 out/a.bin
expect_fail "missing -v" $EXIT_USAGE out/a.bin sign -H 0x20 -S 0x20000 $P5 out/a.bin
expect_fail "bad --align" $EXIT_USAGE out/a.bin "${base[@]}" --align 3 $P5 out/a.bin
expect_fail "bad -S number" $EXIT_USAGE out/a.bin sign -H 0x20 -v 1 -S 12k $P5 out/a.bin
expect_fail "unknown option" $EXIT_USAGE out/a.bin "${base[@]}" --frobnicate $P5 out/a.bin
expect_fail "-L with -F" $EXIT_USAGE out/a.bin "${base[@]}" -L 0x20000000 -F 0x8000000 $P5 out/a.bin
expect_fail "missing INFILE" $EXIT_IO out/a.bin "${base[@]}" nope.bin out/a.bin
expect_fail "output directory does not exist" $EXIT_IO nodir/a.bin "${base[@]}" $P5 nodir/a.bin
mkdir out/isdir
run "${base[@]}" $P5 out/isdir
check "OUTFILE that is a directory: exit $EXIT_IO ($err)" test "$rc" -eq $EXIT_IO
check "... and no temporary left" test -z "$(ls -A out | grep -v '^isdir$')"
rmdir out/isdir
if [ "$(id -u)" -ne 0 ]; then
    mkdir ro && chmod 0555 ro
    expect_fail "unwritable output directory" $EXIT_IO ro/a.bin "${base[@]}" $P5 ro/a.bin
    chmod 0755 ro
fi

# An existing OUTFILE survives every failed sign, byte for byte.
echo "precious old image" >out/keep.bin
cp out/keep.bin keep.orig
run sign -H 0x20 -v 1 -S 0x1000 $P5 out/keep.bin
check "too big: existing OUTFILE untouched (exit $rc)" cmp -s out/keep.bin keep.orig
run "${base[@]}" -k key-ed25519.pub.pem $P5 out/keep.bin
check "public key: existing OUTFILE untouched (exit $rc)" cmp -s out/keep.bin keep.orig
run sign -H 0x200 -v 1 -S 0x40000 $P70 out/keep.bin
check "bad header area: existing OUTFILE untouched (exit $rc)" cmp -s out/keep.bin keep.orig
check "no temporary files left in the output directory" test "$(ls -A out)" = keep.bin
run "${base[@]}" $P5 out/keep.bin
check "a successful sign replaces it (exit $rc)" test "$rc" -eq 0 -a "$(u32 out/keep.bin 0)" = $((0x96f3b83d))

# Quiet, summary and JSON.
err=$("$AIRLOCK" sign -q "${base[@]:1}" $P5 out/q.bin 2>&1)
check "-q prints nothing" test -z "$err"
err=$("$AIRLOCK" sign "${base[@]:1}" $P5 out/s.bin 2>&1 >/dev/null)
check "summary line on stderr: $err" test "$(printf '%s\n' "$err" | wc -l)" -eq 1
json=$("$AIRLOCK" sign --json -H 0x20 --align 4 -v 1.2.3+45 -S 0x20000 -k key-ecdsa-p256.pem \
    $P5 out/j.bin)
check "--json reports img_size" grep -q '"img_size": 4968' <<<"$json"
check "--json reports the digest" grep -q '"hash": "4c84c5933b0296843760c6784c5eba4f17c74cbe15c84f3ddd85dc8b46578f1a"' <<<"$json"
check "--json reports key type" grep -q '"key_type": "ecdsa-p256"' <<<"$json"

# --- 3. keygen and getpub -----------------------------------------------------
for t in ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072 ed25519; do
    k=gen-$t.pem
    run keygen -t "$t" -k "$k"
    check "keygen -t $t (exit $rc)" test "$rc" -eq 0
    check "keygen $t: mode 0600" test "$(stat -c %a "$k")" = 600
    check "keygen $t: PKCS#8 PEM" grep -q '^-----BEGIN PRIVATE KEY-----$' "$k"
    cp "$k" "$k.orig"
    expect_fail "keygen $t refuses to overwrite" $EXIT_USAGE nothing/x keygen -t "$t" -k "$k"
    check "keygen $t: existing key untouched" cmp -s "$k" "$k.orig"

    alg=sha256
    [ "$t" = ecdsa-p384 ] && alg=sha384
    "$AIRLOCK" getpub -k "$k" --lang raw >"$t.der"
    want=$(openssl dgst -"$alg" -r "$t.der" | cut -d' ' -f1)
    check "getpub --hash ($alg) = openssl dgst of getpub --lang raw ($t)" \
        test "$("$AIRLOCK" getpub -k "$k" --hash)" = "$want"
    "$AIRLOCK" getpub -k "$k" --lang pem >"$t.pub.pem"
    if [ "${t%%-*}" = rsa ]; then
        openssl rsa -pubin -in "$t.pub.pem" -RSAPublicKey_out -outform DER -out "$t.pkcs1" 2>/dev/null
        check "getpub raw of $t is PKCS#1 RSAPublicKey" cmp -s "$t.der" "$t.pkcs1"
    else
        openssl pkey -pubin -in "$t.pub.pem" -outform DER -out "$t.spki" 2>/dev/null
        check "getpub raw of $t is SubjectPublicKeyInfo" cmp -s "$t.der" "$t.spki"
    fi
    check "getpub from the public PEM gives the same bytes ($t)" \
        cmp -s "$t.der" <("$AIRLOCK" getpub -k "$t.pub.pem" --lang raw)

    # The C array compiles and holds exactly the raw bytes.
    "$AIRLOCK" getpub -k "$k" >"$t.c"
    cat >"$t-main.c" <<'MAIN'
#include <stdio.h>
extern const unsigned char airlock_pub_key[];
extern const unsigned int airlock_pub_key_len;
extern const int airlock_pub_key_type;
int main(void)
{
    for (unsigned int i = 0; i < airlock_pub_key_len; i++)
        printf("%02x", airlock_pub_key[i]);
    printf(" %d\n", airlock_pub_key_type);
    return 0;
}
MAIN
    if cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$t-main" "$t-main.c" "$t.c" 2>cc.err; then
        ok "getpub --lang c compiles with cc ($t)"
        check "getpub --lang c array equals the raw key ($t)" \
            test "$("./$t-main" | cut -d' ' -f1)" = "$(od -An -v -t x1 "$t.der" | tr -d ' \n')"
    else
        not_ok "getpub --lang c compiles with cc ($t): $(cat cc.err)"
    fi
    "$AIRLOCK" getpub -k "$k" --hash --lang c --name my_key >"$t-hash.c"
    check "getpub --hash --lang c compiles ($t)" \
        cc -std=c11 -Wall -Werror -pedantic -c -o "$t-hash.o" "$t-hash.c"

    # A key from keygen signs an image airlock verify accepts with its public half.
    run sign -H 0x20 -v 1.0.0 -S 0x20000 -k "$k" $P5 "signed-$t.bin"
    check "sign with the new $t key (exit $rc)" test "$rc" -eq 0
    run verify -k "$t.pub.pem" "signed-$t.bin"
    check "verify it with getpub's PEM ($t, exit $rc)" test "$rc" -eq 0
done
run keygen -t ed25519 -k gen-ed25519.pem --force
check "keygen --force replaces the key (exit $rc)" \
    test "$rc" -eq 0 -a -n "$(cmp gen-ed25519.pem gen-ed25519.pem.orig 2>&1)"
expect_fail "keygen unknown type" $EXIT_USAGE nothing/x keygen -t dsa -k x.pem
expect_fail "getpub of a missing file" $EXIT_IO nothing/x getpub -k nope.pem
expect_fail "getpub --hash --lang pem" $EXIT_USAGE nothing/x getpub -k key-ed25519.pem --hash --lang pem

# --- 4. help everywhere -------------------------------------------------------
for c in "" keygen getpub sign; do
    out=$("$AIRLOCK" $c --help 2>/dev/null)
    check "airlock $c --help exits 0 with usage" test $? -eq 0 -a "${out:0:6}" = "usage:"
done

echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
