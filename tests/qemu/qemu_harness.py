"""Drive the airlock bootloader and the example firmware in QEMU (mps2-an385).

Shared by tests/qemu/*.py and bench/qemu-powercut, bench/cortex-m: flash files,
signed images, the control block (port/qemu-mps2/board.h), one QEMU run per
power-on. It never writes the slots through -device loader (that would rewrite
the flash file at every reset); only through the file, before QEMU starts.
"""

import os
import re
import shutil
import struct
import subprocess
import sys

FLASH_FILE_SIZE = 16 << 20
PRIMARY_OFF = 0x10000
PRIMARY_SIZE = 0x50000
SECONDARY_OFF = 0x60000
SECONDARY_SIZE = 0x51000
SECTOR = 0x1000
HDR_SIZE = 0x200
CTL_OFF = 0xFFF000
CTL_MAGIC = 0x54435141

CMD_NONE, CMD_STREAM = 0, 1
FLAG_STOP_PENDING, FLAG_PERMANENT, FLAG_QUIET = 1, 2, 4
TEAR_NOTHING, TEAR_HALF, TEAR_DONE = 0, 1, 2

EXIT_OK, EXIT_APP_FAIL, EXIT_BOOT_FAILED, EXIT_FLASH_RULE, EXIT_FAULT = 0, 1, 2, 3, 4
EXIT_TOO_MANY_BOOTS, EXIT_CUT = 5, 42

QEMU = os.environ.get("AIRLOCK_QEMU", "qemu-system-arm")


class Fail(Exception):
    """A check of the story failed; the message says which and shows the log."""


def run_main(main):
    """Run a harness script's main(): a Fail prints and exits 1."""
    try:
        main()
    except Fail as e:
        print("FAIL:", e)
        sys.exit(1)


def blank_flash(path):
    with open(path, "wb") as f:
        f.write(b"\xff" * FLASH_FILE_SIZE)


def plant(path, off, data):
    """Factory programming: bytes into the flash file before QEMU starts."""
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def write_ctl(path, cut_at=0, tear=TEAR_HALF, cmd=CMD_NONE, flags=0, max_boots=0, chunk=0,
              stream="", cut_ticks=0):
    raw = struct.pack("<8I", CTL_MAGIC, cut_at, tear, cmd, flags, max_boots, chunk, cut_ticks)
    name = stream.encode()
    if len(name) >= 96:
        raise ValueError("stream path too long: " + stream)
    raw += name + b"\0" * (96 - len(name))
    with open(path, "r+b") as f:
        f.seek(CTL_OFF)
        f.write(raw + b"\xff" * (SECTOR - len(raw)))


def sign(airlock, raw, out, version, key=None, pad=None, extra=()):
    cmd = [airlock, "sign", "-q", "-H", hex(HDR_SIZE), "--pad-header", "-v", version,
           "-S", hex(PRIMARY_SIZE), "--align", "4"]
    if key:
        cmd += ["-k", key]
    if pad:
        cmd += [pad]
    cmd += list(extra) + [raw, out]
    subprocess.run(cmd, check=True)


class Qemu:
    """One board: a bootloader ELF and a flash file in a work directory."""

    def __init__(self, bootloader, workdir, icount="shift=0", timeout=60):
        self.bootloader = bootloader
        self.workdir = workdir
        self.flash = os.path.join(workdir, "flash.img")
        self.icount = icount
        self.timeout = timeout
        self.runs = 0

    def run(self, **ctl):
        """One power-on: returns (exit status, UART log)."""
        write_ctl(self.flash, **ctl)
        cmd = [QEMU, "-M", "mps2-an385", "-nographic", "-monitor", "none", "-serial", "stdio",
               "-semihosting-config", "enable=on,target=native",
               "-object", "memory-backend-file,id=mem,size=16M,mem-path=flash.img,share=on",
               "-machine", "memory-backend=mem", "-kernel", self.bootloader]
        if self.icount:
            cmd += ["-icount", self.icount]
        self.runs += 1
        try:
            p = subprocess.run(cmd, cwd=self.workdir, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            log = (e.stdout or b"").decode(errors="replace").replace("\r", "")
            raise Fail("QEMU did not finish in %d s:\n%s" % (self.timeout, log))
        return p.returncode, p.stdout.decode(errors="replace").replace("\r", "")

    def snapshot(self, name):
        dst = os.path.join(self.workdir, name)
        shutil.copyfile(self.flash, dst)
        return dst

    def restore(self, src):
        shutil.copyfile(src, self.flash)


def expect(cond, what, log):
    if not cond:
        raise Fail("%s\n---- UART log ----\n%s------------------" % (what, log))


def versions_booted(log):
    """Versions the app reported, in order ("2.0.0"...)."""
    return re.findall(r"app: running version (\d+\.\d+\.\d+)\+\d+", log)


def boot_actions(log):
    return re.findall(r"airlock-boot: action=(\w+) rc=(-?\d+)", log)


def ops_at_end(log):
    """Flash operations of the power-on, as the app printed them last."""
    m = re.findall(r"\(flash ops (?:this power-on )?(\d+)\)", log)
    if not m:
        raise Fail("no flash operation count in the log:\n" + log)
    return int(m[-1])
