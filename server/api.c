/*
 * The operator API: JSON over HTTPS under /api/v1, authenticated with the
 * operator token (Authorization: Bearer). Artifacts (an image is verified
 * against the trusted keys on upload, and nothing is stored unless it
 * verifies), devices and their tokens, groups, campaigns. Every field of a
 * body is checked and a bad one is answered 400 naming it; unknown fields are
 * refused, so a typo never silently falls back to a default. Device tokens
 * are never operator tokens. See docs/server.md.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "airlock/crypto_openssl.h"
#include "airlock/fd_source.h"
#include "server.h"

/*
 * The upload route's own limit, the largest max_artifact_mb allows; the
 * configured one is applied on the request's headers (server.c's upload
 * gate) and checked again here.
 */
#define UPLOAD_ROUTE_LIMIT (65536ull * 1024 * 1024)
#define REASON_MAX 200
#define HISTORY_MAX 1000 /* feedback entries shown per device */

/* Header flags no device of ours installs (as core/ota.c refuses them). */
#define UNINSTALLABLE_FLAGS                                                                        \
    (AIRLOCK_IMAGE_F_NON_BOOTABLE | AIRLOCK_IMAGE_F_ENCRYPTED_AES128 |                             \
     AIRLOCK_IMAGE_F_ENCRYPTED_AES256 | AIRLOCK_IMAGE_F_COMPRESSED_LZMA1 |                         \
     AIRLOCK_IMAGE_F_COMPRESSED_LZMA2)

/* ---- answers ----------------------------------------------------------------------- */

static void bad_request(srv_resp_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad_request(srv_resp_t *w, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv_resp_error(w, 400, "airlock.api.invalid", "%s", msg);
}

/* A store failure: 503 + Retry-After when the database is locked, else 500. */
static void store_fail(srv_resp_t *w, const store_t *st, int rc, const char *what)
{
    if (rc == STORE_BUSY) {
        srv_resp_error(w, 503, "airlock.server.busy", "%s: the database is busy, retry", what);
        srv_resp_header(w, "Retry-After", "2");
        return;
    }
    srv_resp_error(w, 500, "airlock.server.store", "%s: %s (%s)", what, st->errmsg,
                   store_errname(rc));
}

static json_t *time_or_null(int64_t t)
{
    return t > 0 ? json_integer((json_int_t)t) : json_null();
}

static json_t *string_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* ---- validation -------------------------------------------------------------------- */

/*
 * Names of artifacts, groups and campaigns become URL path segments: 1..127
 * characters of A-Z a-z 0-9 . _ - and not only dots ("." and ".." are path
 * steps to any client).
 */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    bool dots_only = true;
    if (n == 0 || n >= STORE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
        dots_only &= c == '.';
    }
    return !dots_only;
}

/* A version as given for an opaque artifact: 1..47 printable, no spaces. */
static bool valid_version(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= STORE_VERSION_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* A device token given by the operator: 16..128 visible ASCII characters (a header value). */
static bool valid_token(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool parse_id(const char *s, int64_t *out)
{
    char *e;
    if (!isdigit((unsigned char)s[0])) {
        return false;
    }
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e || v <= 0) {
        return false;
    }
    *out = v;
    return true;
}

/* Refuse fields not in allowed (NULL-terminated). */
static bool only_fields(srv_resp_t *w, json_t *j, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++) {
            known = strcmp(k, allowed[i]) == 0;
        }
        if (!known) {
            char list[200] = "";
            size_t len = 0;
            for (size_t i = 0; allowed[i] && len < sizeof(list); i++) {
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
                                        allowed[i]);
            }
            bad_request(w, "unknown field \"%.60s\" (expected: %s)", k, list);
            return false;
        }
    }
    return true;
}

/*
 * A string field: *out is NULL when absent (or JSON null); answers 400 when
 * it is required and absent, not a string, empty, or max bytes or longer.
 */
static bool string_field(srv_resp_t *w, json_t *j, const char *field, bool required, size_t max,
                         const char **out)
{
    json_t *v = json_object_get(j, field);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) {
            bad_request(w, "%s: required", field);
            return false;
        }
        return true;
    }
    if (!json_is_string(v)) {
        bad_request(w, "%s: must be a string", field);
        return false;
    }
    const char *s = json_string_value(v);
    if (!*s || strlen(s) >= max) {
        bad_request(w, "%s: must be 1 to %zu bytes", field, max - 1);
        return false;
    }
    if (strlen(s) != json_string_length(v)) {
        bad_request(w, "%s: must not contain NUL characters", field);
        return false;
    }
    *out = s;
    return true;
}

/* An optional JSON body (pause, cancel, resume): NULL body is an empty object. */
static json_t *optional_body(srv_req_t *r, srv_resp_t *w)
{
    if (!r->body || r->body_len == 0) {
        return json_object();
    }
    return srv_parse_body(r, w, false);
}

/* ---- look-ups ---------------------------------------------------------------------- */

/* By name, else (for a number that is no name) by id. */
static int find_artifact(store_t *st, const char *ref, store_artifact_t *a)
{
    int64_t id;
    int rc = st->ops->artifact_by_name(st, ref, a);
    if (rc == STORE_NOT_FOUND && parse_id(ref, &id)) {
        rc = st->ops->artifact_get(st, id, a);
    }
    return rc;
}

static int find_campaign(store_t *st, const char *ref, store_campaign_t *c)
{
    int64_t id;
    int rc = st->ops->campaign_by_name(st, ref, c);
    if (rc == STORE_NOT_FOUND && parse_id(ref, &id)) {
        rc = st->ops->campaign_get(st, id, c);
    }
    return rc;
}

/* ---- JSON of rows ------------------------------------------------------------------ */

static const char *kind_name(int kind)
{
    return kind == STORE_ART_OPAQUE ? "opaque" : "image";
}

