/*
 * `airlock server init DIR` and `airlock server run DIR`: set up a server
 * directory (configuration, demo CA and TLS certificate, database, tokens,
 * trusted image keys) and run the update server on it until SIGINT/SIGTERM.
 * Private keys and tokens are written mode 0600 and never printed, except
 * the tokens, once, by init. Never copies a private signing key into DIR.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "exitcodes.h"
#include "pkey.h"
#include "pki.h"
#include "server.h"
#include "util.h"

#define MAX_HOSTS 16
#define CA_VALID_S (10L * 365 * PKI_DAY) /* the demo CA: ten years */
#define LEAF_VALID_S (825L * PKI_DAY)    /* the server certificate */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: airlock server init DIR [--host NAME]... [--port N] [-k KEY]... [--force]\n"
            "                               [--json]\n"
            "       airlock server run DIR [--port N] [--insecure-http]\n"
            "\n"
            "init: create the server directory DIR (mode 0700): server.conf (every key with its\n"
            "default), a demo CA and a TLS certificate for localhost, 127.0.0.1 and each --host\n"
            "(tls/), artifacts/, keys/ (the public keys uploaded images must verify against),\n"
            "the database airlock.db, an operator token and a gateway token (operator.token,\n"
            "gateway.token, mode 0600; printed once). A demo CA is for development and tests:\n"
            "real deployments put their own certificate in server.conf (cert_file, key_file).\n"
            "\n"
            "  -H, --host NAME      another DNS name or IP address for the certificate\n"
            "  -p, --port N         port to write into server.conf (default 8443)\n"
            "  -k, --key FILE       trusted image signing key (its public half is copied to\n"
            "                       DIR/keys/), repeatable\n"
            "      --force          re-initialise a non-empty DIR: new server certificate,\n"
            "                       tokens and server.conf; the CA, database, artifacts and\n"
            "                       keys are kept\n"
            "      --json           print what was made as JSON\n"
            "\n"
            "run: serve DIR (device API, operator API, dashboard) until SIGINT or SIGTERM.\n"
            "The port is printed and written to DIR/server.port.\n"
            "\n"
            "  -p, --port N         listen on N instead of server.conf's port (0: any free)\n"
            "      --insecure-http  plain HTTP, no TLS (development only: tokens travel in clear)\n"
            "\n"
            "Exit codes: 0 ok, 2 usage (DIR not empty without --force, bad server.conf),\n"
            "3 I/O (a file cannot be written or read, the server cannot start), 4 key,\n"
            "11 internal. See docs/cli.md and docs/server.md.\n");
}

/* ---- init ---------------------------------------------------------------------------- */

struct init_opts {
    const char *dir;
    const char *hosts[MAX_HOSTS];
    size_t nhosts;
    const char *keys[CLI_MAX_KEYS];
    size_t nkeys;
    unsigned port;
    bool port_set;
    bool force;
    bool json;
};

