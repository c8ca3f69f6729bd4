#!/usr/bin/env bash
# The dashboard in a real browser: a seeded server (dashboard_seed) and chromium
# driven through chromedriver's WebDriver HTTP API by a python3 client (urllib
# only). Checks the pages against what the seed reports, that device-supplied
# markup stays text, and saves a campaign page screenshot. Exits 77 without
# chromium/chromedriver; never leaves a process behind.
#
# Usage: test_dashboard.sh SEED_BINARY SCREENSHOT.png
set -euo pipefail

seed=${1:?usage: test_dashboard.sh SEED_BINARY SCREENSHOT.png}
shot=${2:?usage: test_dashboard.sh SEED_BINARY SCREENSHOT.png}
for tool in chromium chromedriver python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool is not installed (scripts/deps.sh installs it)"
        exit 77
    fi
done

work=$(mktemp -d /tmp/airlock-dashboard-XXXXXX)
seed_pid=
driver_pid=
cleanup() {
    local rc=$?
    if [ -n "$driver_pid" ]; then
        # chromedriver leads its own process group (setsid): the browser goes with it
        kill -TERM -- "-$driver_pid" 2>/dev/null || true
        wait "$driver_pid" 2>/dev/null || true
    fi
    if [ -n "$seed_pid" ]; then
        kill -TERM "$seed_pid" 2>/dev/null || true
        wait "$seed_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        echo "--- seed stderr"; cat "$work/seed.err" 2>/dev/null || true
        echo "--- chromedriver log (tail)"; tail -n 20 "$work/chromedriver.log" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$seed" >"$work/seed.out" 2>"$work/seed.err" &
seed_pid=$!
for _ in $(seq 300); do
    grep -qx ready "$work/seed.out" && break
    kill -0 "$seed_pid" 2>/dev/null || { echo "FAIL: the seeding server exited"; exit 1; }
    sleep 0.1
done
grep -qx ready "$work/seed.out" || { echo "FAIL: the seeding server is not ready after 30 s"; exit 1; }

driver_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid chromedriver --port="$driver_port" >"$work/chromedriver.log" 2>&1 &
driver_pid=$!

python3 - "$work/seed.out" "http://127.0.0.1:$driver_port" "$shot" "$work" "$(command -v chromium)" <<'PY'
import base64
import json
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

seed_out, driver, shot_path, work, chromium = sys.argv[1:6]
HOSTILE = "<script>alert(1)</script>"
ELEM = "element-6066-11e4-a52e-4f735466cecf"

# ---- what the seed put in the store ----------------------------------------------------
facts = {"version": {}, "campaign": {}}
for line in open(seed_out):
    k, _, v = line.strip().partition(" ")
    if k == "version":
        ver, n = v.split()
        facts["version"][ver] = int(n)
    elif k == "campaign":
        name, state, ok, fail, open_ = v.split()
        facts["campaign"][name] = (state, int(ok), int(fail), int(open_))
    elif k:
        facts[k] = v
base = "https://localhost:%s" % facts["port"]

failures = []


def check(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


# ---- plain HTTP against the server (no browser) ----------------------------------------
tls = ssl.create_default_context()
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), NoRedirect)


