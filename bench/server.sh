#!/usr/bin/env bash
# Update-server benchmark: device check-ins per second and artifact download
# MB/s of `airlock server run` against nginx serving the same bytes as static
# files (a JSON file the size of a poll answer, and the artifact), both over
# TLS on loopback with the same certificate, load from wrk, in the same run.
# Prints the table and writes bench/results/server.json.
#
# Check-ins come from 10,000 devices in turn (enrolled by their first poll with
# the gateway token, in an unmeasured warm-up), so no answer is served from a
# cache of the same device's last poll; a second row shows one device polling
# over and over (what the store's 200 ms memo of a poll is for).
# Targets: check-ins >= 0.5 x nginx static; downloads >= 0.8 x nginx.
# Needs nginx and wrk (scripts/deps.sh installs them).
#
# usage: bench/server.sh            env: DURATION (s, default 10), CONNS (default 64)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BENCH_BUILD_DIR:-build-bench}
RESULTS=bench/results
JOBS=$(nproc 2>/dev/null || echo 2)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v wrk >/dev/null && [ -x "$NGINX" ] || {
    echo "bench/server: needs nginx and wrk: run scripts/deps.sh" >&2
    exit 1
}

mkdir -p "$BUILD" "$RESULTS"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIRLOCK_SANITIZE=OFF -DAIRLOCK_FUZZ=OFF \
    >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" --target airlock -j"$JOBS" >"$BUILD/build-server.log" 2>&1 ||
    { cat "$BUILD/build-server.log"; exit 1; }
AIRLOCK="$ROOT/$BUILD/tools/airlock"

T=$(mktemp -d /tmp/airlock-bench-server-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

# ---- airlock server with one device, a 32 MiB artifact and a campaign --------------
"$AIRLOCK" server init "$T/srv" >/dev/null
sed -i 's/^#* *poll_interval *=.*/poll_interval = 00:00:30/' "$T/srv/server.conf"
"$AIRLOCK" server run "$T/srv" --port 0 >"$T/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/srv/server.port" ] && break; sleep 0.1; done
PORT=$(cat "$T/srv/server.port")
CA="$T/srv/tls/ca.pem"
OP=$(cat "$T/srv/operator.token")
api() { curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $OP" "$@"; }
TOKEN=bench-device-token-0123456789
api -H 'Content-Type: application/json' -d "{\"controller_id\":\"bench01\",\"token\":\"$TOKEN\"}" \
    "https://localhost:$PORT/api/v1/devices" >/dev/null
head -c $((32 * 1024 * 1024)) /dev/urandom >"$T/artifact.bin"
api --data-binary @"$T/artifact.bin" \
    "https://localhost:$PORT/api/v1/artifacts?name=bench.bin&kind=opaque&version=9.9.9" >/dev/null
api -H 'Content-Type: application/json' -d '{"name":"bench","artifact":"bench.bin"}' \
    "https://localhost:$PORT/api/v1/campaigns" >/dev/null
AUTH="Authorization: TargetToken $TOKEN"
POLL="https://localhost:$PORT/DEFAULT/controller/v1/bench01"
curl -sS --cacert "$CA" -H "$AUTH" "$POLL" >"$T/poll.json"
DL=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["_links"]["deploymentBase"]["href"])' "$T/poll.json")
ART=$(curl -sS --cacert "$CA" -H "$AUTH" "$DL" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["deployment"]["chunks"][0]["artifacts"][0]["_links"]["download"]["href"])')
curl -sS --cacert "$CA" -H "$AUTH" "$ART" -o "$T/check.bin"
cmp -s "$T/check.bin" "$T/artifact.bin" || { echo "bench/server: artifact download differs" >&2; exit 1; }

# ---- nginx: the same certificate, the poll answer and the artifact as static files --
mkdir -p "$T/nginx/www" "$T/nginx/tmp"
cp "$T/poll.json" "$T/nginx/www/poll.json"
cp "$T/artifact.bin" "$T/nginx/www/artifact.bin"
# nginx's workers run unprivileged: they must be able to read what they serve
chmod 755 "$T" "$T/nginx" "$T/nginx/www"
chmod 644 "$T/nginx/www/"*
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes $JOBS;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp;
    proxy_temp_path $T/nginx/tmp;
    fastcgi_temp_path $T/nginx/tmp;
    uwsgi_temp_path $T/nginx/tmp;
    scgi_temp_path $T/nginx/tmp;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $T/srv/tls/server.pem;
        ssl_certificate_key $T/srv/tls/server.key;
        root $T/nginx/www;
    }
}
EOF
"$NGINX" -c "$T/nginx/nginx.conf" -p "$T/nginx" -g 'daemon off;' 2>"$T/nginx/stderr.log" &
PIDS+=($!)
for _ in $(seq 50); do curl -sk "https://127.0.0.1:$NPORT/poll.json" -o /dev/null && break; sleep 0.1; done