static int dir_state(const char *dir, bool *exists, bool *empty)
{
    struct stat sb;
    *exists = *empty = false;
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT) {
            return EXIT_OK_;
        }
        return cli_fail(EXIT_IO, "cannot inspect %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        return cli_fail(EXIT_USAGE, "%s exists and is not a directory", dir);
    }
    *exists = true;
    DIR *d = opendir(dir);
    if (!d) {
        return cli_fail(EXIT_IO, "cannot read %s: %s", dir, strerror(errno));
    }
    *empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            *empty = false;
        }
    }
    closedir(d);
    return EXIT_OK_;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cli_fail(EXIT_IO, "cannot create %s: %s", path, strerror(errno));
    }
    if (chmod(path, 0700) != 0) {
        return cli_fail(EXIT_IO, "cannot set the mode of %s: %s", path, strerror(errno));
    }
    return EXIT_OK_;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
    if (pki_write_file(path, text, mode) != 0) {
        return cli_fail(EXIT_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return EXIT_OK_;
}

/* server.conf with every key server.c knows, at its default, commented out. */
static int write_conf(const struct init_opts *o)
{
    srv_config_t d;
    char path[PATH_MAX], *text = NULL;
    size_t len = 0;
    srv_config_defaults(&d, o->dir);
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    fprintf(f,
            "# airlock server configuration, read by `airlock server run %s`.\n"
            "# \"key = value\" lines; '#' starts a comment. Each key is shown with its\n"
            "# default; remove the '#' to change it. See docs/server.md.\n"
            "\n"
            "# DDI tenant: devices poll /TENANT/controller/v1/CONTROLLER_ID\n"
            "# tenant = %s\n"
            "\n"
            "# address to listen on, and port (0: any free port; see server.port)\n"
            "# bind = %s\n"
            "%sport = %u\n"
            "\n"
            "# base of the links given to devices, e.g. https://updates.example:8443\n"
            "# (empty: the scheme, host and port the device used)\n"
            "# public_url =\n"
            "\n"
            "# how often devices poll (DDI config.polling.sleep), HH:MM:SS\n"
            "# poll_interval = %s\n"
            "\n"
            "# worker threads, and requests in flight before answering 429 + Retry-After\n"
            "# threads = %u\n"
            "# max_inflight = %u\n"
            "\n"
            "# largest artifact upload, MiB\n"
            "# max_artifact_mb = %llu\n"
            "\n"
            "# plain HTTP without TLS (development only: tokens travel in clear)\n"
            "# insecure_http = false\n"
            "\n"
            "# one line per request on stderr\n"
            "# access_log = false\n"
            "\n"
            "# TLS certificate (with its chain) and private key; `server init` made a demo CA\n"
            "# (tls/ca.pem) and a certificate from it: real deployments bring their own\n"
            "# cert_file = %s\n"
            "# key_file = %s\n",
            o->dir, d.tenant, d.bind, o->port_set ? "" : "# ", o->port_set ? o->port : d.port,
            d.poll_interval, d.threads, d.max_inflight,
            (unsigned long long)(d.max_artifact / (1024 * 1024)), d.cert_file, d.key_file);
    if (fclose(f) != 0 || !text) {
        free(text);
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    snprintf(path, sizeof(path), "%s/server.conf", o->dir);
    int rc = write_text(path, text, 0600);
    free(text);
    return rc;
}

/* A whole small text file, malloc'd and NUL-terminated; NULL if absent or unreadable. */
static char *read_text(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fclose(f);
    if (cli_read_file(path, "file", &data, &len) != EXIT_OK_) {
        return NULL;
    }
    char *s = realloc(data, len + 1);
    if (!s) {
        free(data);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

/*
 * The demo CA and the server certificate. On a re-initialised DIR the CA
 * there is kept (devices and clients already trust it) and only a new
 * server certificate is issued from it. *reused tells which.
 */
static int make_tls(const struct init_opts *o, char *ca_path, size_t cap, bool *reused)
{
    pki_pem_t ca = {0}, leaf = {0};
    char san[2048], key_path[PATH_MAX], cert_path[PATH_MAX];
    size_t n = (size_t)snprintf(san, sizeof(san), "localhost,127.0.0.1");
    for (size_t i = 0; i < o->nhosts && n < sizeof(san); i++) {
        n += (size_t)snprintf(san + n, sizeof(san) - n, ",%s", o->hosts[i]);
    }
    if (n >= sizeof(san)) {
        return cli_fail(EXIT_USAGE, "--host: too many or too long names");
    }
    const char *cn = o->nhosts ? o->hosts[0] : "localhost";
    snprintf(key_path, sizeof(key_path), "%s/tls/ca.key", o->dir);
    snprintf(ca_path, cap, "%s/tls/ca.pem", o->dir);
    ca.key = read_text(key_path);
    ca.cert = read_text(ca_path);
    *reused = ca.key && ca.cert && pki_make_leaf(&ca, cn, san, -3600L, LEAF_VALID_S, &leaf) == 0;
    if (!*reused) {
        pki_pem_free(&ca);
        if (pki_make_ca("airlock demo CA", CA_VALID_S, &ca) != 0 ||
            pki_make_leaf(&ca, cn, san, -3600L, LEAF_VALID_S, &leaf) != 0) {
            pki_pem_free(&ca);
            return cli_fail(EXIT_INTERNAL, "cannot make the demo CA and certificate (OpenSSL)");
        }
    }
    int rc = EXIT_OK_;
    if (!*reused && pki_write_pair(&ca, key_path, ca_path) != 0) {
        rc = cli_fail(EXIT_IO, "cannot write %s: %s", key_path, strerror(errno));
    }
    snprintf(key_path, sizeof(key_path), "%s/tls/server.key", o->dir);
    snprintf(cert_path, sizeof(cert_path), "%s/tls/server.pem", o->dir);
    if (rc == EXIT_OK_ && pki_write_pair(&leaf, key_path, cert_path) != 0) {
        rc = cli_fail(EXIT_IO, "cannot write %s: %s", key_path, strerror(errno));
    }
    pki_pem_free(&ca);
    pki_pem_free(&leaf);
    return rc;
}

/* The public half of each -k key into DIR/keys/NAME.pem. */
static int copy_keys(const struct init_opts *o)
{
    for (size_t i = 0; i < o->nkeys; i++) {
        cli_key_t k;
        char *pem = NULL, path[PATH_MAX], base[NAME_MAX + 1];
        size_t len;
        memset(&k, 0, sizeof(k));
        int rc = cli_key_load(o->keys[i], &k);
        if (rc == EXIT_OK_) {
            rc = cli_key_public_pem(&k, &pem, &len);
        }
        cli_key_free(&k);
        if (rc != EXIT_OK_) {
            return rc;
        }
        const char *b = strrchr(o->keys[i], '/');
        snprintf(base, sizeof(base), "%s", b ? b + 1 : o->keys[i]);
        size_t bl = strlen(base);
        if (bl > 4 && strcmp(base + bl - 4, ".pem") == 0) {
            base[bl - 4] = '\0';
        }
        snprintf(path, sizeof(path), "%s/keys/%s.pem", o->dir, base);
        rc = write_text(path, pem, 0644);
        free(pem);
        if (rc != EXIT_OK_) {
            return rc;
        }
    }
    return EXIT_OK_;
}

/* *.pem files in DIR/keys. */
static size_t count_keys(const char *dir)
{
    char path[PATH_MAX];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/keys", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += e->d_name[0] != '.' && l > 4 && strcmp(e->d_name + l - 4, ".pem") == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static int make_store(const struct init_opts *o, const char *op_tok, const char *gw_tok)
{
    char path[PATH_MAX], h1[65], h2[65];
    store_t *st = NULL;
    snprintf(path, sizeof(path), "%s/airlock.db", o->dir);
    int rc = store_sqlite_open(path, &st);
    if (rc != STORE_OK) {
        return cli_fail(EXIT_IO, "cannot create the database %s: %s", path, store_errname(rc));
    }
    srv_sha256_hex(op_tok, strlen(op_tok), h1);
    srv_sha256_hex(gw_tok, strlen(gw_tok), h2);
    rc = st->ops->setting_set(st, "operator_token_sha256", h1);
    if (rc == STORE_OK) {
        rc = st->ops->setting_set(st, "gateway_token_sha256", h2);
    }
    if (rc != STORE_OK) {
        rc = cli_fail(EXIT_IO, "cannot store the token hashes in %s: %s", path, st->errmsg);
    }
    st->ops->close(st);
    return rc;
}

static int server_init(struct init_opts *o)
{
    bool exists, empty;
    char path[PATH_MAX], ca_path[PATH_MAX], op_tok[33], gw_tok[33];
    int rc = dir_state(o->dir, &exists, &empty);
    if (rc != EXIT_OK_) {
        return rc;
    }
    if (exists && !empty && !o->force) {
        return cli_fail(EXIT_USAGE,
                        "%s exists and is not empty; use --force to re-initialise it (new "
                        "server certificate, tokens and server.conf; CA, database and artifacts "
                        "kept)",
                        o->dir);
    }
    if (strlen(o->dir) > SRV_PATH_MAX - 64) {
        return cli_fail(EXIT_USAGE, "DIR: path too long (%zu bytes, at most %d)", strlen(o->dir),
                        SRV_PATH_MAX - 64);
    }
    static const char *const subdirs[] = {"", "/tls", "/artifacts", "/keys"};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", o->dir, subdirs[i]);
        if ((rc = make_dir(path)) != EXIT_OK_) {
            return rc;
        }
    }
    bool ca_reused = false;
    if ((rc = copy_keys(o)) != EXIT_OK_ || (rc = write_conf(o)) != EXIT_OK_ ||
        (rc = make_tls(o, ca_path, sizeof(ca_path), &ca_reused)) != EXIT_OK_) {
        return rc;
    }
    if (srv_token_new(op_tok) != 0 || srv_token_new(gw_tok) != 0) {
        return cli_fail(EXIT_INTERNAL, "no random bytes for the tokens");
    }
    /* tokens on disk first: a database holding hashes nobody knows would lock everyone out */
    char op_text[40], gw_text[40];
    snprintf(op_text, sizeof(op_text), "%s\n", op_tok);
    snprintf(gw_text, sizeof(gw_text), "%s\n", gw_tok);
    snprintf(path, sizeof(path), "%s/operator.token", o->dir);
    rc = write_text(path, op_text, 0600);
    snprintf(path, sizeof(path), "%s/gateway.token", o->dir);
    if (rc == EXIT_OK_) {
        rc = write_text(path, gw_text, 0600);
    }
    if (rc == EXIT_OK_) {
        rc = make_store(o, op_tok, gw_tok);
    }
    if (rc != EXIT_OK_) {
        return rc;
    }
    unsigned port = o->port_set ? o->port : 8443;
    size_t nkeys = count_keys(o->dir);
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i}", "dir", o->dir,
                              "operator_token", op_tok, "gateway_token", gw_tok, "ca", ca_path,
                              "ca_kept", ca_reused, "port", (int)port, "keys", (int)nkeys);
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
        return EXIT_OK_;
    }
    printf("airlock server: initialised %s\n"
           "  operator token: %s   (%s/operator.token)\n"
           "  gateway token:  %s   (%s/gateway.token)\n"
           "  CA certificate: %s   (%s; clients and devices trust it: --ca)\n"
           "  trusted image keys: %zu in %s/keys/\n"
           "next: airlock server run %s\n",
           o->dir, op_tok, o->dir, gw_tok, o->dir, ca_path, ca_reused ? "kept" : "new", nkeys,
           o->dir, o->dir);
    if (nkeys == 0) {
        cli_note("no trusted image key: image uploads are refused until a public key is in "
                 "%s/keys/ (-k KEY)",
                 o->dir);
    }
    return EXIT_OK_;
}

/* ---- run ----------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR/keys/ *.pem into ring (sorted by name, so the order is stable). paths are kept in it. */
static int load_keys(const char *dir, cli_keyring_t *ring, char **paths, size_t *npaths)
{
    char kdir[PATH_MAX];
    snprintf(kdir, sizeof(kdir), "%s/keys", dir);
    DIR *d = opendir(kdir);
    *npaths = 0;
    if (!d) {
        return errno == ENOENT ? EXIT_OK_
                               : cli_fail(EXIT_IO, "cannot read %s: %s", kdir, strerror(errno));
    }
    struct dirent *e;
    int rc = EXIT_OK_;
    while ((e = readdir(d)) != NULL && rc == EXIT_OK_) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".pem") != 0 || e->d_name[0] == '.') {
            continue;
        }
        if (*npaths == CLI_MAX_KEYS) {
            rc = cli_fail(EXIT_USAGE, "%s holds more than %d keys", kdir, CLI_MAX_KEYS);
            break;
        }
        if (asprintf(&paths[*npaths], "%s/%s", kdir, e->d_name) < 0) {
            rc = cli_fail(EXIT_INTERNAL, "out of memory");
            break;
        }
        (*npaths)++;
    }
    closedir(d);
    qsort(paths, *npaths, sizeof(paths[0]), by_name);
    for (size_t i = 0; i < *npaths && rc == EXIT_OK_; i++) {
        rc = cli_keyring_add(ring, paths[i]);
    }
    return rc;
}