static json_t *artifact_json(const store_artifact_t *a)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)a->id,
                     "name", a->name, "kind", kind_name(a->kind), "version", a->version, "size",
                     (json_int_t)a->size, "sha256", a->sha256, "sha1", a->sha1, "md5", a->md5,
                     "created_at", (json_int_t)a->created_at);
}

static json_t *device_json(const store_device_t *d)
{
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:I}", "controller_id", d->controller_id, "name", d->name,
                  "polls", (json_int_t)d->polls, "created_at", (json_int_t)d->created_at);
    json_object_set_new(j, "version", string_or_null(d->version));
    json_object_set_new(j, "last_seen", time_or_null(d->last_seen));
    return j;
}

static json_t *counts_json(const store_counts_t *n)
{
    json_t *j = json_object();
    for (int s = STORE_ACT_PENDING; s <= STORE_ACT_SKIPPED; s++) {
        json_object_set_new(j, store_action_state_name(s), json_integer((json_int_t)n->n[s]));
    }
    json_object_set_new(j, "total", json_integer((json_int_t)n->total));
    return j;
}

static json_t *action_json(const store_action_t *a, const char *campaign)
{
    json_t *j = json_pack("{s:I, s:I, s:i, s:s, s:{s:i, s:i}, s:I, s:I}", "id", (json_int_t)a->id,
                          "campaign_id", (json_int_t)a->campaign_id, "wave", (int)a->wave + 1,
                          "state", store_action_state_name(a->state), "progress", "cnt",
                          a->progress_cnt, "of", a->progress_of, "created_at",
                          (json_int_t)a->created_at, "updated_at", (json_int_t)a->updated_at);
    json_object_set_new(j, "campaign", string_or_null(campaign));
    json_object_set_new(j, "details", string_or_null(a->details));
    return j;
}

/*
 * A campaign's status: state and reason, its artifact and group, the wave
 * being rolled out (1-based) and the action counts per state, overall and
 * per wave. NULL (and *rc) on a store error.
 */
static json_t *campaign_json(store_t *st, const store_campaign_t *c, int *rc)
{
    store_artifact_t art;
    store_group_t g;
    store_counts_t all;
    memset(&g, 0, sizeof(g));
    *rc = st->ops->artifact_get(st, c->artifact_id, &art);
    if (*rc == STORE_OK && c->group_id) {
        *rc = st->ops->group_get(st, c->group_id, &g);
    }
    if (*rc == STORE_OK) {
        *rc = st->ops->action_counts(st, c->id, -1, &all);
    }
    if (*rc != STORE_OK) {
        return NULL;
    }
    json_t *waves = json_array();
    for (unsigned i = 0; i < c->nwaves && *rc == STORE_OK; i++) {
        store_counts_t n;
        *rc = st->ops->action_counts(st, c->id, (int)i, &n);
        if (*rc == STORE_OK) {
            json_array_append_new(waves, json_pack("{s:i, s:i, s:o}", "wave", (int)i + 1, "percent",
                                                   (int)c->waves[i], "counts", counts_json(&n)));
        }
    }
    if (*rc != STORE_OK) {
        json_decref(waves);
        return NULL;
    }
    json_t *pct = json_array();
    for (unsigned i = 0; i < c->nwaves; i++) {
        json_array_append_new(pct, json_integer(c->waves[i]));
    }
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:s, s:{s:I, s:s, s:s}, s:o, s:i, s:i, s:i, s:b, s:o, s:o, s:I, s:I}",
        "id", (json_int_t)c->id, "name", c->name, "state", store_campaign_state_name(c->state),
        "reason", c->reason, "artifact", "id", (json_int_t)art.id, "name", art.name, "version",
        art.version, "waves", pct, "wave", (int)c->current_wave + 1, "nwaves", (int)c->nwaves,
        "failure_threshold", (int)c->failure_pct, "forced", c->forced, "counts", counts_json(&all),
        "per_wave", waves, "created_at", (json_int_t)c->created_at, "updated_at",
        (json_int_t)c->updated_at);
    json_object_set_new(j, "group", c->group_id ? json_string(g.name) : json_null());
    json_object_set_new(j, "start_at", time_or_null(c->start_at));
    return j;
}

