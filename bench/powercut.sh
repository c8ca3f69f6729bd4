#!/usr/bin/env bash
# Power-cut soak: at least 1,000,000 seeded random multi-cut update runs (1-4
# cuts each, landing in installs and in recoveries) across every engine, every
# built-in layout and four update kinds, through `airlock powercut`; prints a
# table and writes bench/results/powercut.json. Long (tens of minutes): run by
# `make soak`, never by `make bench` or `make test`. Re-runnable; exits 1 if any
# run broke the simulated device (the table then says how to repeat it).
#
# usage: bench/powercut.sh [TOTAL_RANDOM_RUNS]       (default 1000000)
# env:   POWERCUT_SEED  base seed (default 1)       JOBS  parallel processes (nproc)
#        MAX_CUTS       cuts per run, 1..16 (4)     AIRLOCK  use this airlock binary
#        BENCH_BUILD_DIR  where to build airlock (build-bench, Release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOTAL=${1:-1000000}
SEED=${POWERCUT_SEED:-1}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
MAX_CUTS=${MAX_CUTS:-4}
BUILD=${BENCH_BUILD_DIR:-build-bench}
RESULTS=bench/results
CALIBRATE=40 # random runs per configuration in the timing pass

command -v python3 >/dev/null || { echo "powercut bench: needs python3 (JSON report)"; exit 1; }
mkdir -p "$RESULTS"

