/*
 * The operator CLI: `airlock artifact|device|group|campaign ...` talk to an
 * airlock server's operator API (/api/v1, JSON over HTTPS, Bearer operator
 * token) with libcurl, and print a table or, with --json, the server's JSON.
 * Holds no state of its own: every answer comes from the server. Never
 * prints the operator token.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "exitcodes.h"
#include "util.h"

/* Options; each subcommand allows a set of them (the common ones always). */
enum {
    O_NAME = 1 << 0,
    O_KIND = 1 << 1,
    O_VERSION = 1 << 2,
    O_DEVICE_TOKEN = 1 << 3,
    O_GROUP = 1 << 4,
    O_ARTIFACT = 1 << 5,
    O_WAVES = 1 << 6,
    O_THRESHOLD = 1 << 7,
    O_START_AT = 1 << 8,
    O_ATTEMPT = 1 << 9,
    O_REASON = 1 << 10,
};

struct fleet {
    /* common */
    const char *server;
    const char *token_arg;
    const char *token_file;
    const char *ca;
    char token[512];
    bool json;
    /* per subcommand */
    unsigned used;
    const char *name, *kind, *version, *device_token, *group, *artifact, *waves, *start_at, *reason;
    uint32_t threshold;
    bool attempt;
    char **args;
    int nargs;
    const char *family, *sub;
};

/* ---- HTTP ------------------------------------------------------------------------------ */

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct buf *b = ud;
    char *q = realloc(b->p, b->n + sz * n + 1);
    if (!q) {
        return 0;
    }
    memcpy(q + b->n, p, sz * n);
    b->n += sz * n;
    q[b->n] = '\0';
    b->p = q;
    return sz * n;
}

static int curl_exit(CURLcode cc)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return EXIT_USAGE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return EXIT_TLS;
    case CURLE_READ_ERROR:
        return EXIT_IO;
    default:
        return EXIT_NETWORK;
    }
}

/* The token: --token, --token-file, AIRLOCK_TOKEN (in that order). */
static int load_token(struct fleet *f)
{
    if (f->token_arg) {
        snprintf(f->token, sizeof(f->token), "%s", f->token_arg);
    } else if (f->token_file) {
        FILE *t = fopen(f->token_file, "r");
        if (!t) {
            return cli_fail(EXIT_IO, "cannot read --token-file %s: %s", f->token_file,
                            strerror(errno));
        }
        if (!fgets(f->token, sizeof(f->token), t)) {
            f->token[0] = '\0';
        }
        fclose(t);
    } else if (getenv("AIRLOCK_TOKEN")) {
        snprintf(f->token, sizeof(f->token), "%s", getenv("AIRLOCK_TOKEN"));
    }
    size_t n = strlen(f->token);
    while (n && isspace((unsigned char)f->token[n - 1])) {
        f->token[--n] = '\0';
    }
    if (!n) {
        return cli_fail(EXIT_USAGE, "no operator token: give --token T or --token-file F, or set "
                                    "AIRLOCK_TOKEN (server init wrote DIR/operator.token)");
    }
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)f->token[i])) {
            return cli_fail(EXIT_USAGE, "the operator token holds a space or control character");
        }
    }
    return EXIT_OK_;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    printf("%s\n", s ? s : "null");
    free(s);
}

/*
 * One request to the operator API. body (JSON, not consumed) or upload (a
 * file's path) or neither. On 2xx returns EXIT_OK_ with *out the answer (or
 * NULL if it was empty); otherwise prints the server's message and returns
 * the exit code: 19 for 401/403, 18 for other 4xx, 16 for anything else,
 * 14/15 when no answer came (network, TLS). With --json the server's JSON
 * is printed on stdout either way.
 */
