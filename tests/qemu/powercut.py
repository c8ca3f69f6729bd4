#!/usr/bin/env python3
"""Power cuts on real machine code: the update story on QEMU's Cortex-M3 with
the power cut at flash operation k (the Cortex-M flash port tears that prog or
erase, then the board "loses power": QEMU exits), then QEMU started again on
the same flash file. After every cut the device must boot v1 or v2, verified
by the bootloader, never anything else, and end on v2 confirmed. Must never
count a run that did not reach its cut as a cut point.

Phases (each from its own snapshot of the flash file):
  swap:   v2 pending (test) in the secondary; cut at each operation of the
          bootloader's swap and of v2's confirmation; then boot: v2 must boot.
  stream: v1 confirmed; v1 streams v2; cut at each operation of the download
          and of set_pending; then boot: v1 must boot (or v2 when the request
          was durable), and a second stream must install v2.
  revert: v2 confirmed, v4 (never confirms) pending; cut at each operation
          of its install, its trial boots and the revert; then boot: v2 or v4
          may boot, and v2, confirmed, must end up running.
  insn:   v2 pending; QEMU under -icount shift=0 (deterministic); the cut is a
          TIMER1 interrupt after a seeded random number of instructions of the
          bootloader's run, wherever the CPU is (inside a flash write too);
          then boot: v2 must boot.

usage: powercut.py OUT_DIR PHASE [--step N] [--offset I] [--double] [--tear all]
                   [--points N --seed S]   (insn phase)
  --step N --offset I: only cut points k with k % N == I (to shard over ctest
  jobs); --double: after each cut, also cut the recovery at every one of its
  operations (bench only: quadratic); --tear all: each point with all three
  tear kinds (default: the kind rotates with k).
"""

import argparse
import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_harness as h  # noqa: E402

TEARS = (h.TEAR_NOTHING, h.TEAR_HALF, h.TEAR_DONE)
TEAR_NAMES = ("nothing", "half", "done")


def versions_ok(log, allowed):
    v = h.versions_booted(log)
    return bool(v) and all(x in allowed for x in v)


class Runner:
    def __init__(self, out, phase, tag):
        self.out = out
        self.img = os.path.join(out, "images")
        self.work = os.path.join(out, "powercut-%s-%s" % (phase, tag))
        os.makedirs(self.work, exist_ok=True)
        for name in ("v2.img", "v4-noconfirm.img"):
            link = os.path.join(self.work, name)
            if not os.path.exists(link):
                os.symlink(os.path.join(self.img, name), link)
        # No -icount: the cut is by operation count, deterministic without it.
        self.q = h.Qemu(os.path.join(out, "cm3", "airlock_boot_mps2.elf"), self.work,
                        icount=None)
        self.cuts = 0

    def base_v1(self):
        h.blank_flash(self.q.flash)
        with open(os.path.join(self.img, "v1.img"), "rb") as f:
            h.plant(self.q.flash, h.PRIMARY_OFF, f.read())
        rc, log = self.q.run()
        h.expect(rc == h.EXIT_OK and h.versions_booted(log) == ["1.0.0"], "base: v1 boots", log)
        return self.q.snapshot("base-v1.img")

    def base_pending(self, v1):
        self.q.restore(v1)
        rc, log = self.q.run(cmd=h.CMD_STREAM, stream="v2.img", flags=h.FLAG_STOP_PENDING)
        h.expect(rc == h.EXIT_OK and "verified and pending (test)" in log, "base: v2 pending",
                 log)
        return self.q.snapshot("base-pending.img")

    def count_ops(self, base, **ctl):
        """Flash operations of the uninterrupted run (the cut points)."""
        self.q.restore(base)
        rc, log = self.q.run(**ctl)
        h.expect(rc == h.EXIT_OK, "uninterrupted run: exit %d" % rc, log)
        return h.ops_at_end(log), log

    def cut(self, k, tear, what, **ctl):
        rc, log = self.q.run(cut_at=k, tear=tear, **ctl)
        h.expect(rc == h.EXIT_CUT and "POWER CUT at flash operation %d " % k in log,
                 "%s: cut at op %d (%s) did not happen (exit %d)" % (what, k, TEAR_NAMES[tear], rc),
                 log)
        h.expect("FLASH RULE" not in log, "%s: flash rule broken before the cut" % what, log)
        self.cuts += 1
        return log

    def check_boot(self, what, allowed, log, rc):
        h.expect("FLASH RULE" not in log, what + ": a flash rule was broken", log)
        h.expect(rc == h.EXIT_OK, "%s: exit %d, want 0" % (what, rc), log)
        h.expect(versions_ok(log, allowed), "%s: booted %s, allowed %s"
                 % (what, h.versions_booted(log), allowed), log)
        acts = h.boot_actions(log)
        h.expect(acts and all(rc_ == "0" and a != "failed" for a, rc_ in acts),
                 what + ": every boot verified", log)