/* ---- artifacts: upload ------------------------------------------------------------- */

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256, SHA-1 and MD5 of the first size bytes of fd, in one pass. Returns 0 or -1. */
static int file_digests(int fd, uint64_t size, store_artifact_t *a)
{
    const EVP_MD *md[3] = {EVP_sha256(), EVP_sha1(), EVP_md5()};
    char *out[3] = {a->sha256, a->sha1, a->md5};
    EVP_MD_CTX *ctx[3] = {NULL, NULL, NULL};
    unsigned char *buf = malloc(1u << 16);
    int ok = buf != NULL;
    for (int i = 0; i < 3 && ok; i++) {
        ctx[i] = EVP_MD_CTX_new();
        ok = ctx[i] && EVP_DigestInit_ex(ctx[i], md[i], NULL) == 1;
    }
    uint64_t off = 0;
    while (ok && off < size) {
        size_t want = size - off < (1u << 16) ? (size_t)(size - off) : (1u << 16);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        ok = n > 0;
        for (int i = 0; i < 3 && ok; i++) {
            ok = EVP_DigestUpdate(ctx[i], buf, (size_t)n) == 1;
        }
        off += ok ? (uint64_t)n : 0;
    }
    for (int i = 0; i < 3 && ok; i++) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        ok = EVP_DigestFinal_ex(ctx[i], d, &len) == 1;
        if (ok) {
            to_hex(d, len, out[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        EVP_MD_CTX_free(ctx[i]);
    }
    free(buf);
    return ok ? 0 : -1;
}

/* 422 for an image that does not verify, naming the error, field and offset. */
static void reject_image(srv_resp_t *w, int err, const airlock_err_detail_t *det)
{
    char msg[400];
    int n = snprintf(msg, sizeof(msg), "image rejected: %s (%s)", airlock_errname(err),
                     airlock_strerror(err));
    if (det->field && n > 0 && (size_t)n < sizeof(msg)) {
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": field %s at offset %u (0x%x)",
                      det->field, (unsigned)det->offset, (unsigned)det->offset);
    }
    if (det->has_values && n > 0 && (size_t)n < sizeof(msg)) {
        snprintf(msg + n, sizeof(msg) - (size_t)n, ", expected %u (0x%x), found %u (0x%x)",
                 (unsigned)det->expected, (unsigned)det->expected, (unsigned)det->found,
                 (unsigned)det->found);
    }
    json_t *j = json_pack("{s:s, s:s, s:s}", "errorCode", "airlock.artifact.rejected", "message",
                          msg, "error", airlock_errname(err));
    if (det->field) {
        json_object_set_new(j, "field", json_string(det->field));
        json_object_set_new(j, "offset", json_integer(det->offset));
    }
    srv_resp_json(w, 422, j);
}

/*
 * Parse and verify the uploaded image against the trusted keys (the checks
 * a device makes), then take its version from the header. Answers 422 and
 * returns false when it does not verify.
 */
static bool verify_image(srv_req_t *r, srv_resp_t *w, int fd, uint64_t size, char *version,
                         size_t cap)
{
    const srv_t *s = r->srv;
    airlock_err_detail_t det;
    memset(&det, 0, sizeof(det));
    if (s->nkeys == 0) {
        srv_resp_error(w, 422, "airlock.artifact.rejected",
                       "image rejected: the server trusts no image signing key, so no image can "
                       "be verified (put public keys in %s/keys/ and restart it)",
                       s->cfg.dir);
        return false;
    }
    if (size > UINT32_MAX) {
        srv_resp_error(w, 422, "airlock.artifact.rejected",
                       "image rejected: %" PRIu64 " bytes; images are limited to 4 GiB", size);
        return false;
    }
    airlock_source_t src;
    airlock_fd_source(&src, &fd, (uint32_t)size);
    airlock_image_t img;
    airlock_verify_result_t res;
    int rc = airlock_image_parse(&src, &img, &det);
    if (rc == AIRLOCK_ERR_OK) {
        uint8_t *buf = malloc(1u << 16);
        airlock_verify_cfg_t cfg = {&airlock_crypto_openssl, s->keys, s->nkeys, buf,
                                    buf ? 1u << 16 : 0};
        rc = airlock_image_verify(&src, &img, &cfg, &res, &det);
        free(buf);
    }
    if (rc == AIRLOCK_ERR_OK && (img.hdr.flags & UNINSTALLABLE_FLAGS)) {
        rc = AIRLOCK_ERR_NOT_BOOTABLE;
        memset(&det, 0, sizeof(det));
        det.field = "header.flags";
        det.offset = 16;
        det.found = img.hdr.flags & UNINSTALLABLE_FLAGS;
        det.has_values = 1;
    }
    if (rc != AIRLOCK_ERR_OK) {
        reject_image(w, rc, &det);
        return false;
    }
    const airlock_version_t *v = &img.hdr.version;
    if (v->build) {
        snprintf(version, cap, "%u.%u.%u+%" PRIu32, v->major, v->minor, v->revision, v->build);
    } else {
        snprintf(version, cap, "%u.%u.%u", v->major, v->minor, v->revision);
    }
    return true;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copy fd's first size bytes to a new file at path (for file systems without hard links). */
static int copy_to(int fd, uint64_t size, const char *path)
{
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        return -1;
    }
    char *buf = malloc(1u << 16);
    uint64_t off = 0;
    int ok = buf != NULL;
    while (ok && off < size) {
        size_t want = size - off < (1u << 16) ? (size_t)(size - off) : (1u << 16);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        ok = n > 0 && write(out, buf, (size_t)n) == n;
        off += ok ? (uint64_t)n : 0;
    }
    free(buf);
    ok = ok && fsync(out) == 0;
    ok = close(out) == 0 && ok;
    if (!ok) {
        unlink(path);
    }
    return ok ? 0 : -1;
}

/*
 * Give the (already synced) upload its final name DIR/artifacts/<sha256>.
 * A hard link, so the name appears complete or not at all and the HTTP
 * layer still removes its temporary name; content stored already is
 * reused. *created tells whether this call made the file.
 */
static int publish(srv_req_t *r, const store_artifact_t *a, bool *created)
{
    char dir[SRV_PATH_MAX + 16], path[SRV_PATH_MAX + 96], tmp[SRV_PATH_MAX + 128];
    struct stat sb;
    int fd = fileno(r->body_file);
    *created = false;
    snprintf(dir, sizeof(dir), "%s/artifacts", r->srv->cfg.dir);
    snprintf(path, sizeof(path), "%s/%s", dir, a->sha256);
    if (stat(path, &sb) == 0 && (uint64_t)sb.st_size == (uint64_t)a->size) {
        return 0; /* the same content (same SHA-256 and size) is stored already */
    }
    /* absent, or a damaged copy: put the new one in place atomically */
    snprintf(tmp, sizeof(tmp), "%s.new-%ld", path, (long)getpid());
    unlink(tmp);
    if (link(r->body_path, tmp) != 0 && copy_to(fd, (uint64_t)a->size, tmp) != 0) {
        return -1;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    *created = true;
    return fsync_dir(dir);
}

static void artifact_upload(srv_req_t *r, srv_resp_t *w)
{
    srv_t *s = r->srv;
    store_t *st = s->store;
    store_artifact_t a;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    if (r->body_len > s->cfg.max_artifact) {
        srv_resp_error(w, 413, "airlock.request.tooLarge",
                       "artifact of %zu bytes is larger than this server accepts (%" PRIu64
                       " bytes; max_artifact_mb in server.conf)",
                       r->body_len, s->cfg.max_artifact);
        return;
    }
    const char *name = srv_req_query(r, "name");
    const char *kind = srv_req_query(r, "kind");
    const char *version = srv_req_query(r, "version");
    if (!name || !valid_name(name)) {
        bad_request(w, "name: %s",
                    name ? "must be 1 to 127 characters of A-Z a-z 0-9 . _ - "
                           "(it becomes part of download URLs)"
                         : "required (?name=NAME)");
        return;
    }
    memset(&a, 0, sizeof(a));
    if (!kind || strcmp(kind, "image") == 0) {
        a.kind = STORE_ART_IMAGE;
    } else if (strcmp(kind, "opaque") == 0) {
        a.kind = STORE_ART_OPAQUE;
    } else {
        bad_request(w, "kind: \"%.40s\" is neither image nor opaque", kind);
        return;
    }
    if (version && !valid_version(version)) {
        bad_request(w, "version: must be 1 to %d printable characters without spaces",
                    STORE_VERSION_MAX - 1);
        return;
    }
    if (a.kind == STORE_ART_OPAQUE && !version) {
        bad_request(w, "version: required for kind=opaque (?version=V)");
        return;
    }
    if (!r->body_file || r->body_len == 0) {
        bad_request(w, "the body (the artifact's bytes) is empty");
        return;
    }
    /* a taken name is refused before any work (and checked again when storing) */
    store_artifact_t existing;
    int rc = st->ops->artifact_by_name(st, name, &existing);
    if (rc == STORE_OK) {
        srv_resp_error(w, 409, "airlock.api.exists", "an artifact named %s exists already", name);
        return;
    }
    if (rc != STORE_NOT_FOUND) {
        store_fail(w, st, rc, "artifact");
        return;
    }
    snprintf(a.name, sizeof(a.name), "%s", name);
    a.size = (int64_t)r->body_len;
    int fd = fileno(r->body_file);
    if (a.kind == STORE_ART_IMAGE) {
        char hv[STORE_VERSION_MAX];
        if (!verify_image(r, w, fd, r->body_len, hv, sizeof(hv))) {
            return;
        }
        if (version && strcmp(version, hv) != 0) {
            bad_request(w, "version: %s given, but the image's header says %s", version, hv);
            return;
        }
        snprintf(a.version, sizeof(a.version), "%s", hv);
    } else {
        snprintf(a.version, sizeof(a.version), "%s", version);
    }
    if (file_digests(fd, r->body_len, &a) != 0 || fsync(fd) != 0) {
        srv_resp_error(w, 500, "airlock.server.storage", "cannot read back the upload: %s",
                       strerror(errno));
        return;
    }
    /*
     * One transaction around the file's publication and its row: other
     * uploads wait, so none reuses a file this one is about to remove.
     */
    bool created = false;
    rc = st->ops->begin(st);
    if (rc != STORE_OK) {
        store_fail(w, st, rc, "artifact not stored");
        return;
    }
    if (publish(r, &a, &created) != 0) {
        int e = errno;
        st->ops->rollback(st);
        srv_resp_error(w, 500, "airlock.server.storage", "cannot store the artifact file: %s",
                       strerror(e));
        return;
    }
    a.created_at = srv_now();
    rc = st->ops->artifact_create(st, &a);
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
    } else {
        st->ops->rollback(st);
    }
    if (rc != STORE_OK) {
        if (created) {
            char path[SRV_PATH_MAX + 96];
            snprintf(path, sizeof(path), "%s/artifacts/%s", s->cfg.dir, a.sha256);
            unlink(path);
        }
        if (rc == STORE_EXISTS) {
            srv_resp_error(w, 409, "airlock.api.exists", "an artifact named %s exists already",
                           name);
        } else {
            store_fail(w, st, rc, "artifact not stored");
        }
        return;
    }
    fprintf(stderr, "airlock server: artifact %s (%s %s, %" PRId64 " bytes, sha256 %s)\n", a.name,
            kind_name(a.kind), a.version, a.size, a.sha256);
    srv_resp_json(w, 201, artifact_json(&a));
}

/* ---- artifacts: read --------------------------------------------------------------- */

static int add_artifact(void *ctx, const store_artifact_t *a)
{
    return json_array_append_new(ctx, artifact_json(a)) != 0;
}

static void artifact_list(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *arr = json_array();
    int rc = st->ops->artifact_list(st, add_artifact, arr);
    if (rc != STORE_OK) {
        json_decref(arr);
        store_fail(w, st, rc, "artifacts");
        return;
    }
    srv_resp_json(w, 200, json_pack("{s:o}", "artifacts", arr));
}

static void artifact_show(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    store_artifact_t a;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    int rc = find_artifact(st, r->segs[3], &a);
    if (rc == STORE_NOT_FOUND) {
        srv_resp_error(w, 404, "airlock.api.notFound", "no artifact %s", r->segs[3]);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "artifact");
    } else {
        srv_resp_json(w, 200, artifact_json(&a));
    }
}