static int call(struct fleet *f, const char *method, const char *path, json_t *body,
                const char *upload, json_t **out)
{
    char url[2048], auth[600], errbuf[CURL_ERROR_SIZE] = "";
    struct buf resp = {NULL, 0};
    FILE *up = NULL;
    char *text = NULL;
    int rc = EXIT_OK_;
    *out = NULL;
    size_t sl = strlen(f->server);
    while (sl && f->server[sl - 1] == '/') {
        sl--;
    }
    snprintf(url, sizeof(url), "%.*s%s", (int)sl, f->server, path);
    CURL *h = curl_easy_init();
    if (!h) {
        return cli_fail(EXIT_INTERNAL, "cannot initialise libcurl");
    }
    struct curl_slist *hl = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->token);
    hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a silent server: give up after 60 s */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    if (f->ca) {
        curl_easy_setopt(h, CURLOPT_CAINFO, f->ca);
    }
    if (upload) {
        struct stat sb;
        up = fopen(upload, "rb");
        if (!up || fstat(fileno(up), &sb) != 0 || !S_ISREG(sb.st_mode)) {
            rc = cli_fail(EXIT_IO, "cannot read %s: %s", upload,
                          up ? "not a regular file" : strerror(errno));
            goto done;
        }
        hl = curl_slist_append(hl, "Content-Type: application/octet-stream");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, up);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sb.st_size);
    } else if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            rc = cli_fail(EXIT_INTERNAL, "out of memory");
            goto done;
        }
        hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = cli_fail(curl_exit(cc), "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = resp.n ? json_loadb(resp.p, resp.n, 0, NULL) : NULL;
    if (f->json) {
        if (j) {
            print_json(j);
        } else if (resp.n) {
            printf("%s\n", resp.p);
        }
    }
    if (status >= 200 && status < 300) {
        *out = j;
        goto done;
    }
    const char *msg = json_string_value(json_object_get(j, "message"));
    const char *code = json_string_value(json_object_get(j, "errorCode"));
    rc = status == 401 || status == 403  ? EXIT_UNAUTHORIZED
         : status >= 400 && status < 500 ? EXIT_SERVER_REJECTED
                                         : EXIT_HTTP;
    cli_fail(rc, "%s (HTTP %ld%s%s)",
             msg      ? msg
             : resp.n ? resp.p
                      : "no message",
             status, code ? ", " : "", code ? code : "");
    json_decref(j);
done:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (up) {
        fclose(up);
    }
    free(text);
    free(resp.p);
    return rc;
}

/* "/api/v1/PREFIX/SEGMENT[SUFFIX]" with SEGMENT percent-encoded. */
static void path_of(char *out, size_t cap, const char *prefix, const char *seg, const char *suffix)
{
    char *e = curl_easy_escape(NULL, seg, 0);
    snprintf(out, cap, "/api/v1/%s/%s%s", prefix, e ? e : "", suffix ? suffix : "");
    curl_free(e);
}

/* ---- formatting ------------------------------------------------------------------------ */

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s && *s ? s : "-";
}

static long long num(json_t *j, const char *k)
{
    return (long long)json_integer_value(json_object_get(j, k));
}

static const char *when(json_t *j, const char *k, char *out, size_t cap)
{
    json_t *v = json_object_get(j, k);
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        return "-";
    }
    time_t t = (time_t)json_integer_value(v);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm) == 0) {
        return "-";
    }
    return out;
}

/* "total 7: success 5, failure 1, running 1" (states with a count only). */
static void counts_line(json_t *c, char *out, size_t cap)
{
    static const char *const states[] = {"success", "failure",    "running",   "offered",
                                         "pending", "cancelling", "cancelled", "skipped"};
    size_t n = (size_t)snprintf(out, cap, "total %lld", num(c, "total"));
    const char *sep = ": ";
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]) && n < cap; i++) {
        long long v = num(c, states[i]);
        if (v) {
            n += (size_t)snprintf(out + n, cap - n, "%s%s %lld", sep, states[i], v);
            sep = ", ";
        }
    }
}

static void print_artifact(json_t *a)
{
    char t[32];
    printf("artifact %s\n"
           "  id:       %lld\n"
           "  kind:     %s\n"
           "  version:  %s\n"
           "  size:     %lld bytes\n"
           "  sha256:   %s\n"
           "  sha1:     %s\n"
           "  md5:      %s\n"
           "  uploaded: %s\n",
           str(a, "name"), num(a, "id"), str(a, "kind"), str(a, "version"), num(a, "size"),
           str(a, "sha256"), str(a, "sha1"), str(a, "md5"), when(a, "created_at", t, sizeof(t)));
}