def swap_phase(r, base, points, tears, double):
    n, log = r.count_ops(base)
    # The uninterrupted run must really swap: else there is nothing to cut.
    h.expect([a for a, _ in h.boot_actions(log)][:1] == ["installed"]
             and h.versions_booted(log)[-1:] == ["2.0.0"] and "app: done" in log,
             "uninterrupted swap run installs and boots v2", log)
    for k in points(n):
        for tear in tears(k):
            what = "swap cut %d/%d %s" % (k, n, TEAR_NAMES[tear])
            r.q.restore(base)
            r.cut(k, tear, what)
            cut_img = r.q.snapshot("cut.img") if double else None
            rc, log = r.q.run()
            r.check_boot(what + ", recovery", ("1.0.0", "2.0.0"), log, rc)
            h.expect(h.versions_booted(log)[-1] == "2.0.0" and "app: done" in log,
                     what + ": v2 must end up running (the request was durable)", log)
            if double:
                m = h.ops_at_end(log)
                for j in range(1, m + 1):
                    r.q.restore(cut_img)
                    r.cut(j, TEARS[j % 3], what + ", recovery cut %d" % j)
                    rc, log = r.q.run()
                    r.check_boot(what + ", recovery cut %d, recovery" % j,
                                 ("1.0.0", "2.0.0"), log, rc)
                    h.expect(h.versions_booted(log)[-1] == "2.0.0", what + ": v2 at the end",
                             log)
            if not (double or k % 4 == 0):
                continue
            # v2 stays confirmed.
            rc, log = r.q.run()
            r.check_boot(what + ", next boot", ("2.0.0",), log, rc)
            h.expect("confirmed=1" in log, what + ": v2 confirmed", log)


def stream_phase(r, base, points, tears, double):
    n, log = r.count_ops(base, cmd=h.CMD_STREAM, stream="v2.img", flags=h.FLAG_STOP_PENDING)
    h.expect("verified and pending (test)" in log,
             "uninterrupted stream run downloads v2 and sets it pending", log)
    for k in points(n):
        for tear in tears(k):
            what = "stream cut %d/%d %s" % (k, n, TEAR_NAMES[tear])
            r.q.restore(base)
            r.cut(k, tear, what, cmd=h.CMD_STREAM, stream="v2.img", flags=h.FLAG_STOP_PENDING)
            rc, log = r.q.run()
            r.check_boot(what + ", recovery", ("1.0.0", "2.0.0"), log, rc)
            if double or k % 16 == 0:
                # The device can still take the update after the cut.
                rc, log = r.q.run(cmd=h.CMD_STREAM, stream="v2.img")
                r.check_boot(what + ", stream again", ("1.0.0", "2.0.0"), log, rc)
                h.expect(h.versions_booted(log)[-1] == "2.0.0", what + ": v2 installed", log)


def base_revert(r, v1):
    """v2 confirmed running, v4 (never confirms) pending as a test request."""
    r.q.restore(v1)
    rc, log = r.q.run(cmd=h.CMD_STREAM, stream="v2.img")
    h.expect(rc == h.EXIT_OK and h.versions_booted(log)[-1] == "2.0.0", "base: v2 runs", log)
    rc, log = r.q.run(cmd=h.CMD_STREAM, stream="v4-noconfirm.img", flags=h.FLAG_STOP_PENDING)
    h.expect(rc == h.EXIT_OK and "update 4.0.0+0 verified and pending (test)" in log,
             "base: v4 pending", log)
    return r.q.snapshot("base-revert.img")


def revert_phase(r, base, points, tears):
    n, log = r.count_ops(base)
    h.expect([a for a, _ in h.boot_actions(log)] == ["installed", "trial", "reverted"],
             "uninterrupted revert run", log)
    for k in points(n):
        for tear in tears(k):
            what = "revert cut %d/%d %s" % (k, n, TEAR_NAMES[tear])
            r.q.restore(base)
            r.cut(k, tear, what)
            rc, log = r.q.run()
            r.check_boot(what + ", recovery", ("2.0.0", "4.0.0"), log, rc)
            h.expect(h.versions_booted(log)[-1] == "2.0.0" and "app: done" in log
                     and "confirmed=1" in log.rsplit("running version", 1)[1],
                     what + ": v2 (confirmed) must end up running", log)