def http(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


st, hd, _ = http("GET", "/dashboard")
check(st == 303 and hd.get("Location") == "/dashboard/login",
      "no session: /dashboard answers 303 to /dashboard/login")
st, hd, _ = http("GET", "/dashboard/devices/dev-01", headers={"Cookie": "airlock_session=forged0123456789"})
check(st == 303, "a forged session cookie is sent to the login page")
st, hd, body = http("POST", "/dashboard/login", b"token=not-the-token",
                    {"Content-Type": "application/x-www-form-urlencoded"})
check(st == 401 and 'id="login-error"' in body, "a wrong token: 401 with the form and a message")
st, _, _ = http("POST", "/dashboard/login", ("token=" + facts["token"]).encode(),
                {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"})
check(st == 403, "a login form posted from another site is refused")
st, hd, _ = http("POST", "/dashboard/login", ("token=" + facts["token"]).encode(),
                 {"Content-Type": "application/x-www-form-urlencoded"})
check(st == 303 and hd.get("Location") == "/dashboard" and
      hd.get("Set-Cookie", "").startswith("airlock_session=") and
      "HttpOnly; Secure; SameSite=Strict; Path=/dashboard" in hd.get("Set-Cookie", ""),
      "the right token: 303 to /dashboard with the session cookie")
check("script-src" not in hd.get("Content-Security-Policy", "x") and
      "default-src 'none'" in hd.get("Content-Security-Policy", ""),
      "pages carry a policy that allows no script")

# ---- WebDriver --------------------------------------------------------------------------


class WebDriverError(Exception):
    pass


def call(method, path, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(driver + path, data=data, method=method,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r).get("value")
    except urllib.error.HTTPError as e:
        v = json.load(e).get("value") or {}
        raise WebDriverError("%s %s: %s: %s" % (method, path, v.get("error"),
                                                str(v.get("message", ""))[:400]))


for _ in range(100):  # chromedriver listening?
    try:
        if call("GET", "/status", timeout=2).get("ready"):
            break
    except (OSError, WebDriverError):
        pass
    time.sleep(0.1)


class Browser:
    def __init__(self):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": True,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--ignore-certificate-errors", "--window-size=1280,1000",
                         "--disable-dev-shm-usage", "--user-data-dir=%s/profile" % work],
            },
        }}}
        self.sid = call("POST", "/session", caps, timeout=60)["sessionId"]

    def s(self, method, path, body=None):
        return call(method, "/session/%s%s" % (self.sid, path), body)

    def go(self, path):
        self.s("POST", "/url", {"url": base + path})

    def path(self):
        url = self.s("GET", "/url")
        return url[len(base):] if url.startswith(base) else url

    def finds(self, css, root=None):
        where = "/element/%s/elements" % root if root else "/elements"
        return [e[ELEM] for e in self.s("POST", where, {"using": "css selector", "value": css})]

    def wait(self, css, seconds=10):
        """Elements matching css once there are any (a click's page may still be loading)."""
        end = time.time() + seconds
        while True:
            found = self.finds(css)
            if found or time.time() > end:
                return found
            time.sleep(0.05)

    def wait_path(self, path, seconds=10):
        end = time.time() + seconds
        while self.path() != path and time.time() < end:
            time.sleep(0.05)
        return self.path()

    def find(self, css, root=None):
        found = self.finds(css, root)
        if not found:
            raise WebDriverError("no element matches %s" % css)
        return found[0]

    def text(self, el):
        return self.s("GET", "/element/%s/text" % el)

    def attr(self, el, name):
        return self.s("GET", "/element/%s/attribute/%s" % (el, name))

    def click(self, el):
        self.s("POST", "/element/%s/click" % el, {})

    def type(self, el, text):
        self.s("POST", "/element/%s/value" % el, {"text": text})

    def quit(self):
        try:
            self.s("DELETE", "")
        except (OSError, WebDriverError):
            pass