static void print_campaign(json_t *c)
{
    char t[32], line[600];
    json_t *art = json_object_get(c, "artifact");
    printf("campaign %s: %s, wave %lld of %lld\n", str(c, "name"), str(c, "state"), num(c, "wave"),
           num(c, "nwaves"));
    printf("  artifact:  %s %s\n", str(art, "name"), str(art, "version"));
    printf("  target:    %s%s\n", json_is_string(json_object_get(c, "group")) ? "group " : "",
           json_is_string(json_object_get(c, "group")) ? str(c, "group") : "all devices");
    printf("  threshold: pause when more than %lld%% of a wave fails; %s update\n",
           num(c, "failure_threshold"),
           json_is_true(json_object_get(c, "forced")) ? "forced" : "attempt (soft)");
    if (json_is_integer(json_object_get(c, "start_at"))) {
        printf("  start at:  %s\n", when(c, "start_at", t, sizeof(t)));
    }
    if (*str(c, "reason") != '-') {
        printf("  reason:    %s\n", str(c, "reason"));
    }
    counts_line(json_object_get(c, "counts"), line, sizeof(line));
    printf("  devices:   %s\n", line);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(c, "per_wave"), i, w)
    {
        counts_line(json_object_get(w, "counts"), line, sizeof(line));
        printf("  wave %lld (%3lld%%): %s\n", num(w, "wave"), num(w, "percent"), line);
    }
    printf("  updated:   %s\n", when(c, "updated_at", t, sizeof(t)));
}

/* ---- artifact --------------------------------------------------------------------------- */

static int artifact_upload(struct fleet *f)
{
    const char *file = f->args[0];
    const char *base = strrchr(file, '/');
    const char *name = f->name ? f->name : base ? base + 1 : file;
    char path[1024];
    char *en = curl_easy_escape(NULL, name, 0);
    char *ev = f->version ? curl_easy_escape(NULL, f->version, 0) : NULL;
    char *ek = f->kind ? curl_easy_escape(NULL, f->kind, 0) : NULL;
    snprintf(path, sizeof(path), "/api/v1/artifacts?name=%s%s%s%s%s", en ? en : "",
             ek ? "&kind=" : "", ek ? ek : "", ev ? "&version=" : "", ev ? ev : "");
    curl_free(en);
    curl_free(ev);
    curl_free(ek);
    json_t *a;
    int rc = call(f, "POST", path, NULL, file, &a);
    if (rc == EXIT_OK_ && !f->json) {
        printf("uploaded %s: %s %s, %lld bytes, sha256 %s\n", str(a, "name"), str(a, "kind"),
               str(a, "version"), num(a, "size"), str(a, "sha256"));
    }
    json_decref(a);
    return rc;
}

static int artifact_list(struct fleet *f)
{
    json_t *j;
    int rc = call(f, "GET", "/api/v1/artifacts", NULL, NULL, &j);
    if (rc == EXIT_OK_ && !f->json) {
        size_t i;
        json_t *a;
        char t[32];
        printf("%-24s %-6s %-14s %10s  %-12s  %s\n", "NAME", "KIND", "VERSION", "SIZE", "SHA256",
               "UPLOADED");
        json_array_foreach(json_object_get(j, "artifacts"), i, a)
        {
            printf("%-24s %-6s %-14s %10lld  %.12s  %s\n", str(a, "name"), str(a, "kind"),
                   str(a, "version"), num(a, "size"), str(a, "sha256"),
                   when(a, "created_at", t, sizeof(t)));
        }
    }
    json_decref(j);
    return rc;
}

static int artifact_show(struct fleet *f)
{
    char path[512];
    json_t *a;
    path_of(path, sizeof(path), "artifacts", f->args[0], NULL);
    int rc = call(f, "GET", path, NULL, NULL, &a);
    if (rc == EXIT_OK_ && !f->json) {
        print_artifact(a);
    }
    json_decref(a);
    return rc;
}

/* ---- device ----------------------------------------------------------------------------- */

