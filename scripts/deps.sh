#!/usr/bin/env bash
# Install every Debian package airlock needs and fetch the mbedTLS source tree
# used by the Cortex-M cross build. Idempotent and silent when nothing is missing.
# Must never name a mirror host: deb-src entries are derived from the machine's
# own apt sources.
#
# Usage: scripts/deps.sh                 install what is missing, fetch mbedTLS source
#        scripts/deps.sh --print-mbedtls-dir   print where the mbedTLS tree is (no action)
#        scripts/deps.sh --packages-only       skip the mbedTLS source
# Env:   AIRLOCK_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/airlock)
set -euo pipefail

PACKAGES=(
    build-essential cmake make pkg-config        # host build
    libssl-dev openssl                           # crypto/openssl.c, tools, test keys
    zlib1g-dev                                   # crypto/openssl.c: zlib's CRC-32
    libmbedtls-dev                               # crypto/mbedtls.c on the host
    libcmocka-dev libjansson-dev                 # unit tests; CLI --json
    gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi  # Cortex-M cross check
    clang llvm libclang-rt-14-dev                # libFuzzer targets, llvm-symbolizer
    xxd                                          # embedding test vectors
    dpkg-dev                                     # dpkg-source, for the mbedTLS source
    python3                                      # scripts/stack-report.py
    ca-certificates
    libcurl4-openssl-dev curl                    # agent/ HTTPS download; bench/download baseline
    libmicrohttpd-dev libgnutls28-dev            # HTTPS test server fixture; the update server
    libsqlite3-dev sqlite3                       # server store (embedded default)
    swupdate cpio                                # a real hawkBit DDI client in the interop test
    chromium chromium-driver                     # dashboard browser test
    nginx-light wrk                              # bench/server: the static-file baseline and the load
    libjsmn-dev                                  # agent/ddi.c: allocation-free JSON tokens for DDI
    qemu-system-arm                              # Cortex-M3 bootloader and app under QEMU (mps2-an385)
)

CACHE="${AIRLOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock}"
SRC_ROOT="$CACHE/mbedtls-src"
DEB_SRC_FILE=/etc/apt/sources.list.d/airlock-deb-src.sources

say() { printf 'deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Run a command as root: directly if we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

installed() { # pkg -> 0 if installed
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# Run quietly; show the output only if the command fails.
quiet() {
    local log rc=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$log" >&2; say "failed ($rc): $*"; }
    rm -f "$log"
    return "$rc"
}

apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        apt_updated=1
    fi
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing: ${missing[*]}"
    apt_update
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
}

# --- mbedTLS source ----------------------------------------------------------

mbedtls_version() { # source version matching the installed libmbedtls-dev
    dpkg-query -W -f='${source:Version}' libmbedtls-dev 2>/dev/null
}

mbedtls_dir() {
    local v
    v="$(mbedtls_version)"
    [ -n "$v" ] || die "libmbedtls-dev is not installed"
    printf '%s/%s\n' "$SRC_ROOT" "$v"
}

have_deb_src() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        grep -qiE '^[[:space:]]*Types:.*[[:space:]]deb-src([[:space:]]|$)' "$f" && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        grep -qE '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    return 1
}