/* ---- devices ----------------------------------------------------------------------- */

static void device_add(srv_req_t *r, srv_resp_t *w)
{
    static const char *const fields[] = {"controller_id", "name", "token", NULL};
    store_t *st = r->srv->store;
    const char *cid, *name, *token;
    char tok[33], hash[65];
    store_device_t d, other;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, false);
    if (!j) {
        return;
    }
    if (!only_fields(w, j, fields) ||
        !string_field(w, j, "controller_id", true, STORE_NAME_MAX, &cid) ||
        !string_field(w, j, "name", false, STORE_NAME_MAX, &name) ||
        !string_field(w, j, "token", false, 129, &token)) {
        json_decref(j);
        return;
    }
    if (!srv_valid_controller_id(cid)) {
        bad_request(w, "controller_id: must be 1 to 127 characters of A-Z a-z 0-9 - _ . :");
        json_decref(j);
        return;
    }
    if (token && !valid_token(token)) {
        bad_request(w, "token: must be 16 to 128 visible ASCII characters (no spaces)");
        json_decref(j);
        return;
    }
    if (!token) {
        if (srv_token_new(tok) != 0) {
            json_decref(j);
            srv_resp_error(w, 500, "airlock.server.random", "no random bytes for a token");
            return;
        }
        token = tok;
    }
    memset(&d, 0, sizeof(d));
    snprintf(d.controller_id, sizeof(d.controller_id), "%s", cid);
    snprintf(d.name, sizeof(d.name), "%s", name ? name : cid);
    srv_sha256_hex(token, strlen(token), hash);
    snprintf(d.token_hash, sizeof(d.token_hash), "%s", hash);
    d.created_at = srv_now();
    int rc = st->ops->begin(st);
    bool taken = false;
    if (rc == STORE_OK) {
        /* a token names one device: DDI finds the device by it (401 vs 403) */
        rc = st->ops->device_by_token(st, hash, &other);
        if (rc == STORE_OK) {
            store_device_clear(&other);
            taken = true;
            rc = STORE_EXISTS;
        } else if (rc == STORE_NOT_FOUND) {
            rc = st->ops->device_create(st, &d);
        }
        if (rc == STORE_OK) {
            rc = st->ops->commit(st);
        } else {
            st->ops->rollback(st);
        }
    }
    if (rc == STORE_EXISTS) {
        srv_resp_error(w, 409, "airlock.api.exists",
                       taken ? "token: already the token of another device"
                             : "a device with controller_id %s exists already",
                       cid);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "device not registered");
    } else {
        json_t *out = device_json(&d);
        /* the only time the token is shown: only its SHA-256 is kept */
        json_object_set_new(out, "token", json_string(token));
        srv_resp_json(w, 201, out);
    }
    json_decref(j);
}