def png_colours(data):
    """Distinct colours of an 8-bit RGB/RGBA PNG (the format chromium writes)."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            if depth != 8 or ctype not in (2, 6):
                return width, height, -1
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:  # every 4th row is plenty to count colours
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, len(colours)


b = Browser()
try:
    # ---- login
    b.go("/dashboard")
    check(b.path() == "/dashboard/login", "the browser is sent to the login page")
    b.type(b.find("input[name=token]"), "wrong-token")
    b.click(b.find("#login"))
    check(bool(b.wait("#login-error")) and b.path() == "/dashboard/login",
          "a wrong token shows the login form again with a message")
    b.type(b.find("input[name=token]"), facts["token"])
    b.click(b.find("#login"))
    check(b.wait_path("/dashboard") == "/dashboard",
          "the operator token logs in and lands on /dashboard")
    cookie = [c for c in b.s("GET", "/cookie") if c["name"] == "airlock_session"]
    check(len(cookie) == 1 and cookie[0].get("httpOnly") and cookie[0].get("secure") and
          cookie[0].get("sameSite") == "Strict" and cookie[0].get("path") == "/dashboard",
          "the session cookie is HttpOnly, Secure, SameSite=Strict, Path=/dashboard")

    # ---- fleet overview
    check(b.text(b.find("#device-count")) == facts["devices"] == "30",
          "device count: %s" % facts["devices"])
    check(b.text(b.find("#seen-last-hour")) == facts["seen_last_hour"] == "20",
          "devices seen in the last hour: %s" % facts["seen_last_hour"])
    for ver, n in facts["version"].items():
        row = b.finds('#versions tr[data-version="%s"]' % ver)
        check(row and b.text(b.find("td.count", row[0])) == str(n),
              "version table: %s on %d devices" % (ver, n))
        bar = b.finds('#version-chart rect[data-version="%s"]' % ver)
        check(bar and b.attr(bar[0], "data-count") == str(n) and
              float(b.attr(bar[0], "width")) > 0, "version chart: a bar for %s" % ver)
    check(len(b.finds("#versions tbody tr")) == len(facts["version"]), "one row per version")
    drawn = {b.attr(r, "data-version"): b.s("GET", "/element/%s/rect" % r)["width"]
             for r in b.finds("#version-chart rect[data-version]")}
    most = max(facts["version"], key=facts["version"].get)
    least = min(facts["version"], key=facts["version"].get)
    check(drawn.get(most, 0) > 4 * drawn.get(least, 1e9),
          "version bars are drawn to scale (%s)" % {k: round(v) for k, v in drawn.items()})
    check(len(b.finds("#campaigns tbody tr.campaign")) == len(facts["campaign"]),
          "one campaign row per campaign")
    for name, (state, ok, fail, open_) in facts["campaign"].items():
        row = b.finds('#campaigns tr[data-campaign="%s"]' % name)
        if not check(bool(row), "campaign row for %s" % name):
            continue
        got = [b.text(b.find(c, row[0])) for c in ("td.state", "td.success", "td.failure", "td.open")]
        check(got == [state, str(ok), str(fail), str(open_)],
              "campaign %s: state %s, %d success, %d failure, %d open (page: %s)"
              % (name, state, ok, fail, open_, got))
    check(facts["campaign"]["spring-rollout"][0] == "finished" and
          facts["campaign"]["summer-hotfix"][0] == "paused",
          "the seed left one campaign finished and one paused by its threshold")
    check(not b.finds("script"), "the overview has no script element")

    # ---- a campaign: follow its link
    b.click(b.find('#campaigns tr[data-campaign="spring-rollout"] td.name a'))
    check(b.wait_path("/dashboard/campaigns/spring-rollout") == "/dashboard/campaigns/spring-rollout",
          "the campaign link opens its page")
    state, ok, fail, _ = facts["campaign"]["spring-rollout"]
    check(b.text(b.find("#campaign-state")) == state, "campaign page: state %s" % state)
    check("3 failed" in b.text(b.find("#campaign-reason")), "campaign page: the reason")
    waves = b.finds("#waves tr.wave")
    check(len(waves) == 2, "two wave rows")
    sums = [sum(int(b.text(b.find(c, w))) for w in waves) for c in ("td.success", "td.failure")]
    check(sums == [ok, fail], "wave rows add up to %d success / %d failure" % (ok, fail))
    check(len(b.finds(".bar .seg-success", waves[0])) == 1 and
          len(b.finds(".bar .seg-failure", waves[0])) == 1, "wave 1 has success and failure segments")
    chart = b.finds("svg#rollout-chart")
    if check(bool(chart), "svg#rollout-chart is there"):
        for name in ("offered", "running", "success", "failure"):
            line = b.finds("#series-%s" % name, chart[0])
            pts = (b.attr(line[0], "points") or "").split() if line else []
            check(len(pts) >= 2, "series %s has points (%d)" % (name, len(pts)))
        final = {n: b.attr(b.find("#series-%s" % n), "data-final") for n in ("success", "failure")}
        check(final == {"success": str(ok), "failure": str(fail)},
              "the chart ends at %d success, %d failure (%s)" % (ok, fail, final))
        check(len((b.attr(b.find("#series-success"), "points") or "").split()) > 6,
              "the success line climbs in steps")
        check(len(b.finds("text.time", chart[0])) >= 3, "time labels on the x axis")
        check(len(b.finds("#rollout-legend text", chart[0])) == 4, "a legend with four states")
    check(len(b.finds("#actions tr.action")) == 30, "the device table lists 30 actions")
    check(len(b.finds('#actions tr.action[data-state="failure"]')) == fail,
          "%d failure rows" % fail)
    png = base64.b64decode(b.s("GET", "/screenshot"))
    with open(shot_path, "wb") as f:
        f.write(png)
    t = time.time()
    width, height, ncol = png_colours(png)
    check(len(png) > 10000 and width == 1280 and ncol > 16,
          "screenshot %s: %d bytes, %dx%d, %d colours (decoded in %.1f s)"
          % (shot_path, len(png), width, height, ncol, time.time() - t))

    # ---- the paused campaign and the hostile feedback
    hostile = facts["hostile"]
    b.go("/dashboard/campaigns/summer-hotfix")
    check(b.text(b.find("#campaign-state")) == "paused", "summer-hotfix is shown paused")
    check("threshold" in b.text(b.find("#campaign-reason")), "... with the threshold as reason")
    cell = b.find('#actions tr[data-device="%s"] td.details' % hostile)
    check(HOSTILE in b.text(cell), "hostile details shown as text on the campaign page")
    check(not b.finds("script", cell) and not b.finds("script"),
          "no script element on the campaign page")

    # ---- the device page: details and history
    b.go("/dashboard/devices/%s" % hostile)
    check(b.text(b.find("#device-id")) == hostile, "device page of %s" % hostile)
    history = b.finds("#history tr.action")
    check(len(history) == 2, "its history lists both campaigns")
    check(sorted(b.text(b.find("td.state", r)) for r in history) == ["failure", "success"],
          "... with their states")
    fb = b.finds("#feedback tr.feedback")
    check(len(fb) == 4, "four feedback messages (%d)" % len(fb))
    cells = [c for c in b.finds("#feedback td.details") if HOSTILE in b.text(c)]
    check(len(cells) == 1, "the hostile detail appears as text in the feedback")
    check(cells and not b.finds("script", cells[0]), "no script element inside that cell")
    check(not b.finds("script"), "no script element on the device page")
    if facts.get("named"):
        b.go("/dashboard/devices/%s" % facts["named"])
        name = b.find("#device-name")
        check(b.text(name) == 'Pump <b>7</b> & "north"' and not b.finds("b", name),
              "a device name with markup is shown as text")
    b.go("/dashboard/devices/dev-05")
    check("<img src=x onerror=alert(4)>" in b.text(b.find("#attributes")) and not b.finds("main img"),
          "device attributes with markup are shown as text")
    check(b.text(b.find("#device-polls")) != "0" and b.finds("#device-last-seen time"),
          "the device page shows polls and last seen")
    b.go("/dashboard/devices/no-such-device")
    check("No such device" in b.text(b.find("h1")), "an unknown device: a not-found page")

    # ---- logout
    b.click(b.find("#logout"))
    check(b.wait_path("/dashboard/login") == "/dashboard/login", "logout lands on the login page")
    b.go("/dashboard")
    check(b.path() == "/dashboard/login", "after logout /dashboard asks for a login again")
except (WebDriverError, OSError, KeyError, ValueError) as e:
    check(False, "browser session: %s" % e)
finally:
    b.quit()

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all dashboard checks passed")
PY
