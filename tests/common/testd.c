/*
 * airlock-testd: the test HTTPS server (httpsd.c) as a process, for shell
 * tests and the download benchmark. Makes a throwaway CA and localhost leaf,
 * serves one file, prints "port N", and runs until SIGTERM/SIGINT; SIGHUP
 * reloads the file. Test tool only: never installed, never for real devices.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpsd.h"
#include "testca.h"

static const char usage[] =
    "usage: airlock-testd --file ARTIFACT [options]\n"
    "  --file F          serve the bytes of F (re-read on SIGHUP)\n"
    "  --path P          URL path of the artifact (default /artifact.bin)\n"
    "  --dir D           write D/ca.pem, D/ca-spki.sha256 and D/port (default .)\n"
    "  --cert F --key F  use this server certificate (+chain) and key instead of\n"
    "                    a generated CA and localhost leaf (then no ca.pem)\n"
    "  --drop-after K    first GET: close the connection after K body bytes\n"
    "  --stall-after K   first GET: pause after K body bytes ...\n"
    "  --stall-ms S      ... for S milliseconds (default 1000), then go on\n"
    "  --rate B          throttle every response to B bytes per second\n"
    "  --verbose         libmicrohttpd error log on stderr\n"
    "Prints \"port N\" on stdout once listening; D/port is removed at start and\n"
    "written then too. SIGTERM/SIGINT stop.\n"
    "Exit: 0 after a clean stop, 1 on a runtime error, 2 on bad usage.\n";

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0'; /* PEM files are used as strings */
    *len = n;
    return buf;
}

static int load_artifact(httpsd_t *s, const char *path)
{
    size_t len = 0;
    char *data = read_all(path, &len);
    if (!data) {
        fprintf(stderr, "airlock-testd: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = httpsd_set_artifact(s, (const uint8_t *)data, len);
    free(data);
    return rc;
}

/* Write dir/name = text (+ newline) via a temporary file and rename, so a
 * script polling for the file never reads half of it. */
static int write_in(const char *dir, const char *name, const char *text, const char *nl)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    size_t n = strlen(text) + strlen(nl) + 1;
    char *body = malloc(n);
    if (!body) {
        return -1;
    }
    snprintf(body, n, "%s%s", text, nl);
    int rc = tc_write_file(tmp, body);
    free(body);
    if (rc != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "airlock-testd: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int parse_num(const char *s, unsigned long long *v)
{
    char *end = NULL;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return (errno || !end || *end || s[0] == '-' || end == s) ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *path = NULL, *dir = ".", *cert_file = NULL, *key_file = NULL;
    unsigned long long drop_after = 0, stall_after = 0, stall_ms = 1000, rate = 0;
    bool drop = false, stall = false, verbose = false;
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"path", required_argument, NULL, 'p'},
        {"dir", required_argument, NULL, 'd'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"drop-after", required_argument, NULL, 'D'},
        {"stall-after", required_argument, NULL, 'S'},
        {"stall-ms", required_argument, NULL, 'M'},
        {"rate", required_argument, NULL, 'r'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case 'p':
            path = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'c':
            cert_file = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'D':
            drop = true;
            bad = parse_num(optarg, &drop_after);
            break;
        case 'S':
            stall = true;
            bad = parse_num(optarg, &stall_after);
            break;
        case 'M':
            bad = parse_num(optarg, &stall_ms);
            break;
        case 'r':
            bad = parse_num(optarg, &rate);
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "airlock-testd: bad number: %s\n", optarg);
            return 2;
        }
    }
    if (!file || optind != argc || (!cert_file != !key_file) || (drop && stall) ||
        stall_ms > 3600000ULL) {
        fputs(usage, stderr);
        return 2;
    }

    /* Signals are taken synchronously by sigwait below; block them before
     * any server thread exists so every thread inherits the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int rc = 1;
    tc_pem_t ca = {0}, leaf = {0};
    httpsd_t *s = NULL;
    /* A port file left by an earlier run must not be mistaken for ours. */
    char stale[4096];
    snprintf(stale, sizeof(stale), "%s/port", dir);
    if (remove(stale) != 0 && errno != ENOENT) {
        fprintf(stderr, "airlock-testd: cannot remove %s\n", stale);
        return 1;
    }
    if (cert_file) {
        size_t n;
        leaf.cert = read_all(cert_file, &n);
        leaf.key = read_all(key_file, &n);
        if (!leaf.cert || !leaf.key) {
            fprintf(stderr, "airlock-testd: cannot read --cert/--key\n");
            goto out;
        }
    } else {
        char pin[65];
        const char *names = "localhost,127.0.0.1";
        if (tc_make_ca("airlock-testd CA", &ca) != 0 ||
            tc_make_leaf(&ca, "localhost", names, -3600L, 30L * 86400, &leaf) != 0 ||
            tc_spki_sha256_hex(ca.cert, pin) != 0) {
            fprintf(stderr, "airlock-testd: cannot make certificates\n");
            goto out;
        }
        if (write_in(dir, "ca.pem", ca.cert, "") != 0 ||
            write_in(dir, "ca-spki.sha256", pin, "\n") != 0) {
            goto out;
        }
    }

    httpsd_opts_t o = {
        .key_pem = leaf.key, .cert_pem = leaf.cert, .path = path, .verbose = verbose};
    if (httpsd_start(&o, &s) != 0) {
        fprintf(stderr, "airlock-testd: cannot start the server\n");
        goto out;
    }
    if (load_artifact(s, file) != 0) {
        goto out;
    }
    httpsd_fault_t f = {.first = 1, .count = 1};
    if (drop) {
        f.kind = HTTPSD_FAULT_DROP;
        f.after = drop_after;
    } else if (stall) {
        f.kind = HTTPSD_FAULT_STALL;
        f.after = stall_after;
        f.stall_ms = (unsigned)stall_ms;
    }
    if (f.kind != HTTPSD_FAULT_NONE && httpsd_set_fault(s, &f) != 0) {
        goto out;
    }
    httpsd_set_rate(s, rate);

    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)httpsd_port(s));
    if (write_in(dir, "port", port, "\n") != 0) {
        goto out;
    }
    printf("port %s\n", port);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) {
            goto out;
        }
        if (sig != SIGHUP) {
            break;
        }
        if (load_artifact(s, file) == 0) {
            fprintf(stderr, "airlock-testd: reloaded %s\n", file);
        }
    }
    rc = 0;
out:
    httpsd_stop(s);
    tc_pem_free(&ca);
    tc_pem_free(&leaf);
    return rc;
}