# ---- the airlock binary ---------------------------------------------------------
if [ -n "${AIRLOCK:-}" ]; then
    case $AIRLOCK in /*) ;; *) AIRLOCK=$ROOT/$AIRLOCK ;; esac
else
    mkdir -p "$BUILD"
    if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIRLOCK_SANITIZE=OFF \
        -DAIRLOCK_FUZZ=OFF >"$BUILD/configure.log" 2>&1 &&
        cmake --build "$BUILD" --target airlock -j"$JOBS" >"$BUILD/build-powercut.log" 2>&1; then
        AIRLOCK=$ROOT/$BUILD/tools/airlock
    elif [ -x build/tools/airlock ]; then
        echo "powercut bench: airlock did not build in $BUILD (see $BUILD/build-powercut.log);" \
            "using build/tools/airlock (slower if it is not optimised)"
        AIRLOCK=$ROOT/build/tools/airlock
    else
        cat "$BUILD/build-powercut.log" 2>/dev/null || cat "$BUILD/configure.log"
        exit 1
    fi
fi
"$AIRLOCK" powercut --help >/dev/null 2>&1 || { echo "powercut bench: $AIRLOCK has no powercut"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-powercut-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- images: 20 KiB payloads signed with Ed25519 by the real CLI --------------------
"$AIRLOCK" keygen -t ed25519 -k "$WORK/key.pem" -q
"$AIRLOCK" getpub -k "$WORK/key.pem" --lang pem -o "$WORK/pub.pem"
# (yes dies of SIGPIPE once head has its bytes: not an error here)
{ yes "airlock power-cut soak, old firmware" || true; } | head -c 20480 >"$WORK/old.payload"
{ yes "airlock power-cut soak, new firmware" || true; } | head -c 20480 >"$WORK/new.payload"
# ram-load boots images linked for RAM: the harness's RAM is at 0x20000000.
for v in old:1.0.0 new:1.1.0; do
    "$AIRLOCK" sign -q -H 0x200 --pad-header --align 4 -S 0x100000 -k "$WORK/key.pem" \
        -v "${v#*:}" "$WORK/${v%%:*}.payload" "$WORK/${v%%:*}.bin"
    "$AIRLOCK" sign -q -H 0x200 --pad-header --align 4 -S 0x100000 -k "$WORK/key.pem" \
        -L 0x20000000 -v "${v#*:}" "$WORK/${v%%:*}.payload" "$WORK/${v%%:*}-ram.bin"
done

# ---- configurations: layout x engine x update kind --------------------------------------
LAYOUTS="nrf52840 nrf52840-qspi stm32f4 esp32"
ENGINES=$("$AIRLOCK" powercut --engine list | awk '{ print $1 }')
KINDS=("--permanent" "--confirm" "--no-confirm" "--no-confirm --trials 3")
: >"$WORK/configs"
n=0
for l in $LAYOUTS; do
    for e in $ENGINES; do
        for k in "${KINDS[@]}"; do
            echo "$n|$l|$e|$k" >>"$WORK/configs"
            n=$((n + 1))
        done
    done
done

# worker INDEX RANDOM_RUNS OUTDIR: one configuration; JSON to OUTDIR/INDEX.json,
# exit code and wall time (ns) to OUTDIR/INDEX.rc / .ns.
worker() {
    local line l e k t0 rc ram=
    line=$(sed -n "$(($1 + 1))p" "$WORK/configs")
    IFS='|' read -r _ l e k <<<"$line"
    [ "$e" = ram-load ] && ram=-ram
    t0=$(date +%s%N)
    # shellcheck disable=SC2086 # k holds several options
    "$AIRLOCK" powercut --layout "$l" --engine "$e" $k --old "$WORK/old$ram.bin" \
        --new "$WORK/new$ram.bin" --key "$WORK/pub.pem" --random "$2" --max-cuts "$MAX_CUTS" \
        --seed "$((SEED + $1 * 1000000000))" --json >"$3/$1.json" 2>"$3/$1.err" && rc=0 || rc=$?
    echo "$rc" >"$3/$1.rc"
    echo $(($(date +%s%N) - t0)) >"$3/$1.ns"
    if [ -n "${4:-}" ]; then
        printf '  %-14s %-13s %-26s %s\n' "$l" "$e" "$k" \
            "$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%d runs, %d failed" % (j.get("runs", 0), j.get("failed", 0)) if "runs" in j else j["error"]["message"])' "$3/$1.json")"
    fi
}
export -f worker
export AIRLOCK WORK SEED MAX_CUTS

# ---- timing pass: every configuration with a few random runs -------------------------
mkdir -p "$WORK/cal" "$WORK/run"
echo "powercut bench: $n configurations ($LAYOUTS) x ($(echo $ENGINES)) x 4 update kinds;" \
    "timing them ($CALIBRATE random runs each, $JOBS jobs)..."
t_start=$(date +%s)
seq 0 $((n - 1)) | xargs -P "$JOBS" -I{} bash -c "worker {} $CALIBRATE $WORK/cal"
read -r per_cfg estimate usable < <(python3 - "$WORK" "$n" "$TOTAL" "$JOBS" "$CALIBRATE" <<'EOF'
import json, math, sys
work, n, total, jobs, cal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
usable, secs = [], 0.0
for i in range(n):
    rc = int(open(f"{work}/cal/{i}.rc").read())
    if rc in (0, 13):
        j = json.load(open(f"{work}/cal/{i}.json"))
        runs = max(j["runs"], 1)
        usable.append(i)
        secs += int(open(f"{work}/cal/{i}.ns").read()) / 1e9 / runs
per = math.ceil(total / max(len(usable), 1))
# random runs cost a little more than single cuts (more boots): +30%
print(per, int(secs * per * 1.3 / jobs), " ".join(map(str, usable)))
EOF
)
skipped=$(python3 - "$WORK" "$n" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    if int(open(f"{work}/cal/{i}.rc").read()) not in (0, 13):
        line = open(f"{work}/configs").read().splitlines()[i].split("|")
        try:
            msg = json.load(open(f"{work}/cal/{i}.json"))["error"]["message"]
        except Exception:
            msg = open(f"{work}/cal/{i}.err").read().strip()
        print(f"  skipped {line[1]} {line[2]} {line[3]}: {msg}")
EOF
)
[ -n "$skipped" ] && echo "$skipped"
nusable=$(echo "$usable" | wc -w)
echo "powercut bench: $nusable usable configurations x $per_cfg random runs" \
    "= $((nusable * per_cfg)) runs, max $MAX_CUTS cuts each, seed $SEED"
echo "powercut bench: estimated runtime $((estimate / 60)) min $((estimate % 60)) s" \
    "on $JOBS jobs (timing pass took $(($(date +%s) - t_start)) s)"

# ---- the soak -------------------------------------------------------------------------
t_run=$(date +%s)
tr ' ' '\n' <<<"$usable" | xargs -P "$JOBS" -I{} bash -c "worker {} $per_cfg $WORK/run show"
elapsed=$(($(date +%s) - t_run))

python3 - "$WORK" "$usable" "$RESULTS/powercut.json" "$elapsed" "$JOBS" "$SEED" "$MAX_CUTS" \
    "$("$AIRLOCK" --version)" <<'EOF'
import json, platform, sys, time
work, usable, out, elapsed, jobs, seed, max_cuts, version = sys.argv[1:9]
lines = open(f"{work}/configs").read().splitlines()
rows, failed, rnd, single = [], 0, 0, 0
for i in map(int, usable.split()):
    _, layout, engine, kind = lines[i].split("|")
    j = json.load(open(f"{work}/run/{i}.json"))
    r = {"layout": layout, "engine": engine, "kind": kind.strip("-").replace(" --", ", "),
         "seed": j["seed"], "seconds": int(open(f"{work}/run/{i}.ns").read()) / 1e9}
    for s in j["scenarios"]:
        key = "random" if s["cuts"] == "random" else "every_cut"
        r["uncut_ops"] = s["uncut_ops"]
        r[key] = {k: s[k] for k in ("runs", "passed", "failed")}
        if "first_failure" in s:
            r.setdefault("failures", []).append(s["first_failure"])
    rows.append(r)
    failed += j["failed"]
    rnd += r.get("random", {}).get("runs", 0)
    single += r.get("every_cut", {}).get("runs", 0)
print()
print(f"{'layout':<14} {'engine':<13} {'update':<22} {'ops':>5} {'every cut':>10} "
      f"{'random':>9} {'failed':>7} {'s':>7}")
for r in rows:
    f = r.get("every_cut", {}).get("failed", 0) + r.get("random", {}).get("failed", 0)
    print(f"{r['layout']:<14} {r['engine']:<13} {r['kind']:<22} {r.get('uncut_ops', 0):>5} "
          f"{r.get('every_cut', {}).get('runs', 0):>10} {r.get('random', {}).get('runs', 0):>9} "
          f"{f:>7} {r['seconds']:>7.1f}")
    for x in r.get("failures", []):
        print(f"    FAILED seed {x['seed']} cuts {x['cuts']}: {x['why']}\n    repeat: {x['repeat']}")
rate = rnd / float(elapsed) if int(elapsed) else 0
print(f"\npowercut bench: {rnd} random multi-cut runs (1-{max_cuts} cuts) + {single} single-cut "
      f"runs in {elapsed} s ({rate:.0f} random runs/s on {jobs} jobs), {failed} failed")
json.dump({"bench": "powercut", "airlock": version, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "host": platform.node(), "cpu": platform.processor() or platform.machine(),
           "jobs": int(jobs), "seed": int(seed), "max_cuts": int(max_cuts), "payload_bytes": 20480,
           "random_runs": rnd, "every_cut_runs": single, "failed": failed,
           "seconds": int(elapsed), "configurations": rows},
          open(out, "w"), indent=2)
print(f"powercut bench: wrote {out}")
sys.exit(1 if failed else 0)
EOF
