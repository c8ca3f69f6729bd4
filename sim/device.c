/*
 * The device simulator (device.h): provisioning, then the boot loop --
 * bootloader core on the flash file, payload as a process, watchdog, exit
 * codes, power cuts -- with one log line per event. The flash file is
 * opened only while the bootloader runs (never while the firmware does), so
 * the two never disagree about which units are programmed.
 */
#define _GNU_SOURCE

#include "device.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "airlock/boot.h"
#include "airlock/crypto_openssl.h"
#include "airlock/ddi.h"
#include "airlock/ota.h"
#include "airlock/settings.h"
#include "bootrom.h"
#include "devproto.h"

extern char **environ;

const char *sim_dev_stop_name(int stop)
{
    static const char *const names[] = {"goal",       "limit",    "unfinished", "halted",
                                        "unbootable", "not-exec", "error"};
    return stop >= 0 && stop <= SIM_DEV_ERROR ? names[stop] : "?";
}

/* ---- provisioning ------------------------------------------------------------ */

static int erase_area(const airlock_area_t *a)
{
    for (uint32_t off = a->off, start, size; off < a->off + a->size; off = start + size) {
        if (airlock_flash_sector(a->flash, off, &start, &size) != 0 ||
            a->flash->erase(a->flash->ctx, start) != 0) {
            return -1;
        }
    }
    return 0;
}