struct devlist {
    store_device_t *v;
    size_t n, cap;
};

/* Copy rows out of the list callback: no store op may run inside it. */
static int collect_device(void *ctx, const store_device_t *d)
{
    struct devlist *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        store_device_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = *d;
    l->v[l->n].attributes = NULL; /* the store's, valid during the call only */
    l->n++;
    return 0;
}

/* Names of campaigns already looked up, for lists of actions. */
struct names {
    int64_t id[32];
    char name[32][STORE_NAME_MAX];
    size_t n;
};

static const char *campaign_name(store_t *st, struct names *c, int64_t id)
{
    store_campaign_t camp;
    for (size_t i = 0; i < c->n; i++) {
        if (c->id[i] == id) {
            return c->name[i];
        }
    }
    if (st->ops->campaign_get(st, id, &camp) != STORE_OK) {
        return NULL;
    }
    size_t i = c->n < 32 ? c->n++ : 31;
    c->id[i] = id;
    snprintf(c->name[i], sizeof(c->name[i]), "%s", camp.name);
    return c->name[i];
}

/* Check-ins are written once a second (srv_note_seen): write them now, so lists are current. */
static json_t *device_list_json(srv_t *s, int64_t group_id, bool with_action, int *rc)
{
    store_t *st = s->store;
    srv_flush_seen(s);
    struct devlist l = {0};
    struct names names = {.n = 0};
    *rc = st->ops->device_list(st, group_id, collect_device, &l);
    if (*rc != STORE_OK) {
        free(l.v);
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++) {
        json_t *d = device_json(&l.v[i]);
        store_action_t a;
        if (with_action && st->ops->action_open_for_device(st, l.v[i].id, &a) == STORE_OK) {
            json_object_set_new(d, "action",
                                action_json(&a, campaign_name(st, &names, a.campaign_id)));
        } else if (with_action) {
            json_object_set_new(d, "action", json_null());
        }
        json_array_append_new(arr, d);
    }
    free(l.v);
    return arr;
}

static void device_list(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    store_group_t g;
    int64_t gid = 0;
    int rc;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    const char *group = srv_req_query(r, "group");
    if (group) {
        rc = st->ops->group_by_name(st, group, &g);
        if (rc == STORE_NOT_FOUND) {
            srv_resp_error(w, 404, "airlock.api.notFound", "no group %s", group);
            return;
        }
        if (rc != STORE_OK) {
            store_fail(w, st, rc, "group");
            return;
        }
        gid = g.id;
    }
    json_t *arr = device_list_json(r->srv, gid, true, &rc);
    if (!arr) {
        store_fail(w, st, rc, "devices");
        return;
    }
    srv_resp_json(w, 200, json_pack("{s:o}", "devices", arr));
}

struct history {
    json_t *arr;
    size_t n;
};

struct actrows {
    store_action_t *v;
    size_t n, cap;
};

static int collect_action(void *ctx, const store_action_t *a)
{
    struct actrows *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        store_action_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *a;
    return 0;
}

static int add_feedback(void *ctx, const store_feedback_t *f)
{
    struct history *h = ctx;
    if (h->n++ >= HISTORY_MAX) {
        return 0; /* counted, not shown */
    }
    json_t *details = f->details ? json_loads(f->details, 0, NULL) : NULL;
    json_t *j = json_pack("{s:I, s:s, s:s, s:{s:i, s:i}, s:s, s:I}", "action_id",
                          (json_int_t)f->action_id, "execution", f->execution, "finished",
                          f->finished, "progress", "cnt", f->progress_cnt, "of", f->progress_of,
                          "time", f->time, "received_at", (json_int_t)f->received_at);
    json_object_set_new(j, "details", details ? details : json_array());
    return json_array_append_new(h->arr, j) != 0;
}