/* Remove the port file if it still names this run's port (another run may have replaced it). */
static void remove_port_file(const char *path, const char *mine)
{
    char buf[16] = "";
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    bool same = fgets(buf, sizeof(buf), f) && strcmp(buf, mine) == 0;
    fclose(f);
    if (same) {
        unlink(path);
    }
}

static int server_run(const char *dir, int port, bool insecure)
{
    srv_t srv;
    char err[600], path[PATH_MAX];
    cli_keyring_t ring;
    char *paths[CLI_MAX_KEYS];
    size_t npaths = 0;
    memset(&srv, 0, sizeof(srv));
    memset(&ring, 0, sizeof(ring));
    snprintf(path, sizeof(path), "%s/server.conf", dir);
    if (access(path, R_OK) != 0) {
        return cli_fail(EXIT_IO, "cannot read %s: %s (make it with: airlock server init %s)", path,
                        strerror(errno), dir);
    }
    if (srv_config_load(dir, &srv.cfg, err, sizeof(err)) != 0) {
        return cli_fail(EXIT_USAGE, "%s", err);
    }
    if (port >= 0) {
        srv.cfg.port = (unsigned)port;
    }
    if (insecure) {
        srv.cfg.insecure_http = true;
    }
    int rc = load_keys(dir, &ring, paths, &npaths);
    if (rc != EXIT_OK_) {
        goto out;
    }
    srv.keys = ring.pub;
    srv.nkeys = ring.n;
    if (ring.n == 0) {
        cli_note("warning: no trusted image keys in %s/keys/: image uploads will be refused", dir);
    }
    if (srv.cfg.insecure_http) {
        fprintf(stderr, "\n"
                        "  WARNING: airlock server is running WITHOUT TLS (insecure_http).\n"
                        "  Operator and device tokens and every artifact travel in clear text.\n"
                        "  For development only: never expose this port to a network.\n"
                        "\n");
    }
    /*
     * SIGINT and SIGTERM are blocked here, before any thread exists, so every
     * server thread inherits the mask and sigwait below is the only receiver.
     */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    snprintf(path, sizeof(path), "%s/server.port", dir);
    /* server.port is replaced only once listening: a failed start (port in use by
       another run on DIR) leaves the running server's file alone */
    if (srv_start(&srv) != 0) {
        rc = cli_fail(EXIT_IO, "cannot start the server on %s (see above)", dir);
        goto out;
    }
    unsigned p = srv_port(&srv);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u\n", p);
    if (cli_write_atomic(path, "port file", port_text, strlen(port_text), 0644, true) != EXIT_OK_) {
        cli_note("warning: could not write %s", path);
    }
    printf("airlock server: listening on %s://%s:%u (tenant %s)\n",
           srv.cfg.insecure_http ? "http" : "https", srv.cfg.bind, p, srv.cfg.tenant);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    fprintf(stderr, "airlock server: %s received, stopping\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_stop(&srv);
    remove_port_file(path, port_text);
    rc = EXIT_OK_;
out:
    cli_keyring_free(&ring);
    for (size_t i = 0; i < npaths; i++) {
        free(paths[i]);
    }
    return rc;
}

/* ---- options ------------------------------------------------------------------------- */

enum { OPT_FORCE = 256, OPT_JSON, OPT_INSECURE };

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
    {"key", required_argument, NULL, 'k'},  {"force", no_argument, NULL, OPT_FORCE},
    {"json", no_argument, NULL, OPT_JSON},  {"insecure-http", no_argument, NULL, OPT_INSECURE},
    {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
};

int cmd_server(int argc, char **argv)
{
    struct init_opts o;
    bool insecure = false;
    int c;
    uint32_t port;
    memset(&o, 0, sizeof(o));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK_;
    }
    const char *sub = argv[1];
    bool init = strcmp(sub, "init") == 0;
    if (!init && strcmp(sub, "run") != 0) {
        return cli_fail(EXIT_USAGE, "unknown subcommand '%s' (init or run)", sub);
    }
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "H:p:k:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            if (!init) {
                return cli_fail(EXIT_USAGE, "--host is an option of server init");
            }
            if (o.nhosts == MAX_HOSTS) {
                return cli_fail(EXIT_USAGE, "--host: at most %d", MAX_HOSTS);
            }
            if (!*optarg || strchr(optarg, ',') || strchr(optarg, ' ')) {
                return cli_fail(EXIT_USAGE, "--host '%s': one DNS name or IP address", optarg);
            }
            o.hosts[o.nhosts++] = optarg;
            break;
        case 'p':
            if (cli_parse_u32_opt("-p/--port", optarg, 65535, &port) != EXIT_OK_) {
                return EXIT_USAGE;
            }
            o.port = port;
            o.port_set = true;
            break;
        case 'k':
            if (!init) {
                return cli_fail(EXIT_USAGE, "-k is an option of server init (server run loads "
                                            "DIR/keys/*.pem)");
            }
            if (o.nkeys == CLI_MAX_KEYS) {
                return cli_fail(EXIT_USAGE, "-k: at most %d keys", CLI_MAX_KEYS);
            }
            o.keys[o.nkeys++] = optarg;
            break;
        case OPT_FORCE:
            o.force = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_INSECURE:
            insecure = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK_;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_fail(EXIT_USAGE, "server %s needs exactly one DIR (see 'airlock server --help')",
                        sub);
    }
    o.dir = argv[optind];
    if (init) {
        if (insecure) {
            return cli_fail(EXIT_USAGE, "--insecure-http is an option of server run");
        }
        return server_init(&o);
    }
    if (o.force || o.json) {
        return cli_fail(EXIT_USAGE, "%s is an option of server init",
                        o.force ? "--force" : "--json");
    }
    return server_run(o.dir, o.port_set ? (int)o.port : -1, insecure);
}