static int device_add(struct fleet *f)
{
    json_t *body = json_pack("{s:s}", "controller_id", f->args[0]), *d;
    if (f->name) {
        json_object_set_new(body, "name", json_string(f->name));
    }
    if (f->device_token) {
        json_object_set_new(body, "token", json_string(f->device_token));
    }
    int rc = call(f, "POST", "/api/v1/devices", body, NULL, &d);
    json_decref(body);
    if (rc == EXIT_OK_ && !f->json) {
        printf("registered device %s\n"
               "token: %s\n",
               str(d, "controller_id"), str(d, "token"));
        cli_note("the token is the device's DDI TargetToken; the server keeps only its hash, "
                 "so it is shown only now");
    }
    json_decref(d);
    return rc;
}

static void action_brief(json_t *a, char *out, size_t cap)
{
    if (!json_is_object(a)) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%s:%s", str(a, "campaign"), str(a, "state"));
}

static int device_list(struct fleet *f)
{
    char path[512];
    json_t *j;
    if (f->group) {
        char *e = curl_easy_escape(NULL, f->group, 0);
        snprintf(path, sizeof(path), "/api/v1/devices?group=%s", e ? e : "");
        curl_free(e);
    } else {
        snprintf(path, sizeof(path), "/api/v1/devices");
    }
    int rc = call(f, "GET", path, NULL, NULL, &j);
    if (rc == EXIT_OK_ && !f->json) {
        size_t i;
        json_t *d;
        char t[32], act[300];
        printf("%-24s %-20s %-14s %-21s %7s  %s\n", "CONTROLLER_ID", "NAME", "VERSION", "LAST_SEEN",
               "POLLS", "ACTION");
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
            action_brief(json_object_get(d, "action"), act, sizeof(act));
            printf("%-24s %-20s %-14s %-21s %7lld  %s\n", str(d, "controller_id"), str(d, "name"),
                   str(d, "version"), when(d, "last_seen", t, sizeof(t)), num(d, "polls"), act);
        }
    }
    json_decref(j);
    return rc;
}