# Print deb822 deb-src stanzas equivalent to the configured binary sources.
derive_deb_src() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        [ "$f" = "$DEB_SRC_FILE" ] && continue
        # Keep stanzas whose Types has "deb"; rewrite it to deb-src; drop comments.
        awk '
            function flush() {
                if (n > 0 && isdeb) { if (out++) print ""; for (i = 1; i <= n; i++) print s[i] }
                n = 0; isdeb = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0
                if (tolower($1) == "types:") {
                    isdeb = 0
                    for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1
                    line = "Types: deb-src"
                }
                s[++n] = line
            }
            END { flush() }
        ' "$f"
        echo
    done
    if [ -e /etc/apt/sources.list ]; then
        # One-line "deb [opts] uri suite comp..." -> deb822.
        awk '
            $1 != "deb" { next }
            {
                print "Types: deb-src"
                i = 2
                if ($2 ~ /^\[/) {
                    opts = ""
                    while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } i++ }
                    gsub(/[\[\]]/, "", opts)
                    m = split(opts, o, " ")
                    for (k = 1; k <= m; k++) {
                        split(o[k], kv, "=")
                        key = kv[1]; name = ""
                        if (key == "arch") name = "Architectures"
                        else if (key == "lang") name = "Languages"
                        else if (key == "target") name = "Targets"
                        else {
                            np = split(key, parts, "-")
                            for (j = 1; j <= np; j++)
                                name = name (j > 1 ? "-" : "") toupper(substr(parts[j], 1, 1)) substr(parts[j], 2)
                        }
                        gsub(/,/, " ", kv[2])
                        print name ": " kv[2]
                    }
                }
                print "URIs: " $i
                print "Suites: " $(i + 1)
                comps = ""
                for (j = i + 2; j <= NF; j++) { if ($j ~ /^#/) break; comps = comps (comps ? " " : "") $j }
                if (comps != "") print "Components: " comps
                print ""
            }
        ' /etc/apt/sources.list
    fi
}

ensure_deb_src() {
    if ! have_deb_src; then
        local tmp
        tmp="$(mktemp)"
        {
            echo "# Written by airlock scripts/deps.sh: source entries mirroring the"
            echo "# binary entries configured on this machine (for apt-get source)."
            echo
            derive_deb_src | cat -s
        } >"$tmp"
        grep -q '^Types: deb-src' "$tmp" || { rm -f "$tmp"; die "no apt 'deb' sources found to derive deb-src entries from"; }
        say "adding deb-src entries: $DEB_SRC_FILE"
        as_root install -m 0644 "$tmp" "$DEB_SRC_FILE"
        rm -f "$tmp"
        apt_update
    fi
    # Entries present but index not fetched yet (or stale): update once.
    if ! apt-cache showsrc mbedtls 2>/dev/null | grep -q '^Version:'; then
        apt_update
    fi
}

fetch_mbedtls_src() {
    local dest ver tmp srcdir
    dest="$(mbedtls_dir)"
    ver="$(mbedtls_version)"
    [ -f "$dest/.airlock-ok" ] && return 0

    ensure_deb_src
    say "fetching mbedTLS source $ver into $dest"
    # Download into a world-readable temp dir so apt's _apt sandbox can write it.
    tmp="$(mktemp -d)"
    chmod 0755 "$tmp"
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    (
        cd "$tmp"
        if ! apt-get source -qq --download-only "mbedtls=$ver" >/dev/null 2>&1; then
            say "warning: mbedtls=$ver not in the source index; using the newest available"
            apt-get source -qq --download-only mbedtls >/dev/null
        fi
        # apt already checked the files against the signed Sources index.
        dpkg-source -q --no-check -x ./*.dsc src >/dev/null
    ) || { rm -rf "$tmp"; die "could not fetch the mbedTLS source package"; }
    srcdir="$tmp/src"
    [ -f "$srcdir/library/ecdsa.c" ] || { rm -rf "$tmp"; die "unexpected mbedTLS source layout"; }
    mkdir -p "$SRC_ROOT"
    rm -rf "$dest" "$dest.tmp"
    mv "$srcdir" "$dest.tmp"
    touch "$dest.tmp/.airlock-ok"
    mv "$dest.tmp" "$dest"
    rm -rf "$tmp"
}

case "${1:-}" in
    --print-mbedtls-dir)
        mbedtls_dir
        ;;
    --packages-only)
        install_packages
        ;;
    "")
        install_packages
        fetch_mbedtls_src
        ;;
    -h | --help)
        sed -n '2,11p' "$0"
        ;;
    *)
        die "unknown option: $1"
        ;;
esac