int sim_dev_provision(devflash_t *d, const sim_dev_prov_t *p, char *err, size_t errlen)
{
    const airlock_layout_t *lay = &d->lf.layout;
    int rc;

    if (p->nkeys || p->engine || p->max_trials || p->allow_unsigned || p->image) {
        static bootrom_t rom;
        memset(&rom, 0, sizeof(rom));
        if (bootrom_read(lay, &rom) != 0) {
            memset(&rom, 0, sizeof(rom));
        }
        const char *engine =
            p->engine ? p->engine
            : rom.engine[0]
                ? rom.engine
                : (lay->area[AIRLOCK_AREA_SCRATCH].flash ? "swap-scratch" : "swap-move");
        if (!airlock_engine_find(engine)) {
            snprintf(err, errlen, "unknown engine %s", engine);
            return -1;
        }
        char name[BOOTROM_ENGINE_MAX];
        snprintf(name, sizeof(name), "%s", engine); /* engine may be rom.engine itself */
        memcpy(rom.engine, name, sizeof(name));
        if (p->max_trials || !rom.max_trials) {
            rom.max_trials = p->max_trials ? p->max_trials : 1;
        }
        rom.allow_unsigned = p->allow_unsigned || (rom.allow_unsigned && !p->nkeys);
        if (p->nkeys) {
            if (p->nkeys > BOOTROM_MAX_KEYS) {
                snprintf(err, errlen, "at most %d keys", BOOTROM_MAX_KEYS);
                return -1;
            }
            rom.nkeys = (unsigned)p->nkeys;
            for (size_t i = 0; i < p->nkeys; i++) {
                if (p->keys[i].der_len > BOOTROM_KEY_MAX) {
                    snprintf(err, errlen, "key %zu too large for the boot record", i + 1);
                    return -1;
                }
                memcpy(rom.der[i], p->keys[i].der, p->keys[i].der_len);
                rom.keys[i].type = p->keys[i].type;
                rom.keys[i].der = rom.der[i];
                rom.keys[i].der_len = p->keys[i].der_len;
            }
        }
        if (rom.nkeys == 0 && !rom.allow_unsigned) {
            snprintf(err, errlen, "the bootloader needs trusted keys (-k) or --allow-unsigned");
            return -1;
        }
        if ((rc = bootrom_write(lay, &rom)) != 0) {
            snprintf(err, errlen, "cannot write the bootloader area: %s", airlock_strerror(rc));
            return -1;
        }
    }
    if (p->image) {
        /* factory programming: the image at the start of the primary, the rest blank */
        for (int id = AIRLOCK_AREA_PRIMARY; id < AIRLOCK_AREA_COUNT; id++) {
            if (lay->area[id].flash && erase_area(&lay->area[id]) != 0) {
                snprintf(err, errlen, "cannot erase %s", airlock_area_name(id));
                return -1;
            }
        }
        const airlock_area_t *pri = &lay->area[AIRLOCK_AREA_PRIMARY];
        uint32_t w = pri->flash->write_size;
        size_t len = (p->image_len + w - 1) / w * w;
        if (len > pri->size) {
            snprintf(err, errlen, "image of %zu bytes does not fit the primary slot (%u bytes)",
                     p->image_len, (unsigned)pri->size);
            return -1;
        }
        uint8_t *buf = malloc(len);
        if (!buf) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memset(buf, pri->flash->erased_val, len);
        memcpy(buf, p->image, p->image_len);
        rc = pri->flash->prog(pri->flash->ctx, pri->off, buf, (uint32_t)len);
        free(buf);
        if (rc != 0) {
            snprintf(err, errlen, "cannot program the primary slot");
            return -1;
        }
    }
    airlock_setting_t kv[5];
    size_t n = 0;
    const char *keys[5] = {DEV_KEY_SERVER, DEV_KEY_TENANT, DEV_KEY_CONTROLLER, DEV_KEY_AUTH,
                           DEV_KEY_CA};
    const char *vals[5] = {p->server, p->tenant, p->controller, p->auth, p->ca_pem};
    for (int i = 0; i < 5; i++) {
        if (vals[i]) {
            kv[n].key = keys[i];
            kv[n].val = vals[i];
            kv[n].len = strlen(vals[i]);
            n++;
        }
    }
    if (n) {
        airlock_settings_t st;
        if (!d->lf.settings.flash) {
            snprintf(err, errlen, "layout %s has no settings area (see docs/layout.md)",
                     d->lf.source);
            return -1;
        }
        if ((rc = airlock_settings_open(&st, &d->lf.settings)) != 0 ||
            (rc = airlock_settings_set_many(&st, kv, n)) != 0) {
            snprintf(err, errlen, "cannot write the settings: %s",
                     rc == AIRLOCK_ERR_NOMEM ? "they do not fit the settings area"
                                             : airlock_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* ---- the run ----------------------------------------------------------------- */

struct run {
    const sim_dev_opts_t *o;
    sim_dev_result_t *r;
    uint64_t rng;
    double t0;
    bool cut_op_pending;   /* --cut-at-op not yet happened */
    bool cut_boot_pending; /* --cut-boot-at-op not yet happened */
    /* what the firmware said in this boot */
    char fw_version[32];
    bool fw_confirmed;
    bool idle;
    double idle_since;    /* when the current idle stretch began */
    char exec_error[160]; /* the payload could not be started */
    unsigned random_cuts; /* --cut-random kills so far */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rnd(struct run *R)
{
    uint64_t z = (R->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rnd01(struct run *R)
{
    return (double)(rnd(R) >> 11) / 9007199254740992.0;
}

static void say(struct run *R, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct run *R, const char *kind, const char *fmt, ...)
{
    char msg[1200], line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s %s: %s", R->r->id, kind, msg);
    if (R->o->log) {
        R->o->log(R->o->log_ctx, line);
    }
}

/* The value of key in an event line ("k=v k2=v2"), into buf; false if absent. */
static bool ev_get(const char *ev, const char *key, char *buf, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = ev; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p == ev || p[-1] == ' ') && p[kl] == '=') {
            p += kl + 1;
            size_t l = strcspn(p, " ");
            snprintf(buf, n, "%.*s", (int)(l < n ? l : n - 1), p);
            return true;
        }
    }
    buf[0] = '\0';
    return false;
}

static uint64_t ev_u64(const char *ev, const char *key)
{
    char b[32];
    return ev_get(ev, key, b, sizeof(b)) ? strtoull(b, NULL, 10) : 0;
}

/* An event line from the firmware ("@ev NAME k=v ..."). */
static void on_event(struct run *R, const char *ev)
{
    char name[32], v[64];
    size_t nl = strcspn(ev, " ");
    snprintf(name, sizeof(name), "%.*s", (int)(nl < sizeof(name) ? nl : sizeof(name) - 1), ev);
    const char *args = ev + nl + (ev[nl] ? 1 : 0);
    bool was_idle = R->idle;
    if (strcmp(name, "start") == 0) {
        ev_get(args, "version", R->fw_version, sizeof(R->fw_version));
        ev_get(args, "state", v, sizeof(v));
        R->fw_confirmed = strcmp(v, "confirmed") == 0;
    } else if (strcmp(name, "confirmed") == 0) {
        ev_get(args, "version", R->fw_version, sizeof(R->fw_version));
        R->fw_confirmed = true;
    } else if (strcmp(name, "idle") == 0) {
        if (!R->idle) {
            R->idle_since = now_s();
        }
        R->idle = true;
    } else if (strcmp(name, "unhealthy") == 0) {
        R->r->health_failures++;
    } else if (strcmp(name, "exec-failed") == 0) {
        snprintf(R->exec_error, sizeof(R->exec_error), "%s", args);
    } else if (strcmp(name, "download") == 0) {
        R->r->bytes_downloaded += ev_u64(args, "bytes");
        R->r->resumes += (unsigned)ev_u64(args, "resumes");
    }
    if (strcmp(name, "idle") != 0 && strcmp(name, "download") != 0) {
        R->idle = false; /* anything else the firmware reports is activity */
    }
    if (strcmp(name, "idle") != 0 || !was_idle) {
        say(R, name, "%s", args);
    }
}

static bool goal_met(const struct run *R)
{
    if (!R->idle || now_s() - R->idle_since < R->o->idle_for_s) {
        return false;
    }
    if (R->o->until_version) {
        return R->fw_confirmed && strcmp(R->fw_version, R->o->until_version) == 0;
    }
    return R->o->until_idle;
}

/* Does payload look like an executable of this host? Compares with our own ELF header. */
static bool host_executable(const uint8_t *p, size_t n, char *why, size_t whylen)
{
    Elf64_Ehdr self;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, &self, sizeof(self)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n < sizeof(Elf32_Ehdr) || memcmp(p, ELFMAG, SELFMAG) != 0) {
        snprintf(why, whylen, "not an ELF executable (starts %02x %02x %02x %02x)",
                 n > 0 ? p[0] : 0, n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0);
        return false;
    }
    if (got == (ssize_t)sizeof(self)) {
        uint16_t mach = (uint16_t)(p[18] | p[19] << 8);
        if (p[EI_CLASS] != self.e_ident[EI_CLASS] || mach != self.e_machine) {
            snprintf(why, whylen, "an ELF for machine %u (class %u), this host runs machine %u",
                     mach, p[EI_CLASS], self.e_machine);
            return false;
        }
    }
    return true;
}

enum { BOOT_RUN, BOOT_AGAIN, BOOT_STOP };

/*
 * Run the bootloader once on the flash file. BOOT_RUN: *memfd holds the
 * chosen verified payload. BOOT_AGAIN: a power cut hit it; boot again.
 * BOOT_STOP: r->stop is set.
 */
static int bootloader(struct run *R, int *memfd)
{
    sim_dev_result_t *r = R->r;
    devflash_t *d = NULL;
    static bootrom_t rom;
    static uint8_t work[4096];
    static airlock_boot_t b;
    airlock_boot_cfg_t cfg;
    airlock_boot_result_t res;
    int rc;

    if (devflash_open(R->o->layout, R->o->flash, &d) != 0) {
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message), "cannot open the flash file %s", R->o->flash);
        return BOOT_STOP;
    }
    if ((rc = bootrom_read(&d->lf.layout, &rom)) != 0 ||
        (rc = bootrom_cfg(&rom, &d->lf.layout, &airlock_crypto_openssl, work, sizeof(work),
                          &cfg)) != 0) {
        devflash_close(d);
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message),
                 "no bootloader record on %s (provision it: -k KEY --image FILE)", R->o->flash);
        return BOOT_STOP;
    }
    if (R->cut_boot_pending) {
        devflash_cut_at(d, (uint64_t)R->o->cut_boot_at_op, R->o->seed + r->boots);
    }
    r->boots++;
    rc = airlock_boot(&b, &cfg, &res);
    if (d->cut) {
        R->cut_boot_pending = false;
        r->power_cuts++;
        say(R, "powercut", "boot %u: power cut in the bootloader's flash operation %lld (%s)",
            r->boots, (long long)R->o->cut_boot_at_op, airlock_sim_flash_cut_str(d->sims[0]));
        devflash_close(d);
        return BOOT_AGAIN;
    }
    char ver[32] = "";
    if (res.slot >= 0) {
        airlock_ddi_version_str(&res.version, ver, sizeof(ver));
    }
    snprintf(r->last_decision, sizeof(r->last_decision), "%s%s%s: %s",
             airlock_boot_action_name(res.action), ver[0] ? " " : "", ver,
             res.message ? res.message : "");
    say(R, "boot", "boot %u: %s (%s, %u erases, %u programs)", r->boots, r->last_decision,
        res.confirmed ? "confirmed" : "trial", (unsigned)b.stats.erases, (unsigned)b.stats.progs);
    if (res.action == AIRLOCK_BOOT_REVERTED) {
        r->reverts++;
    } else if (res.action == AIRLOCK_BOOT_INSTALLED) {
        r->installs++;
    }
    if (rc != 0 || res.slot < 0) {
        devflash_close(d);
        r->stop = SIM_DEV_UNBOOTABLE;
        snprintf(r->message, sizeof(r->message), "bootloader: nothing bootable: %s (%s)",
                 res.message ? res.message : "", airlock_strerror(rc));
        say(R, "bricked", "%s", r->message);
        return BOOT_STOP;
    }
    /* the payload: after the header, img_size bytes */
    const airlock_area_t *slot = &d->lf.layout.area[res.slot];
    uint8_t hdr[32];
    uint8_t *payload = NULL;
    uint32_t len = 0;
    if (slot->flash->read(slot->flash->ctx, slot->off, hdr, sizeof(hdr)) == 0) {
        len = (uint32_t)hdr[12] | (uint32_t)hdr[13] << 8 | (uint32_t)hdr[14] << 16 |
              (uint32_t)hdr[15] << 24;
    }
    if (len == 0 || res.image_off + len > slot->size || !(payload = malloc(len)) ||
        slot->flash->read(slot->flash->ctx, slot->off + res.image_off, payload, len) != 0) {
        free(payload);
        devflash_close(d);
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message), "cannot read the payload of the chosen image");
        return BOOT_STOP;
    }
    devflash_close(d);
    char why[160];
    if (!host_executable(payload, len, why, sizeof(why))) {
        free(payload);
        say(R, "crash", "boot %u: the payload of %s is %s: it cannot run on this host", r->boots,
            ver, why);
        if (res.confirmed) {
            r->stop = SIM_DEV_NOT_EXEC;
            snprintf(r->message, sizeof(r->message),
                     "the confirmed image %s is not an executable for this host: %s", ver, why);
            return BOOT_STOP;
        }
        r->crashes++; /* a trial image that cannot start: like a crash, the bootloader reverts */
        return BOOT_AGAIN;
    }
    int fd = memfd_create("airlock-firmware", MFD_CLOEXEC);
    size_t off = 0;
    while (fd >= 0 && off < len) {
        ssize_t n = write(fd, payload + off, len - off);
        if (n <= 0) {
            close(fd);
            fd = -1;
            break;
        }
        off += (size_t)n;
    }
    free(payload);
    if (fd < 0) {
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message), "memfd: %s", strerror(errno));
        return BOOT_STOP;
    }
    *memfd = fd;
    return BOOT_RUN;
}