static void device_show(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    store_device_t d;
    struct actrows acts = {0};
    struct names names = {.n = 0};
    if (!srv_auth_operator(r, w)) {
        return;
    }
    const char *cid = r->segs[3];
    srv_flush_seen(r->srv); /* last_seen and polls as of now */
    int rc = st->ops->device_by_controller(st, cid, &d);
    if (rc == STORE_NOT_FOUND) {
        srv_resp_error(w, 404, "airlock.api.notFound", "no device %s", cid);
        return;
    }
    if (rc != STORE_OK) {
        store_fail(w, st, rc, "device");
        return;
    }
    json_t *j = device_json(&d);
    json_t *attrs = d.attributes ? json_loads(d.attributes, 0, NULL) : NULL;
    json_object_set_new(j, "attributes", attrs ? attrs : json_object());
    json_object_set_new(j, "has_token", json_boolean(d.token_hash[0] != '\0'));
    store_device_clear(&d);
    rc = st->ops->action_list(st, 0, d.id, collect_action, &acts);
    json_t *actions = json_array();
    for (size_t i = 0; rc == STORE_OK && i < acts.n; i++) {
        json_array_append_new(
            actions, action_json(&acts.v[i], campaign_name(st, &names, acts.v[i].campaign_id)));
    }
    free(acts.v);
    json_object_set_new(j, "actions", actions);
    struct history h = {json_array(), 0};
    if (rc == STORE_OK) {
        rc = st->ops->feedback_list(st, d.id, 0, add_feedback, &h);
    }
    json_object_set_new(j, "feedback", h.arr);
    json_object_set_new(j, "feedback_total", json_integer((json_int_t)h.n));
    if (rc != STORE_OK) {
        json_decref(j);
        store_fail(w, st, rc, "device history");
        return;
    }
    srv_resp_json(w, 200, j);
}

/* ---- groups ------------------------------------------------------------------------ */

static json_t *group_json(const store_group_t *g)
{
    return json_pack("{s:I, s:s, s:I}", "id", (json_int_t)g->id, "name", g->name, "devices",
                     (json_int_t)g->devices);
}

static void group_create(srv_req_t *r, srv_resp_t *w)
{
    static const char *const fields[] = {"name", NULL};
    store_t *st = r->srv->store;
    const char *name;
    store_group_t g;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, false);
    if (!j) {
        return;
    }
    if (!only_fields(w, j, fields) || !string_field(w, j, "name", true, STORE_NAME_MAX, &name)) {
        json_decref(j);
        return;
    }
    if (!valid_name(name)) {
        bad_request(w, "name: must be 1 to 127 characters of A-Z a-z 0-9 . _ -");
        json_decref(j);
        return;
    }
    memset(&g, 0, sizeof(g));
    snprintf(g.name, sizeof(g.name), "%s", name);
    int rc = st->ops->group_create(st, &g);
    if (rc == STORE_EXISTS) {
        srv_resp_error(w, 409, "airlock.api.exists", "a group named %s exists already", name);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "group not created");
    } else {
        srv_resp_json(w, 201, group_json(&g));
    }
    json_decref(j);
}

static void group_add(srv_req_t *r, srv_resp_t *w)
{
    static const char *const fields[] = {"devices", NULL};
    store_t *st = r->srv->store;
    const char *name = r->segs[3];
    store_group_t g;
    store_device_t d;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, false);
    if (!j) {
        return;
    }
    json_t *list = json_object_get(j, "devices"), *v;
    size_t i;
    if (!only_fields(w, j, fields)) {
        json_decref(j);
        return;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        bad_request(w, "devices: required, a non-empty array of controller ids");
        json_decref(j);
        return;
    }
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v) || !srv_valid_controller_id(json_string_value(v))) {
            bad_request(w,
                        "devices[%zu]: must be a controller id (1 to 127 characters of "
                        "A-Z a-z 0-9 - _ . :)",
                        i);
            json_decref(j);
            return;
        }
    }
    /* all or nothing: one unknown device and no device is added */
    int rc = st->ops->begin(st);
    const char *missing = NULL;
    bool no_group = false;
    if (rc == STORE_OK) {
        rc = st->ops->group_by_name(st, name, &g);
        no_group = rc == STORE_NOT_FOUND;
        json_array_foreach(list, i, v)
        {
            if (rc != STORE_OK) {
                break;
            }
            rc = st->ops->device_by_controller(st, json_string_value(v), &d);
            if (rc == STORE_NOT_FOUND) {
                missing = json_string_value(v);
                break;
            }
            if (rc == STORE_OK) {
                store_device_clear(&d);
                rc = st->ops->group_add(st, g.id, d.id);
            }
        }
        if (rc == STORE_OK) {
            rc = st->ops->commit(st);
        } else {
            st->ops->rollback(st);
        }
    }
    if (no_group) {
        srv_resp_error(w, 404, "airlock.api.notFound", "no group %s", name);
    } else if (missing) {
        srv_resp_error(w, 404, "airlock.api.notFound",
                       "no device %s: nothing was added to group %s", missing, name);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "group not changed");
    } else if ((rc = st->ops->group_get(st, g.id, &g)) != STORE_OK) {
        store_fail(w, st, rc, "group");
    } else {
        srv_resp_json(w, 200, group_json(&g));
    }
    json_decref(j);
}

static int add_group(void *ctx, const store_group_t *g)
{
    return json_array_append_new(ctx, group_json(g)) != 0;
}

static void group_list(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *arr = json_array();
    int rc = st->ops->group_list(st, add_group, arr);
    if (rc != STORE_OK) {
        json_decref(arr);
        store_fail(w, st, rc, "groups");
        return;
    }
    srv_resp_json(w, 200, json_pack("{s:o}", "groups", arr));
}

static void group_show(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    store_group_t g;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    int rc = st->ops->group_by_name(st, r->segs[3], &g);
    if (rc == STORE_NOT_FOUND) {
        srv_resp_error(w, 404, "airlock.api.notFound", "no group %s", r->segs[3]);
        return;
    }
    json_t *members = rc == STORE_OK ? device_list_json(r->srv, g.id, false, &rc) : NULL;
    if (!members) {
        store_fail(w, st, rc, "group");
        return;
    }
    json_t *j = group_json(&g);
    json_object_set_new(j, "members", members);
    srv_resp_json(w, 200, j);
}

