#!/usr/bin/env python3
"""The whole update story on an emulated Cortex-M3 (QEMU mps2-an385).

v1 boots and confirms; v1 streams v2 in, sets it pending and resets; the
bootloader swaps; v2 boots on trial and confirms; v3 (wrong key) is refused by
the agent while streaming and, planted directly as a request, by the
bootloader; v4 (never confirms) is reverted after its trial boots. Each QEMU
run's exit status and UART log are checked. Must never pass on a log that does
not show the step it asserts.

usage: story.py OUT_DIR   (OUT_DIR from tests/qemu/build.sh)
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_harness as h  # noqa: E402


def main():
    out = os.path.abspath(sys.argv[1])
    img = os.path.join(out, "images")
    work = os.path.join(out, "story")
    os.makedirs(work, exist_ok=True)
    q = h.Qemu(os.path.join(out, "cm3", "airlock_boot_mps2.elf"), work)
    for name in ("v2.img", "v3-wrong-key.img", "v4-noconfirm.img"):
        if not os.path.exists(os.path.join(work, name)):
            os.symlink(os.path.join(img, name), os.path.join(work, name))
    t0 = time.time()

    def step(title, **ctl):
        rc, log = q.run(**ctl)
        print("== %s: exit %d" % (title, rc))
        h.expect("FLASH RULE" not in log, title + ": a flash rule was broken", log)
        h.expect("fault" not in log, title + ": the CPU faulted", log)
        return rc, log

    # 1. Factory: v1 in the primary, nothing else. It boots and is confirmed.
    h.blank_flash(q.flash)
    with open(os.path.join(img, "v1.img"), "rb") as f:
        h.plant(q.flash, h.PRIMARY_OFF, f.read())
    rc, log = step("v1 boots")
    h.expect(rc == h.EXIT_OK, "v1: exit status %d, want 0" % rc, log)
    h.expect(h.boot_actions(log) == [("normal", "0")], "v1: bootloader decision", log)
    h.expect(h.versions_booted(log) == ["1.0.0"], "v1: app version", log)
    h.expect("confirmed=1" in log and "app: health check ok" in log, "v1: confirmed", log)

    # 2. v1 streams v2 (256-byte writes), sets it pending (test) and resets; swap; v2 confirms.
    rc, log = step("v1 streams v2", cmd=h.CMD_STREAM, stream="v2.img")
    h.expect(rc == h.EXIT_OK, "v2: exit status %d, want 0" % rc, log)
    h.expect("app: update 2.0.0+0 verified and pending (test)" in log, "v2: pending", log)
    h.expect(h.boot_actions(log) == [("normal", "0"), ("installed", "0")],
             "v2: bootloader decisions (normal, then installed)", log)
    h.expect(h.versions_booted(log) == ["1.0.0", "2.0.0"], "v2: versions booted", log)
    h.expect("trial=1" in log.split("running version 2.0.0")[1], "v2: booted on trial", log)
    h.expect("app: confirmed" in log.split("running version 2.0.0")[1] and "app: done" in log,
             "v2: confirmed itself", log)

    rc, log = step("v2 boots again")
    h.expect(rc == h.EXIT_OK and h.boot_actions(log) == [("normal", "0")] and
             h.versions_booted(log) == ["2.0.0"] and "confirmed=1" in log,
             "v2 kept after a reset", log)

    # 3a. v3 signed with a key the device does not trust: the agent refuses it.
    rc, log = step("v2 streams v3 (wrong key)", cmd=h.CMD_STREAM, stream="v3-wrong-key.img")
    h.expect(rc == h.EXIT_OK, "v3: exit status %d, want 0" % rc, log)
    h.expect("app: update refused at write: UNKNOWN_KEY" in log, "v3: agent refusal", log)
    h.expect(h.versions_booted(log) == ["2.0.0"], "v3: no reset, v2 runs", log)

    # 3b. The same v3 planted as a test request (imgtool --pad) behind the agent's back:
    #     the bootloader refuses it, consumes the request and boots v2.
    with open(os.path.join(img, "v3-wrong-key-padded.img"), "rb") as f:
        h.plant(q.flash, h.SECONDARY_OFF + h.SECTOR, f.read())
    rc, log = step("bootloader meets v3 (wrong key)")
    h.expect(rc == h.EXIT_OK, "v3 planted: exit status %d, want 0" % rc, log)
    acts = h.boot_actions(log)
    h.expect(len(acts) == 1 and acts[0][0] == "rejected", "v3 planted: rejected", log)
    h.expect("airlock-boot: why: UNKNOWN_KEY" in log, "v3 planted: why", log)
    h.expect(h.versions_booted(log) == ["2.0.0"], "v3 planted: v2 boots", log)
    rc, log = step("v2 after the refusal")
    h.expect(rc == h.EXIT_OK and h.boot_actions(log) == [("normal", "0")] and
             h.versions_booted(log) == ["2.0.0"], "v3 request not retried", log)

    # 4. v4 never confirms: two trial boots, then the bootloader reverts to v2.
    rc, log = step("v2 streams v4 (never confirms)", cmd=h.CMD_STREAM,
                   stream="v4-noconfirm.img")
    h.expect(rc == h.EXIT_OK, "v4: exit status %d, want 0" % rc, log)
    acts = [a for a, _ in h.boot_actions(log)]
    h.expect(acts == ["normal", "installed", "trial", "reverted"],
             "v4: bootloader decisions, got %s" % acts, log)
    h.expect(h.versions_booted(log) == ["2.0.0", "4.0.0", "4.0.0", "2.0.0"],
             "v4: versions booted", log)
    h.expect(log.count("NOT confirming") == 2, "v4: did not confirm", log)
    h.expect("reverted=1" in log.split("running version 2.0.0")[-1], "v2 sees the revert", log)
    rc, log = step("v2 after the revert")
    h.expect(rc == h.EXIT_OK and h.boot_actions(log) == [("normal", "0")] and
             h.versions_booted(log) == ["2.0.0"] and "confirmed=1" in log,
             "v2 stays after the revert", log)

    print("qemu story: all steps passed (%d QEMU runs, %.1f s)" % (q.runs, time.time() - t0))


if __name__ == "__main__":
    h.run_main(main)