enum { FW_REBOOT, FW_STOPPED };

static void relay_lines(struct run *R, char *buf, size_t *fill, bool flush)
{
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', *fill - (size_t)(start - buf))) != NULL) {
        *nl = '\0';
        if (strncmp(start, DEV_EVENT_PREFIX, strlen(DEV_EVENT_PREFIX)) == 0) {
            on_event(R, start + strlen(DEV_EVENT_PREFIX));
        } else {
            if (strncmp(start, "agent: ", 7) == 0) {
                R->idle = false; /* the agent only speaks up when something happens */
            }
            say(R, "fw", "%s", start);
        }
        start = nl + 1;
    }
    size_t left = *fill - (size_t)(start - buf);
    if (flush && left) {
        buf[left < 4095 ? (start - buf) + (ptrdiff_t)left : 4095] = '\0';
        say(R, "fw", "%s", start);
        left = 0;
    }
    memmove(buf, start, left);
    *fill = left;
}

/* Start the firmware from memfd and watch it until it exits or is killed. */
static int firmware(struct run *R, int memfd)
{
    sim_dev_result_t *r = R->r;
    const sim_dev_opts_t *o = R->o;
    int outp[2], wdp[2];
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(wdp, O_CLOEXEC) != 0) {
        close(memfd);
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message), "pipe: %s", strerror(errno));
        return FW_STOPPED;
    }
    bool cut_now = R->cut_op_pending;
    uint64_t seed = o->seed + r->boots;
    double start = now_s();
    double random_cut = -1;
    if (o->cut_random > 0 && rnd01(R) < o->cut_random &&
        (o->max_random_cuts == 0 || R->random_cuts < o->max_random_cuts)) {
        random_cut = start + rnd01(R) * (o->cut_window_ms ? o->cut_window_ms : 2000) / 1000.0;
    }
    R->idle = false;
    R->fw_confirmed = false;
    R->fw_version[0] = '\0';
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        char v[32];
        /* the device loses power with its simulator: no orphan keeps polling */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(DEV_EXIT_CONFIG);
        }
        dup2(outp[1], 1);
        dup2(outp[1], 2);
        int wfd = dup(wdp[1]); /* without O_CLOEXEC: the firmware inherits it */
        snprintf(v, sizeof(v), "%d", wfd);
        setenv(DEV_ENV_WATCHDOG_FD, v, 1);
        setenv(DEV_ENV_FLASH, o->flash, 1);
        setenv(DEV_ENV_LAYOUT, o->layout, 1);
        snprintf(v, sizeof(v), "%u", r->boots);
        setenv(DEV_ENV_BOOT, v, 1);
        snprintf(v, sizeof(v), "%g", o->time_scale > 0 ? o->time_scale : 1.0);
        setenv(DEV_ENV_TIME_SCALE, v, 1);
        snprintf(v, sizeof(v), "%llu", (unsigned long long)seed);
        setenv(DEV_ENV_SEED, v, 1);
        if (cut_now) {
            snprintf(v, sizeof(v), "%lld", (long long)o->cut_at_op);
            setenv(DEV_ENV_CUT_AT, v, 1);
        } else {
            unsetenv(DEV_ENV_CUT_AT);
        }
        char *argv[] = {"airlock-firmware", NULL};
        fexecve(memfd, argv, environ);
        /* e.g. memfd execution forbidden (vm.memfd_noexec): the sim stops, it is not a crash */
        printf("%sexec-failed fexecve: %s\n", DEV_EVENT_PREFIX, strerror(errno));
        fflush(stdout);
        _exit(DEV_EXIT_CONFIG);
    }
    close(outp[1]);
    close(wdp[1]);
    close(memfd);
    if (pid < 0) {
        close(outp[0]);
        close(wdp[0]);
        r->stop = SIM_DEV_ERROR;
        snprintf(r->message, sizeof(r->message), "fork: %s", strerror(errno));
        return FW_STOPPED;
    }
    uint32_t wd_ms = o->watchdog_ms ? o->watchdog_ms : 3000;
    double last_feed = start;
    double deadline = o->timeout_s > 0 ? R->t0 + o->timeout_s : -1;
    double kill_at = -1; /* after SIGTERM: SIGKILL if still there */
    bool stopping = false, watchdog = false, random_kill = false, timed_out = false;
    bool interrupted = false;
    char buf[4096];
    size_t fill = 0;
    bool out_open = true;
    int status = 0;
    for (;;) {
        double t = now_s();
        double next = last_feed + wd_ms / 1000.0;
        if (random_cut >= 0 && random_cut < next) {
            next = random_cut;
        }
        if (deadline >= 0 && deadline < next) {
            next = deadline;
        }
        if (kill_at >= 0 && kill_at < next) {
            next = kill_at;
        }
        if (R->idle && R->idle_since + o->idle_for_s < next) {
            next = R->idle_since + o->idle_for_s;
        }
        int ms = next <= t ? 0 : (int)((next - t) * 1000) + 1;
        if (!out_open && ms > 20) {
            ms = 20; /* output closed but not reaped yet: look again soon */
        }
        struct pollfd pf[2] = {{wdp[0], POLLIN, 0}, {outp[0], POLLIN, 0}};
        if (poll(pf, out_open ? 2 : 1, ms) < 0 && errno != EINTR) {
            /* cannot watch it any more: stop it, so what follows reads a real status */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        if (pf[0].revents & POLLIN) {
            char feed[64];
            if (read(wdp[0], feed, sizeof(feed)) > 0) {
                last_feed = now_s();
            }
        }
        if (out_open && (pf[1].revents & (POLLIN | POLLHUP))) {
            ssize_t k = read(outp[0], buf + fill, sizeof(buf) - 1 - fill);
            if (k > 0) {
                fill += (size_t)k;
                if (fill == sizeof(buf) - 1 && !memchr(buf, '\n', fill)) {
                    buf[fill++] = '\n'; /* one over-long line: cut it */
                }
                relay_lines(R, buf, &fill, false);
            } else {
                out_open = false;
            }
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
        t = now_s();
        if (!stopping && o->interrupt && *o->interrupt) {
            interrupted = stopping = true;
            kill(pid, SIGTERM);
            kill_at = t + 3.0;
        } else if (!stopping && goal_met(R)) {
            stopping = true;
            kill(pid, SIGTERM);
            kill_at = t + 3.0;
        } else if (kill_at >= 0 && t >= kill_at) {
            kill(pid, SIGKILL);
            kill_at = -1;
        } else if (!stopping && random_cut >= 0 && t >= random_cut) {
            random_kill = true;
            kill(pid, SIGKILL);
            random_cut = -1;
        } else if (!stopping && !watchdog && t >= last_feed + wd_ms / 1000.0) {
            watchdog = true;
            kill(pid, SIGKILL);
        } else if (!stopping && deadline >= 0 && t >= deadline) {
            timed_out = true;
            stopping = true;
            kill(pid, SIGTERM);
            kill_at = t + 3.0;
        }
    }
    /* whatever is left in the pipe */
    for (;;) {
        ssize_t k = read(outp[0], buf + fill, sizeof(buf) - 1 - fill);
        if (k <= 0) {
            break;
        }
        fill += (size_t)k;
        relay_lines(R, buf, &fill, fill == sizeof(buf) - 1 && !memchr(buf, '\n', fill));
    }
    relay_lines(R, buf, &fill, true);
    close(outp[0]);
    close(wdp[0]);

    double ran = now_s() - start;
    /* A Ctrl-C reaches the firmware too: it may have exited (halted) before
     * the loop saw the flag. Either way the run was interrupted. */
    if (!interrupted && o->interrupt && *o->interrupt) {
        interrupted = true;
    }
    if (interrupted) {
        bool goal = o->until_version || o->until_idle;
        r->stop = goal ? SIM_DEV_UNFINISHED : SIM_DEV_LIMIT;
        snprintf(r->message, sizeof(r->message), "interrupted%s",
                 goal ? " before the goal was reached" : "");
        return FW_STOPPED;
    }
    if (stopping && !timed_out && goal_met(R)) {
        r->stop = SIM_DEV_GOAL;
        snprintf(r->message, sizeof(r->message), "%s",
                 R->o->until_version ? "the wanted version runs confirmed"
                                     : "the firmware is idle");
        return FW_STOPPED;
    }
    if (timed_out) {
        bool goal = o->until_version || o->until_idle;
        r->stop = goal ? SIM_DEV_UNFINISHED : SIM_DEV_LIMIT;
        snprintf(r->message, sizeof(r->message), "timeout after %.0f s%s", o->timeout_s,
                 goal ? " before the goal was reached" : "");
        return FW_STOPPED;
    }
    if (watchdog) {
        r->watchdog_resets++;
        say(R, "watchdog", "boot %u: no watchdog feed for %u ms: reset after %.1f s", r->boots,
            wd_ms, ran);
        return FW_REBOOT;
    }
    if (random_kill) {
        r->power_cuts++;
        R->random_cuts++;
        say(R, "powercut", "boot %u: power cut at a random moment, %.3f s after start", r->boots,
            ran);
        return FW_REBOOT;
    }
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == DEV_EXIT_REBOOT) {
            say(R, "reboot", "boot %u: the firmware asked for a reboot", r->boots);
            return FW_REBOOT;
        }
        if (code == DEV_EXIT_POWERCUT && cut_now) {
            R->cut_op_pending = false;
            r->power_cuts++;
            say(R, "powercut", "boot %u: power cut in the firmware's flash operation %lld",
                r->boots, (long long)o->cut_at_op);
            return FW_REBOOT;
        }
        if (code == DEV_EXIT_HALT) {
            r->stop = SIM_DEV_HALTED;
            snprintf(r->message, sizeof(r->message), "the firmware halted");
            return FW_STOPPED;
        }
        if (code == DEV_EXIT_CONFIG && R->exec_error[0]) {
            r->stop = SIM_DEV_ERROR;
            snprintf(r->message, sizeof(r->message), "cannot start the payload: %s", R->exec_error);
            return FW_STOPPED;
        }
        if (code == DEV_EXIT_CONFIG) {
            r->stop = SIM_DEV_ERROR;
            snprintf(r->message, sizeof(r->message),
                     "the firmware cannot start (exit %d): see its messages above", code);
            return FW_STOPPED;
        }
        r->crashes++;
        say(R, "crash", "boot %u: the firmware exited with code %d after %.1f s", r->boots, code,
            ran);
        return FW_REBOOT;
    }
    r->crashes++;
    say(R, "crash", "boot %u: the firmware died of signal %d (%s) after %.1f s", r->boots,
        WTERMSIG(status), strsignal(WTERMSIG(status)), ran);
    return FW_REBOOT;
}