/* ---- campaigns --------------------------------------------------------------------- */

/* "2026-11-25T12:00:00Z" (UTC) to unix seconds. false if malformed. */
static bool parse_utc(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19 ||
        strcmp(s + n, "Z") != 0) {
        return false;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 ||
        h < 0 || mi < 0 || sec < 0) {
        return false;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    struct tm back;
    /* timegm normalises Feb 30 into March: a date that moved was not a date */
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1) {
        return false;
    }
    *out = (int64_t)t;
    return true;
}

/* Fill c from a create body; answers 400 naming the field and returns false. */
static bool parse_campaign(srv_req_t *r, srv_resp_t *w, json_t *j, store_campaign_t *c)
{
    static const char *const fields[] = {
        "name", "artifact", "group", "waves", "failure_threshold", "start_at", "forced", NULL};
    store_t *st = r->srv->store;
    const char *name, *group;
    json_t *v;
    int rc;
    memset(c, 0, sizeof(*c));
    if (!only_fields(w, j, fields) || !string_field(w, j, "name", true, STORE_NAME_MAX, &name) ||
        !string_field(w, j, "group", false, STORE_NAME_MAX, &group)) {
        return false;
    }
    if (!valid_name(name)) {
        bad_request(w, "name: must be 1 to 127 characters of A-Z a-z 0-9 . _ -");
        return false;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);

    /* artifact: a name, or an id (a number or a string of digits) */
    store_artifact_t art;
    v = json_object_get(j, "artifact");
    if (json_is_integer(v)) {
        rc = json_integer_value(v) > 0 ? st->ops->artifact_get(st, json_integer_value(v), &art)
                                       : STORE_NOT_FOUND;
    } else if (json_is_string(v) && json_string_length(v) > 0 &&
               json_string_length(v) < STORE_NAME_MAX) {
        rc = find_artifact(st, json_string_value(v), &art);
    } else {
        bad_request(w, "artifact: required, the name or id of an uploaded artifact");
        return false;
    }
    if (rc == STORE_NOT_FOUND) {
        char *txt = json_dumps(v, JSON_ENCODE_ANY);
        bad_request(w, "artifact: no artifact %.130s", txt ? txt : "?");
        free(txt);
        return false;
    }
    if (rc != STORE_OK) {
        store_fail(w, st, rc, "artifact");
        return false;
    }
    c->artifact_id = art.id;

    if (group) {
        store_group_t g;
        rc = st->ops->group_by_name(st, group, &g);
        if (rc == STORE_NOT_FOUND) {
            bad_request(w, "group: no group %s", group);
            return false;
        }
        if (rc != STORE_OK) {
            store_fail(w, st, rc, "group");
            return false;
        }
        c->group_id = g.id;
    }

    v = json_object_get(j, "waves");
    if (!v || json_is_null(v)) {
        c->nwaves = 1;
        c->waves[0] = 100;
    } else {
        size_t i, n = json_is_array(v) ? json_array_size(v) : 0;
        json_t *x;
        if (n == 0 || n > STORE_MAX_WAVES) {
            bad_request(w,
                        "waves: must be an array of 1 to %d cumulative percentages, e.g. "
                        "[1, 10, 50, 100]",
                        STORE_MAX_WAVES);
            return false;
        }
        json_array_foreach(v, i, x)
        {
            json_int_t p = json_is_integer(x) ? json_integer_value(x) : -1;
            if (p < 1 || p > 100 || (i && p <= (json_int_t)c->waves[i - 1])) {
                bad_request(w,
                            "waves[%zu]: must be an integer percentage 1..100, above the "
                            "one before it",
                            i);
                return false;
            }
            c->waves[i] = (unsigned)p;
        }
        if (c->waves[n - 1] != 100) {
            bad_request(w, "waves: the last wave must be 100 (every target device)");
            return false;
        }
        c->nwaves = (unsigned)n;
    }

    v = json_object_get(j, "failure_threshold");
    c->failure_pct = 10;
    if (v && !json_is_null(v)) {
        json_int_t p = json_is_integer(v) ? json_integer_value(v) : -1;
        if (p < 0 || p > 100) {
            bad_request(w, "failure_threshold: must be an integer percentage 0..100");
            return false;
        }
        c->failure_pct = (unsigned)p;
    }

    v = json_object_get(j, "start_at");
    if (v && !json_is_null(v)) {
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            c->start_at = json_integer_value(v);
        } else if (!json_is_string(v) || !parse_utc(json_string_value(v), &c->start_at)) {
            bad_request(w, "start_at: expected unix seconds or a UTC time "
                           "YYYY-MM-DDTHH:MM:SSZ");
            return false;
        }
    }

    v = json_object_get(j, "forced");
    c->forced = true;
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            bad_request(w, "forced: must be true or false");
            return false;
        }
        c->forced = json_is_true(v);
    }
    return true;
}

static void campaign_answer(srv_resp_t *w, store_t *st, const store_campaign_t *c, unsigned status)
{
    int rc;
    json_t *j = campaign_json(st, c, &rc);
    if (!j) {
        store_fail(w, st, rc, "campaign status");
        return;
    }
    srv_resp_json(w, status, j);
}

static void campaign_create(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    store_campaign_t c;
    char msg[300];
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, false);
    if (!j) {
        return;
    }
    bool ok = parse_campaign(r, w, j, &c);
    json_decref(j);
    if (!ok) {
        return;
    }
    int rc = srv_campaign_create(r->srv, &c, msg, sizeof(msg));
    if (rc == STORE_EXISTS) {
        srv_resp_error(w, 409, "airlock.api.exists", "a campaign named %s exists already", c.name);
    } else if (rc == STORE_INVAL || rc == STORE_NOT_FOUND) {
        bad_request(w, "%s", msg);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "campaign not created");
    } else {
        fprintf(stderr, "airlock server: campaign %s created (%s)\n", c.name,
                store_campaign_state_name(c.state));
        campaign_answer(w, st, &c, 201);
    }
}