static int device_show(struct fleet *f)
{
    char path[512], t[32];
    json_t *d;
    path_of(path, sizeof(path), "devices", f->args[0], NULL);
    int rc = call(f, "GET", path, NULL, NULL, &d);
    if (rc != EXIT_OK_ || f->json) {
        json_decref(d);
        return rc;
    }
    printf("device %s (%s)\n", str(d, "controller_id"), str(d, "name"));
    printf("  version:    %s\n", str(d, "version"));
    printf("  registered: %s\n", when(d, "created_at", t, sizeof(t)));
    printf("  last seen:  %s\n", when(d, "last_seen", t, sizeof(t)));
    printf("  polls:      %lld\n", num(d, "polls"));
    const char *k;
    json_t *v, *attrs = json_object_get(d, "attributes");
    if (json_object_size(attrs)) {
        printf("  attributes:\n");
        json_object_foreach(attrs, k, v)
        {
            printf("    %s = %s\n", k, json_is_string(v) ? json_string_value(v) : "?");
        }
    }
    size_t i;
    json_array_foreach(json_object_get(d, "actions"), i, v)
    {
        if (i == 0) {
            printf("actions:\n  %-6s %-20s %4s %-10s %-9s %-21s %s\n", "ID", "CAMPAIGN", "WAVE",
                   "STATE", "PROGRESS", "UPDATED", "DETAILS");
        }
        json_t *p = json_object_get(v, "progress");
        char prog[32];
        snprintf(prog, sizeof(prog), "%lld/%lld", num(p, "cnt"), num(p, "of"));
        printf("  %-6lld %-20s %4lld %-10s %-9s %-21s %s\n", num(v, "id"), str(v, "campaign"),
               num(v, "wave"), str(v, "state"), prog, when(v, "updated_at", t, sizeof(t)),
               str(v, "details"));
    }
    json_t *fb = json_object_get(d, "feedback");
    size_t n = json_array_size(fb), from = n > 20 ? n - 20 : 0;
    for (i = from; i < n; i++) {
        v = json_array_get(fb, i);
        if (i == from) {
            printf("feedback (last %zu of %lld):\n", n - from, num(d, "feedback_total"));
        }
        char *det = json_dumps(json_object_get(v, "details"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("  %-21s action %-6lld %-11s %-8s %s\n", when(v, "received_at", t, sizeof(t)),
               num(v, "action_id"), str(v, "execution"), str(v, "finished"), det ? det : "");
        free(det);
    }
    json_decref(d);
    return rc;
}

/* ---- group ------------------------------------------------------------------------------ */

static int group_create(struct fleet *f)
{
    json_t *body = json_pack("{s:s}", "name", f->args[0]), *g;
    int rc = call(f, "POST", "/api/v1/groups", body, NULL, &g);
    json_decref(body);
    if (rc == EXIT_OK_ && !f->json) {
        printf("created group %s\n", str(g, "name"));
    }
    json_decref(g);
    return rc;
}

static int group_add(struct fleet *f)
{
    char path[512];
    json_t *devs = json_array(), *g;
    for (int i = 1; i < f->nargs; i++) {
        json_array_append_new(devs, json_string(f->args[i]));
    }
    json_t *body = json_pack("{s:o}", "devices", devs);
    path_of(path, sizeof(path), "groups", f->args[0], "/devices");
    int rc = call(f, "POST", path, body, NULL, &g);
    json_decref(body);
    if (rc == EXIT_OK_ && !f->json) {
        printf("group %s: %lld device(s)\n", str(g, "name"), num(g, "devices"));
    }
    json_decref(g);
    return rc;
}

static int group_list(struct fleet *f)
{
    json_t *j;
    int rc = call(f, "GET", "/api/v1/groups", NULL, NULL, &j);
    if (rc == EXIT_OK_ && !f->json) {
        size_t i;
        json_t *g;
        printf("%-32s %8s\n", "NAME", "DEVICES");
        json_array_foreach(json_object_get(j, "groups"), i, g)
        {
            printf("%-32s %8lld\n", str(g, "name"), num(g, "devices"));
        }
    }
    json_decref(j);
    return rc;
}

static int group_show(struct fleet *f)
{
    char path[512], t[32];
    json_t *g;
    path_of(path, sizeof(path), "groups", f->args[0], NULL);
    int rc = call(f, "GET", path, NULL, NULL, &g);
    if (rc == EXIT_OK_ && !f->json) {
        size_t i;
        json_t *d;
        printf("group %s: %lld device(s)\n", str(g, "name"), num(g, "devices"));
        json_array_foreach(json_object_get(g, "members"), i, d)
        {
            printf("  %-24s %-20s %-14s %s\n", str(d, "controller_id"), str(d, "name"),
                   str(d, "version"), when(d, "last_seen", t, sizeof(t)));
        }
    }
    json_decref(g);
    return rc;
}

/* ---- campaign --------------------------------------------------------------------------- */

static int campaign_create(struct fleet *f)
{
    if (!f->artifact) {
        return cli_fail(EXIT_USAGE, "campaign create needs --artifact NAME");
    }
    json_t *body = json_pack("{s:s, s:s, s:b}", "name", f->args[0], "artifact", f->artifact,
                             "forced", !f->attempt);
    if (f->group) {
        json_object_set_new(body, "group", json_string(f->group));
    }
    if (f->used & O_THRESHOLD) {
        json_object_set_new(body, "failure_threshold", json_integer(f->threshold));
    }
    if (f->waves) {
        json_t *w = json_array();
        const char *p = f->waves;
        while (*p) {
            char *e;
            errno = 0;
            long v = strtol(p, &e, 10);
            if (e == p || errno || (*e && *e != ',') || !isdigit((unsigned char)*p)) {
                json_decref(w);
                json_decref(body);
                return cli_fail(EXIT_USAGE, "--waves '%s': expected percentages like 1,10,50,100",
                                f->waves);
            }
            json_array_append_new(w, json_integer(v));
            p = *e ? e + 1 : e;
        }
        json_object_set_new(body, "waves", w);
    }
    if (f->start_at) {
        bool digits = *f->start_at != '\0';
        for (const char *p = f->start_at; *p; p++) {
            digits &= isdigit((unsigned char)*p) != 0;
        }
        json_object_set_new(body, "start_at",
                            digits ? json_integer(strtoll(f->start_at, NULL, 10))
                                   : json_string(f->start_at));
    }
    json_t *c;
    int rc = call(f, "POST", "/api/v1/campaigns", body, NULL, &c);
    json_decref(body);
    if (rc == EXIT_OK_ && !f->json) {
        print_campaign(c);
    }
    json_decref(c);
    return rc;
}

static int campaign_verb(struct fleet *f)
{
    char path[512], suffix[16];
    json_t *body = NULL, *c;
    bool show = strcmp(f->sub, "status") == 0;
    snprintf(suffix, sizeof(suffix), "/%s", f->sub);
    path_of(path, sizeof(path), "campaigns", f->args[0], show ? NULL : suffix);
    if (f->reason) {
        body = json_pack("{s:s}", "reason", f->reason);
    }
    int rc = call(f, show ? "GET" : "POST", path, body, NULL, &c);
    json_decref(body);
    if (rc == EXIT_OK_ && !f->json) {
        print_campaign(c);
    }
    json_decref(c);
    return rc;
}

static int campaign_list(struct fleet *f)
{
    json_t *j;
    int rc = call(f, "GET", "/api/v1/campaigns", NULL, NULL, &j);
    if (rc == EXIT_OK_ && !f->json) {
        size_t i;
        json_t *c;
        printf("%-24s %-10s %-6s %-24s %-12s %7s %7s %7s\n", "NAME", "STATE", "WAVE", "ARTIFACT",
               "VERSION", "DEVICES", "SUCCESS", "FAILURE");
        json_array_foreach(json_object_get(j, "campaigns"), i, c)
        {
            json_t *a = json_object_get(c, "artifact"), *n = json_object_get(c, "counts");
            char wave[16];
            snprintf(wave, sizeof(wave), "%lld/%lld", num(c, "wave"), num(c, "nwaves"));
            printf("%-24s %-10s %-6s %-24s %-12s %7lld %7lld %7lld\n", str(c, "name"),
                   str(c, "state"), wave, str(a, "name"), str(a, "version"), num(n, "total"),
                   num(n, "success"), num(n, "failure"));
        }
    }
    json_decref(j);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

struct sub {
    const char *family;
    const char *name;
    const char *synopsis;
    int min_args, max_args; /* max -1: any number */
    unsigned opts;
    int (*run)(struct fleet *f);
};

static const struct sub subs[] = {
    {"artifact", "upload", "FILE [--name NAME] [--kind image|opaque] [--version V]", 1, 1,
     O_NAME | O_KIND | O_VERSION, artifact_upload},
    {"artifact", "list", "", 0, 0, 0, artifact_list},
    {"artifact", "show", "NAME|ID", 1, 1, 0, artifact_show},
    {"device", "add", "CONTROLLER_ID [--name NAME] [--device-token T]", 1, 1,
     O_NAME | O_DEVICE_TOKEN, device_add},
    {"device", "list", "[--group NAME]", 0, 0, O_GROUP, device_list},
    {"device", "show", "CONTROLLER_ID", 1, 1, 0, device_show},
    {"group", "create", "NAME", 1, 1, 0, group_create},
    {"group", "add", "NAME CONTROLLER_ID...", 2, -1, 0, group_add},
    {"group", "list", "", 0, 0, 0, group_list},
    {"group", "show", "NAME", 1, 1, 0, group_show},
    {"campaign", "create",
     "NAME --artifact NAME|ID [--group NAME] [--waves 1,10,50,100]\n"
     "                         [--failure-threshold PCT] [--start-at T] [--attempt]",
     1, 1, O_ARTIFACT | O_GROUP | O_WAVES | O_THRESHOLD | O_START_AT | O_ATTEMPT, campaign_create},
    {"campaign", "pause", "NAME [--reason TEXT]", 1, 1, O_REASON, campaign_verb},
    {"campaign", "resume", "NAME", 1, 1, 0, campaign_verb},
    {"campaign", "cancel", "NAME [--reason TEXT]", 1, 1, O_REASON, campaign_verb},
    {"campaign", "status", "NAME", 1, 1, 0, campaign_verb},
    {"campaign", "list", "", 0, 0, 0, campaign_list},
};

#define NSUBS (sizeof(subs) / sizeof(subs[0]))

static void usage(FILE *out, const char *family)
{
    fprintf(out, "usage:\n");
    for (size_t i = 0; i < NSUBS; i++) {
        if (strcmp(subs[i].family, family) == 0) {
            fprintf(out, "  airlock %s %s%s%s\n", family, subs[i].name,
                    *subs[i].synopsis ? " " : "", subs[i].synopsis);
        }
    }
    fprintf(
        out,
        "\n"
        "Talks to an airlock server's operator API (see docs/server.md).\n"
        "\n"
        "  --server URL        the server, e.g. https://localhost:8443 (default: $AIRLOCK_SERVER)\n"
        "  --token T           the operator token (default: $AIRLOCK_TOKEN)\n"
        "  --token-file F      read the operator token from F (e.g. DIR/operator.token)\n"
        "  --ca FILE           CA certificate(s) to trust (default: $AIRLOCK_CA, else the\n"
        "                      system's); `server init` made DIR/tls/ca.pem\n"
        "  --json              print the server's JSON answer instead of a table\n");
    if (strcmp(family, "campaign") == 0) {
        fprintf(
            out,
            "\n"
            "  --artifact A        the artifact to roll out (name or id)\n"
            "  --group G           only the devices of group G (default: every device)\n"
            "  --waves LIST        cumulative percentages of the devices per wave, ending\n"
            "                      with 100 (default 100: one wave)\n"
            "  --failure-threshold PCT  pause when more than PCT %% of a wave fails (default 10)\n"
            "  --start-at T        unix seconds or YYYY-MM-DDTHH:MM:SSZ (default: now)\n"
            "  --attempt           offer the update as \"attempt\" (soft) instead of forced\n"
            "  --reason TEXT       why (pause, cancel)\n");
    }
    fprintf(out, "\n"
                 "Exit codes: 0 ok, 2 usage, 3 file unreadable, 14 network, 15 TLS certificate,\n"
                 "16 server error (5xx), 18 request refused by the server (4xx: invalid, not\n"
                 "found, conflict, image rejected), 19 operator token missing or wrong (401/403).\n"
                 "See docs/cli.md.\n");
}

enum {
    OPT_SERVER = 256,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_CA,
    OPT_JSON,
    OPT_NAME,
    OPT_KIND,
    OPT_VERSION,
    OPT_DEVICE_TOKEN,
    OPT_GROUP,
    OPT_ARTIFACT,
    OPT_WAVES,
    OPT_THRESHOLD,
    OPT_START_AT,
    OPT_ATTEMPT,
    OPT_REASON,
};

static const struct option long_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"ca", required_argument, NULL, OPT_CA},
    {"json", no_argument, NULL, OPT_JSON},
    {"name", required_argument, NULL, OPT_NAME},
    {"kind", required_argument, NULL, OPT_KIND},
    {"version", required_argument, NULL, OPT_VERSION},
    {"device-token", required_argument, NULL, OPT_DEVICE_TOKEN},
    {"group", required_argument, NULL, OPT_GROUP},
    {"artifact", required_argument, NULL, OPT_ARTIFACT},
    {"waves", required_argument, NULL, OPT_WAVES},
    {"failure-threshold", required_argument, NULL, OPT_THRESHOLD},
    {"start-at", required_argument, NULL, OPT_START_AT},
    {"attempt", no_argument, NULL, OPT_ATTEMPT},
    {"reason", required_argument, NULL, OPT_REASON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse(struct fleet *f, int argc, char **argv)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        unsigned bit = 0;
        switch (c) {
        case OPT_SERVER:
            f->server = optarg;
            break;
        case OPT_TOKEN:
            f->token_arg = optarg;
            break;
        case OPT_TOKEN_FILE:
            f->token_file = optarg;
            break;
        case OPT_CA:
            f->ca = optarg;
            break;
        case OPT_JSON:
            f->json = true;
            break;
        case OPT_NAME:
            f->name = optarg, bit = O_NAME;
            break;
        case OPT_KIND:
            f->kind = optarg, bit = O_KIND;
            break;
        case OPT_VERSION:
            f->version = optarg, bit = O_VERSION;
            break;
        case OPT_DEVICE_TOKEN:
            f->device_token = optarg, bit = O_DEVICE_TOKEN;
            break;
        case OPT_GROUP:
            f->group = optarg, bit = O_GROUP;
            break;
        case OPT_ARTIFACT:
            f->artifact = optarg, bit = O_ARTIFACT;
            break;
        case OPT_WAVES:
            f->waves = optarg, bit = O_WAVES;
            break;
        case OPT_THRESHOLD:
            if (cli_parse_u32_opt("--failure-threshold", optarg, 100, &f->threshold) != EXIT_OK_) {
                return EXIT_USAGE;
            }
            bit = O_THRESHOLD;
            break;
        case OPT_START_AT:
            f->start_at = optarg, bit = O_START_AT;
            break;
        case OPT_ATTEMPT:
            f->attempt = true, bit = O_ATTEMPT;
            break;
        case OPT_REASON:
            f->reason = optarg, bit = O_REASON;
            break;
        case 'h':
            usage(stdout, f->family);
            return -1;
        default:
            return cli_bad_option(c, argv);
        }
        f->used |= bit;
    }
    f->args = argv + optind;
    f->nargs = argc - optind;
    return EXIT_OK_;
}

static int fleet_main(const char *family, int argc, char **argv)
{
    struct fleet f;
    memset(&f, 0, sizeof(f));
    f.family = family;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout, family);
        return argc < 2 ? EXIT_USAGE : EXIT_OK_;
    }
    const struct sub *s = NULL;
    for (size_t i = 0; i < NSUBS && !s; i++) {
        if (strcmp(subs[i].family, family) == 0 && strcmp(subs[i].name, argv[1]) == 0) {
            s = &subs[i];
        }
    }
    if (!s) {
        cli_fail(EXIT_USAGE, "unknown subcommand '%s'", argv[1]);
        usage(stderr, family);
        return EXIT_USAGE;
    }
    f.sub = s->name;
    int rc = parse(&f, argc - 1, argv + 1);
    if (rc != EXIT_OK_) {
        return rc < 0 ? EXIT_OK_ : rc;
    }
    if (f.used & ~s->opts) {
        for (const struct option *o = long_opts; o->name; o++) {
            unsigned bit =
                o->val >= OPT_NAME && o->val <= OPT_REASON ? 1u << (o->val - OPT_NAME) : 0;
            if (bit & f.used & ~s->opts) {
                return cli_fail(EXIT_USAGE, "--%s does not apply to 'airlock %s %s'", o->name,
                                family, s->name);
            }
        }
    }
    if (f.nargs < s->min_args || (s->max_args >= 0 && f.nargs > s->max_args)) {
        return cli_fail(EXIT_USAGE, "usage: airlock %s %s %s", family, s->name, s->synopsis);
    }
    if (!f.server) {
        f.server = getenv("AIRLOCK_SERVER");
    }
    if (!f.server || !*f.server) {
        return cli_fail(EXIT_USAGE, "no server: give --server URL or set AIRLOCK_SERVER");
    }
    if (strncmp(f.server, "https://", 8) != 0 && strncmp(f.server, "http://", 7) != 0) {
        return cli_fail(EXIT_USAGE, "--server '%s': expected https://HOST[:PORT]", f.server);
    }
    if (strncmp(f.server, "http://", 7) == 0) {
        cli_note("warning: plain HTTP: the operator token travels in clear");
    }
    if (!f.ca) {
        f.ca = getenv("AIRLOCK_CA");
        if (f.ca && !*f.ca) {
            f.ca = NULL;
        }
    }
    if (f.ca && access(f.ca, R_OK) != 0) {
        return cli_fail(EXIT_IO, "cannot read --ca %s: %s", f.ca, strerror(errno));
    }
    if ((rc = load_token(&f)) != EXIT_OK_) {
        return rc;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = s->run(&f);
    curl_global_cleanup();
    return rc;
}

int cmd_artifact(int argc, char **argv)
{
    return fleet_main("artifact", argc, argv);
}

int cmd_device(int argc, char **argv)
{
    return fleet_main("device", argc, argv);
}

int cmd_group(int argc, char **argv)
{
    return fleet_main("group", argc, argv);
}

int cmd_campaign(int argc, char **argv)
{
    return fleet_main("campaign", argc, argv);
}