/* Final state from the flash: running version, confirmed or not, reverted. */
static void final_state(struct run *R)
{
    sim_dev_result_t *r = R->r;
    devflash_t *d = NULL;
    static bootrom_t rom;
    static uint8_t work[4096];
    airlock_boot_cfg_t cfg;
    airlock_ota_status_t st;
    snprintf(r->state, sizeof(r->state), "none");
    if (devflash_open(R->o->layout, R->o->flash, &d) != 0) {
        return;
    }
    if (bootrom_read(&d->lf.layout, &rom) == 0 &&
        bootrom_cfg(&rom, &d->lf.layout, &airlock_crypto_openssl, work, sizeof(work), &cfg) == 0 &&
        airlock_ota_state(&cfg, &st) == 0 && st.running_valid) {
        airlock_ddi_version_str(&st.running_version, r->version, sizeof(r->version));
        snprintf(r->state, sizeof(r->state), "%s",
                 st.pending     ? "pending-install"
                 : st.on_trial  ? "pending-test"
                 : st.confirmed ? "confirmed"
                                : "unconfirmed");
        r->reverted = st.reverted;
        if (st.reverted && st.reverted_valid) {
            airlock_ddi_version_str(&st.reverted_version, r->reverted_from,
                                    sizeof(r->reverted_from));
        }
    }
    devflash_close(d);
}