# ---- load ---------------------------------------------------------------------------------
rps() { awk '/^Requests\/sec:/ {print $2}'; }
mbps() { # wrk's Transfer/sec ("1.23GB") in MB/s
    awk '/^Transfer\/sec:/ {v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[A-Za-z]+$/,"",v);
        m=(u=="GB")?1024:(u=="MB")?1:(u=="KB")?1/1024:1/1048576; printf "%.1f\n", v*m}'
}
NDEV=${NDEV:-10000}
GW=$(cat "$T/srv/gateway.token")
cat >"$T/fleet.lua" <<LUA
-- each wrk thread walks the fleet dev-00000 .. dev-$((NDEV - 1)), enrolled by the gateway token
local i = 0
wrk.headers["Authorization"] = "GatewayToken $GW"
request = function()
  i = (i + 1) % $NDEV
  return wrk.format("GET", string.format("/DEFAULT/controller/v1/dev-%05d", i))
end
LUA
echo "bench/server: ${DURATION}s per run, $CONNS connections for check-ins, 8 for downloads, $JOBS cores" >&2
# Enrolment (one committed insert per new device) until every device is registered,
# so the measured runs are check-ins only.
for _ in $(seq 20); do
    wrk -t2 -c"$CONNS" -d3s -s "$T/fleet.lua" "https://localhost:$PORT" >"$T/wrk-warmup.txt"
    [ "$(grep -c 'registered dev-' "$T/server.log")" -ge "$NDEV" ] && break
done
A_FLEET=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$T/fleet.lua" "https://localhost:$PORT" |
    tee "$T/wrk-a-fleet.txt" | rps)
A_POLL=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "$AUTH" "$POLL" | tee "$T/wrk-a-poll.txt" | rps)
N_POLL=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "https://127.0.0.1:$NPORT/poll.json" | tee "$T/wrk-n-poll.txt" | rps)
A_DL=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 60s -H "$AUTH" "$ART" | tee "$T/wrk-a-dl.txt" | mbps)
N_DL=$(wrk -t2 -c8 -d"${DURATION}s" --timeout 60s "https://127.0.0.1:$NPORT/artifact.bin" | tee "$T/wrk-n-dl.txt" | mbps)
ERRS=$(grep -H 'Non-2xx\|Socket errors' "$T"/wrk-[an]-*.txt || true)

python3 - "$A_POLL" "$N_POLL" "$A_DL" "$N_DL" "$RESULTS/server.json" "$ERRS" "$A_FLEET" "$NDEV" <<'EOF'
import json, sys
a_poll, n_poll, a_dl, n_dl = (float(x) for x in sys.argv[1:5])
a_fleet, ndev = float(sys.argv[7]), int(sys.argv[8])
r_poll, r_dl, r_fleet = a_poll / n_poll, a_dl / n_dl, a_fleet / n_poll
print("%-34s %14s %14s %8s %8s" % ("", "airlock", "nginx static", "ratio", "target"))
print("%-34s %14.0f %14.0f %8.2f %8s" % ("check-ins / s, %d devices" % ndev, a_fleet, n_poll, r_fleet, ">= 0.5"))
print("%-34s %14.0f %14.0f %8.2f %8s" % ("check-ins / s, one device", a_poll, n_poll, r_poll, ""))
print("%-34s %14.1f %14.1f %8.2f %8s" % ("artifact download MB/s", a_dl, n_dl, r_dl, ">= 0.8"))
if sys.argv[6].strip():
    print("errors under load (a run with errors does not count):\n" + sys.argv[6].strip())
json.dump({"fleet_devices": ndev, "fleet_checkins_per_s": a_fleet, "fleet_checkin_ratio": r_fleet,
           "checkins_per_s": a_poll, "nginx_static_per_s": n_poll, "checkin_ratio": r_poll,
           "download_MBps": a_dl, "nginx_download_MBps": n_dl, "download_ratio": r_dl},
          open(sys.argv[5], "w"), indent=2)
EOF
