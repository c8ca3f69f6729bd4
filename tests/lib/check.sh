# Assertions shared by the shell tests (sourced, never run). Each check
# prints "ok   - ..." or "FAIL - ..." and counts; `finish NAME` prints the
# tally and returns non-zero if anything failed. run() runs "$AIRLOCK".

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
not_ok() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3: got '$1', expected '$2'"; fi; }

# run EXPECTED_EXIT DESCRIPTION ARGS...: runs "$AIRLOCK" ARGS, stdout -> out, stderr -> err.
run() {
    local want=$1 desc=$2 got
    shift 2
    "$AIRLOCK" "$@" >out 2>err
    got=$?
    if [ "$got" = "$want" ]; then
        ok "$desc (exit $got)"
    else
        not_ok "$desc: exit $got, expected $want"
        sed 's/^/    stdout: /' out | head -20
        sed 's/^/    stderr: /' err | head -10
    fi
}

# has FILE TEXT DESCRIPTION: FILE contains TEXT (a fixed string).
has() {
    if grep -qF -- "$2" "$1"; then ok "$3"; else
        not_ok "$3: '$2' not in $1"
        sed 's/^/    /' "$1" | head -20
    fi
}

# has_re FILE REGEX DESCRIPTION: a line of FILE matches REGEX (extended).
has_re() {
    if grep -qE -- "$2" "$1"; then ok "$3"; else
        not_ok "$3: /$2/ not in $1"
        sed 's/^/    /' "$1" | head -20
    fi
}

# jget FILE PATH: a field of the JSON in FILE, PATH like "counts.total" or "items.0.name";
# booleans print as true/false, "INVALID" when absent or not JSON.
jget() {
    python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2].split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
except Exception:
    v = "INVALID"
print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# finish NAME: print the tally; the status is 0 only if nothing failed.
finish() {
    echo
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

# start_server DIR: `$AIRLOCK server run DIR --port 0` in the background (SERVER_PID;
# stdout/stderr in server.out/server.err of the current directory), wait for its port
# (PORT), export AIRLOCK_SERVER and AIRLOCK_CA for the operator commands. Exits the test
# if the server does not start within 10 s.
start_server() {
    local i
    "$AIRLOCK" server run "$1" --port 0 >server.out 2>server.err &
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        [ -s "$1/server.port" ] && break
        sleep 0.05
    done
    PORT=$(cat "$1/server.port" 2>/dev/null)
    if [ -z "$PORT" ]; then
        not_ok "server did not start"
        cat server.err
        exit 1
    fi
    ok "server run: listening on $PORT"
    case $1 in /*) AIRLOCK_CA=$1/tls/ca.pem ;; *) AIRLOCK_CA=$PWD/$1/tls/ca.pem ;; esac
    export AIRLOCK_SERVER=https://localhost:$PORT AIRLOCK_CA
}