static void default_id(struct run *R)
{
    devflash_t *d = NULL;
    airlock_settings_t st;
    if (R->o->id) {
        snprintf(R->r->id, sizeof(R->r->id), "%s", R->o->id);
        return;
    }
    if (devflash_open(R->o->layout, R->o->flash, &d) == 0 && d->lf.settings.flash &&
        airlock_settings_open(&st, &d->lf.settings) == 0 &&
        airlock_settings_get_str(&st, DEV_KEY_CONTROLLER, R->r->id, sizeof(R->r->id)) == 1) {
        devflash_close(d);
        return;
    }
    devflash_close(d);
    const char *base = strrchr(R->o->flash, '/');
    snprintf(R->r->id, sizeof(R->r->id), "%s", base ? base + 1 : R->o->flash);
}

int sim_dev_run(const sim_dev_opts_t *o, sim_dev_result_t *r)
{
    struct run R;
    memset(r, 0, sizeof(*r));
    memset(&R, 0, sizeof(R));
    R.o = o;
    R.r = r;
    R.rng = o->seed;
    R.t0 = now_s();
    R.cut_op_pending = o->cut_at_op >= 0;
    R.cut_boot_pending = o->cut_boot_at_op >= 0;
    r->stop = -1;
    default_id(&R);
    signal(SIGPIPE, SIG_IGN);
    bool goal = o->until_version || o->until_idle;
    while (r->stop < 0) {
        if (o->interrupt && *o->interrupt) {
            r->stop = goal ? SIM_DEV_UNFINISHED : SIM_DEV_LIMIT;
            snprintf(r->message, sizeof(r->message), "interrupted%s",
                     goal ? " before the goal was reached" : "");
            break;
        }
        if (o->max_boots && r->boots >= o->max_boots) {
            r->stop = goal ? SIM_DEV_UNFINISHED : SIM_DEV_LIMIT;
            snprintf(r->message, sizeof(r->message), "%u boots%s", r->boots,
                     goal ? " and the goal was not reached" : "");
            break;
        }
        if (o->timeout_s > 0 && now_s() - R.t0 >= o->timeout_s) {
            r->stop = goal ? SIM_DEV_UNFINISHED : SIM_DEV_LIMIT;
            snprintf(r->message, sizeof(r->message), "timeout after %.0f s%s", o->timeout_s,
                     goal ? " before the goal was reached" : "");
            break;
        }
        int memfd = -1;
        int b = bootloader(&R, &memfd);
        if (b != BOOT_RUN) {
            continue; /* BOOT_AGAIN loops; BOOT_STOP set r->stop */
        }
        firmware(&R, memfd);
    }
    final_state(&R);
    say(&R, "stop", "%s: %s; running %s (%s)", sim_dev_stop_name(r->stop), r->message,
        r->version[0] ? r->version : "nothing", r->state);
    return r->stop;
}