struct camprows {
    store_campaign_t *v;
    size_t n, cap;
};

static int collect_campaign(void *ctx, const store_campaign_t *c)
{
    struct camprows *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        store_campaign_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *c;
    return 0;
}

static void campaign_list(srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    struct camprows l = {0};
    if (!srv_auth_operator(r, w)) {
        return;
    }
    int rc = st->ops->campaign_list(st, 0, collect_campaign, &l);
    json_t *arr = json_array();
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
        json_t *c = campaign_json(st, &l.v[i], &rc);
        if (c) {
            json_array_append_new(arr, c);
        }
    }
    free(l.v);
    if (rc != STORE_OK) {
        json_decref(arr);
        store_fail(w, st, rc, "campaigns");
        return;
    }
    srv_resp_json(w, 200, json_pack("{s:o}", "campaigns", arr));
}

/* The campaign named in the path; answers 404 and returns false if there is none. */
static bool path_campaign(srv_req_t *r, srv_resp_t *w, store_campaign_t *c)
{
    store_t *st = r->srv->store;
    int rc = find_campaign(st, r->segs[3], c);
    if (rc == STORE_NOT_FOUND) {
        srv_resp_error(w, 404, "airlock.api.notFound", "no campaign %s", r->segs[3]);
        return false;
    }
    if (rc != STORE_OK) {
        store_fail(w, st, rc, "campaign");
        return false;
    }
    return true;
}

static void campaign_show(srv_req_t *r, srv_resp_t *w)
{
    store_campaign_t c;
    if (srv_auth_operator(r, w) && path_campaign(r, w, &c)) {
        campaign_answer(w, r->srv->store, &c, 200);
    }
}

enum op { OP_PAUSE, OP_RESUME, OP_CANCEL };

static void campaign_op(srv_req_t *r, srv_resp_t *w, enum op op)
{
    static const char *const with_reason[] = {"reason", NULL};
    static const char *const none[] = {NULL};
    static const char *const verbs[] = {"pause", "resume", "cancel"};
    static const char *const done[] = {"paused", "resumed", "cancelled"};
    static const char *const allowed[] = {"a running or scheduled", "a paused",
                                          "a running, scheduled or paused"};
    store_t *st = r->srv->store;
    store_campaign_t c;
    const char *reason = NULL;
    if (!srv_auth_operator(r, w)) {
        return;
    }
    json_t *j = optional_body(r, w);
    if (!j) {
        return;
    }
    if (!only_fields(w, j, op == OP_RESUME ? none : with_reason) ||
        !string_field(w, j, "reason", false, REASON_MAX, &reason) || !path_campaign(r, w, &c)) {
        json_decref(j);
        return;
    }
    int rc = op == OP_PAUSE    ? srv_campaign_pause(r->srv, c.id, reason)
             : op == OP_RESUME ? srv_campaign_resume(r->srv, c.id)
                               : srv_campaign_cancel(r->srv, c.id, reason);
    json_decref(j);
    if (rc == STORE_OK || rc == STORE_CONFLICT) {
        int rc2 = st->ops->campaign_get(st, c.id, &c);
        if (rc2 != STORE_OK) {
            store_fail(w, st, rc2, "campaign");
            return;
        }
    }
    if (rc == STORE_CONFLICT) {
        srv_resp_error(w, 409, "airlock.api.state", "campaign %s is %s: only %s campaign can be %s",
                       c.name, store_campaign_state_name(c.state), allowed[op], done[op]);
    } else if (rc != STORE_OK) {
        store_fail(w, st, rc, "campaign not changed");
    } else {
        fprintf(stderr, "airlock server: campaign %s: %s -> %s\n", c.name, verbs[op],
                store_campaign_state_name(c.state));
        campaign_answer(w, st, &c, 200);
    }
}

static void campaign_pause(srv_req_t *r, srv_resp_t *w)
{
    campaign_op(r, w, OP_PAUSE);
}

static void campaign_resume(srv_req_t *r, srv_resp_t *w)
{
    campaign_op(r, w, OP_RESUME);
}

static void campaign_cancel(srv_req_t *r, srv_resp_t *w)
{
    campaign_op(r, w, OP_CANCEL);
}

/* ---- routes ------------------------------------------------------------------------ */

const srv_route_t srv_api_routes[] = {
    {"POST", "/api/v1/artifacts", artifact_upload, true, UPLOAD_ROUTE_LIMIT},
    {"GET", "/api/v1/artifacts", artifact_list, false, 0},
    {"GET", "/api/v1/artifacts/{}", artifact_show, false, 0},
    {"POST", "/api/v1/devices", device_add, false, 0},
    {"GET", "/api/v1/devices", device_list, false, 0},
    {"GET", "/api/v1/devices/{}", device_show, false, 0},
    {"POST", "/api/v1/groups", group_create, false, 0},
    {"GET", "/api/v1/groups", group_list, false, 0},
    {"GET", "/api/v1/groups/{}", group_show, false, 0},
    {"POST", "/api/v1/groups/{}/devices", group_add, false, 0},
    {"POST", "/api/v1/campaigns", campaign_create, false, 0},
    {"GET", "/api/v1/campaigns", campaign_list, false, 0},
    {"GET", "/api/v1/campaigns/{}", campaign_show, false, 0},
    {"POST", "/api/v1/campaigns/{}/pause", campaign_pause, false, 0},
    {"POST", "/api/v1/campaigns/{}/resume", campaign_resume, false, 0},
    {"POST", "/api/v1/campaigns/{}/cancel", campaign_cancel, false, 0},
    {NULL, NULL, NULL, false, 0},
};