def insn_phase(r, base, points, seed, npoints):
    """Cuts at seeded random instruction counts of the bootloader's swap run."""
    r.q.icount = "shift=0"  # deterministic: 1 ns of virtual time per instruction
    r.q.restore(base)
    rc, log = r.q.run()
    h.expect(rc == h.EXIT_OK, "uninterrupted swap run: exit %d" % rc, log)
    m = re.search(r"reset-to-jump ticks=(\d+)", log)
    h.expect(m, "no reset-to-jump figure", log)
    end = int(m.group(1)) - 100  # stay clear of cm_jump, which masks interrupts
    total_ops = int(re.search(r"flash ops this power-on=(\d+)", log).group(1))
    mid_swap = 0
    f = re.search(r"flash_ticks=(\d+)\.\.(\d+)", log)
    h.expect(f and 0 < int(f.group(1)) < int(f.group(2)) < end, "no swap window", log)
    lo, hi = int(f.group(1)), int(f.group(2))
    # Half the points anywhere in the bootloader's run (mostly verification),
    # half inside the window where it programs and erases.
    rng = random.Random(seed)
    ticks = [rng.randrange(1, end) if i % 2 else rng.randrange(lo - 50, hi + 50)
             for i in range(npoints)]
    print("insn phase: seed %d, %d cut points over ticks 1..%d, half of them in the swap's "
          "flash window %d..%d (1 tick = 40 instructions)" % (seed, npoints, end, lo, hi))
    for i in points(npoints):
        t = ticks[i - 1]
        what = "instruction cut at tick %d (point %d, seed %d)" % (t, i, seed)
        r.q.restore(base)
        rc, log = r.q.run(cut_ticks=t)
        h.expect(rc == h.EXIT_CUT and "POWER CUT at tick %d " % t in log,
                 what + ": did not happen (exit %d)" % rc, log)
        h.expect("FLASH RULE" not in log, what + ": flash rule broken before the cut", log)
        r.cuts += 1
        ops = int(re.search(r"flash operation (\d+)", log).group(1))
        mid_swap += 0 < ops < total_ops
        rc, log = r.q.run()
        r.check_boot(what + ", recovery", ("1.0.0", "2.0.0"), log, rc)
        h.expect(h.versions_booted(log)[-1] == "2.0.0" and "app: done" in log,
                 what + ": v2 must end up running", log)
    print("insn phase: %d of the cuts landed after the swap's first flash operation "
          "and before its last (%d)" % (mid_swap, total_ops))
    h.expect(mid_swap > 0 or npoints < 10, "no instruction cut landed inside the swap", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("phase", choices=("swap", "stream", "revert", "insn"))
    ap.add_argument("--points", type=int, default=40, help="insn: random cut points")
    ap.add_argument("--seed", type=int, default=1, help="insn: seed of the cut points")
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--double", action="store_true")
    ap.add_argument("--tear", choices=("rotate", "all"), default="rotate")
    a = ap.parse_args()
    t0 = time.time()
    r = Runner(os.path.abspath(a.out), a.phase, "%d-%d%s" % (a.step, a.offset,
                                                           "-double" if a.double else ""))

    def points(n):
        return [k for k in range(1, n + 1) if k % a.step == a.offset % a.step]

    def tears(k):
        return TEARS if a.tear == "all" else (TEARS[k % 3],)

    v1 = r.base_v1()
    if a.phase == "swap":
        swap_phase(r, r.base_pending(v1), points, tears, a.double)
    elif a.phase == "revert":
        revert_phase(r, base_revert(r, v1), points, tears)
    elif a.phase == "insn":
        insn_phase(r, r.base_pending(v1), points, a.seed, a.points)
    else:
        stream_phase(r, v1, points, tears, a.double)
    h.expect(r.cuts > 0, "phase %s made no cut at all" % a.phase, "")
    print("qemu powercut %s: %d cuts, every recovery booted a verified image it may "
          "(%d QEMU runs, %.1f s)" % (a.phase, r.cuts, r.q.runs, time.time() - t0))


if __name__ == "__main__":
    h.run_main(main)
