/*
 * The operator API (server/api.c) through real HTTPS requests against a
 * running server (TLS with a CA made at test time by server/pki.c): the
 * operator token, artifact upload with verification (good, unsigned, bad
 * signature, untrusted key, garbage, too big: nothing stored unless it
 * verifies), devices and their tokens as DDI TargetTokens, groups,
 * campaigns with waves and a failure threshold, pause/resume/cancel and
 * their state conflicts, and bad input answered 400 naming the field.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../common/imgbuild.h"
#include "srvtest.h"

#define OPERATOR "operator-token-for-the-api-test"

static st_env_t env;
static char bearer[128];
static tu_key_t key;       /* the shared Ed25519 vector key: signs images */
static tu_key_t other_key; /* a fresh P-256 key the server does not trust */
static uint8_t trusted_der[128];
static airlock_pubkey_t trusted; /* from key-ed25519.pub.pem, as the server loads it */

/* ---- requests ------------------------------------------------------------------------- */

static st_resp_t req(const char *method, const char *path, const char *auth, const char *body)
{
    st_resp_t r = st_req(&env, method, path, auth, body, NULL, NULL);
    if (r.curl_code) {
        fail_msg("%s %s: %s", method, path, curl_easy_strerror((CURLcode)r.curl_code));
    }
    return r;
}

/* An operator request. */
static st_resp_t op(const char *method, const char *path, const char *body)
{
    return req(method, path, bearer, body);
}

/* POST raw bytes (an artifact upload) with the operator token. */
static st_resp_t upload(const char *query, const void *data, size_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "/api/v1/artifacts%s", query);
    st_resp_t r = st_req_bin(&env, "POST", path, bearer, data, len, "application/octet-stream");
    if (r.curl_code) {
        fail_msg("upload %s: %s", query, curl_easy_strerror((CURLcode)r.curl_code));
    }
    return r;
}

static json_t *body_json(const st_resp_t *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, &e);
    if (!j) {
        fail_msg("not JSON (%s): %.200s", e.text, r->body ? r->body : "");
    }
    return j;
}

static void expect_status(const st_resp_t *r, long status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: HTTP %ld, expected %ld: %.400s", what, r->status, status,
                 r->body ? r->body : "");
    }
}

/* Expect status and that the message contains each of the (NULL-terminated) words. */
static void expect_error(st_resp_t *r, long status, const char *what, ...)
{
    expect_status(r, status, what);
    json_t *j = body_json(r);
    const char *msg = json_string_value(json_object_get(j, "message"));
    assert_non_null(msg);
    va_list ap;
    va_start(ap, what);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *)) {
        if (!strstr(msg, w)) {
            fail_msg("%s: message \"%s\" does not name \"%s\"", what, msg, w);
        }
    }
    va_end(ap);
    json_decref(j);
    st_resp_free(r);
}

/* Status of a request whose answer is not looked at further. */
static long status_of(const char *method, const char *path, const char *body)
{
    st_resp_t r = op(method, path, body);
    long s = r.status;
    st_resp_free(&r);
    return s;
}

/* ---- images ---------------------------------------------------------------------------- */

static uint8_t *image(uint8_t major, uint8_t minor, uint16_t rev, uint32_t build, uint32_t seed,
                      const tu_key_t *k, size_t *len)
{
    tu_image_spec_t s;
    memset(&s, 0, sizeof(s));
    s.version = (airlock_version_t){major, minor, rev, build};
    s.hdr_size = 32;
    s.payload_len = 3000 + seed % 1000;
    s.seed = seed;
    s.key = k;
    uint8_t *p = tu_image_build(&s, len);
    assert_non_null(p);
    return p;
}

static void hex_digest(const char *md, const void *data, size_t len, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, d, &n, EVP_get_digestbyname(md), NULL), 1);
    for (unsigned i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}

/* Files in DIR/artifacts (the upload temp directory not counted). */
static int stored_files(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/artifacts", env.dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.' && strcmp(e->d_name, "tmp") != 0;
    }
    closedir(d);
    return n;
}

static size_t artifact_count(void)
{
    st_resp_t r = op("GET", "/api/v1/artifacts", NULL);
    expect_status(&r, 200, "artifact list");
    json_t *j = body_json(&r);
    size_t n = json_array_size(json_object_get(j, "artifacts"));
    json_decref(j);
    st_resp_free(&r);
    return n;
}

/* ---- authentication ---------------------------------------------------------------------- */

static void test_auth(void **state)
{
    (void)state;
    st_resp_t r = req("GET", "/api/v1/devices", NULL, NULL);
    expect_error(&r, 401, "no token", "Bearer", NULL);
    r = req("GET", "/api/v1/devices", "Bearer not-the-operator-token", NULL);
    expect_error(&r, 401, "wrong token", "unknown operator token", NULL);
    r = req("GET", "/api/v1/devices", "bearer " OPERATOR, NULL);
    expect_status(&r, 200, "scheme is case-insensitive");
    st_resp_free(&r);

    /* a device's TargetToken works on DDI and nowhere in the operator API */
    r = op("POST", "/api/v1/devices",
           "{\"controller_id\": \"auth-dev\", \"token\": \"auth-dev-token-0123456789\"}");
    expect_status(&r, 201, "device add");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/auth-dev", "TargetToken auth-dev-token-0123456789",
            NULL);
    expect_status(&r, 200, "the token works on DDI");
    st_resp_free(&r);
    r = req("GET", "/api/v1/devices", "TargetToken auth-dev-token-0123456789", NULL);
    expect_error(&r, 401, "TargetToken on /api", "Bearer", NULL);
    r = req("GET", "/api/v1/devices", "Bearer auth-dev-token-0123456789", NULL);
    expect_error(&r, 401, "device token as Bearer", "unknown operator token", NULL);
    r = req("POST", "/api/v1/groups", "GatewayToken " OPERATOR, "{\"name\": \"x\"}");
    expect_error(&r, 401, "GatewayToken on /api", "Bearer", NULL);
    /* nothing is stored by an unauthenticated upload */
    int files = stored_files();
    r = req("POST", "/api/v1/artifacts?name=noauth&kind=opaque&version=1", NULL, NULL);
    expect_status(&r, 401, "unauthenticated upload");
    st_resp_free(&r);
    assert_int_equal(stored_files(), files);
}

/* ---- artifacts ----------------------------------------------------------------------------- */

static void test_upload_good(void **state)
{
    (void)state;
    size_t len, len2;
    uint8_t *img = image(1, 2, 3, 0, 1, &key, &len);
    char sha256[65], sha1[41], md5[33], path[400];
    hex_digest("SHA256", img, len, sha256);
    hex_digest("SHA1", img, len, sha1);
    hex_digest("MD5", img, len, md5);

    st_resp_t r = upload("?name=fw-1.2.3.bin", img, len);
    expect_status(&r, 201, "upload");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "fw-1.2.3.bin");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "image");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "1.2.3");
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), sha256);
    assert_string_equal(json_string_value(json_object_get(j, "sha1")), sha1);
    assert_string_equal(json_string_value(json_object_get(j, "md5")), md5);
    assert_int_equal(json_integer_value(json_object_get(j, "size")), len);
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    st_resp_free(&r);

    /* stored as DIR/artifacts/<sha256>, byte for byte */
    snprintf(path, sizeof(path), "%s/artifacts/%s", env.dir, sha256);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, len);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *back = malloc(len);
    assert_int_equal(fread(back, 1, len, f), len);
    fclose(f);
    assert_memory_equal(back, img, len);
    free(back);

    /* by name and by id */
    r = op("GET", "/api/v1/artifacts/fw-1.2.3.bin", NULL);
    expect_status(&r, 200, "show by name");
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), sha256);
    json_decref(j);
    st_resp_free(&r);
    char idpath[64];
    snprintf(idpath, sizeof(idpath), "/api/v1/artifacts/%lld", (long long)id);
    r = op("GET", idpath, NULL);
    expect_status(&r, 200, "show by id");
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "fw-1.2.3.bin");
    json_decref(j);
    st_resp_free(&r);
    r = op("GET", "/api/v1/artifacts/no-such.bin", NULL);
    expect_error(&r, 404, "unknown artifact", "no-such.bin", NULL);

    /* a build number shows as +N; the same content under another name shares the file */
    int files = stored_files();
    uint8_t *img2 = image(2, 0, 1, 77, 2, &key, &len2);
    r = upload("?name=fw-2.bin&kind=image&version=2.0.1%2B77", img2, len2);
    expect_status(&r, 201, "upload with build number");
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "version")), "2.0.1+77");
    json_decref(j);
    st_resp_free(&r);
    assert_int_equal(stored_files(), files + 1);
    r = upload("?name=fw-2-again.bin", img2, len2);
    expect_status(&r, 201, "same content, another name");
    st_resp_free(&r);
    assert_int_equal(stored_files(), files + 1);

    /* duplicate name */
    size_t before = artifact_count();
    r = upload("?name=fw-1.2.3.bin", img2, len2);
    expect_error(&r, 409, "duplicate name", "fw-1.2.3.bin", NULL);
    assert_int_equal(artifact_count(), before);
    /* a ?version= the header contradicts */
    uint8_t *img3 = image(3, 0, 0, 0, 3, &key, &len);
    r = upload("?name=fw-3.bin&version=9.9.9", img3, len);
    expect_error(&r, 400, "version mismatch", "version", "3.0.0", NULL);
    free(img);
    free(img2);
    free(img3);
}

static void expect_rejected(const char *name, const uint8_t *data, size_t len, const char *err,
                            bool with_field)
{
    char q[200];
    size_t before = artifact_count();
    int files = stored_files();
    snprintf(q, sizeof(q), "?name=%s", name);
    st_resp_t r = upload(q, data, len);
    expect_status(&r, 422, name);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "errorCode")),
                        "airlock.artifact.rejected");
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg || !strstr(msg, err)) {
        fail_msg("%s: message \"%s\" does not name %s", name, msg ? msg : "", err);
    }
    assert_string_equal(json_string_value(json_object_get(j, "error")), err);
    if (with_field) {
        assert_non_null(json_string_value(json_object_get(j, "field")));
        assert_true(json_is_integer(json_object_get(j, "offset")));
        assert_non_null(strstr(msg, "offset"));
    }
    json_decref(j);
    st_resp_free(&r);
    /* nothing stored: no row, no file */
    assert_int_equal(artifact_count(), before);
    assert_int_equal(stored_files(), files);
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/artifacts/%s", name);
    assert_int_equal(status_of("GET", path, NULL), 404);
}

static void test_upload_rejected(void **state)
{
    (void)state;
    size_t len;
    uint8_t *img = image(1, 0, 0, 0, 10, NULL, &len);
    expect_rejected("unsigned.bin", img, len, "NO_SIGNATURE", false);
    free(img);

    img = image(1, 0, 0, 0, 11, &key, &len);
    img[len - 1] ^= 0x01; /* the last byte of the Ed25519 signature */
    expect_rejected("badsig.bin", img, len, "BAD_SIGNATURE", false);
    free(img);

    img = image(1, 0, 0, 0, 12, &key, &len);
    img[100] ^= 0x01; /* the payload: the hash no longer matches */
    expect_rejected("badhash.bin", img, len, "HASH_MISMATCH", true);
    free(img);

    img = image(1, 0, 0, 0, 13, &other_key, &len);
    expect_rejected("untrusted.bin", img, len, "UNKNOWN_KEY", true);
    free(img);

    uint8_t garbage[2048];
    for (size_t i = 0; i < sizeof(garbage); i++) {
        garbage[i] = (uint8_t)(i * 131 + 7);
    }
    expect_rejected("garbage.bin", garbage, sizeof(garbage), "BAD_MAGIC", true);
}

static void test_upload_input(void **state)
{
    (void)state;
    const char data[] = "opaque bytes, e.g. a configuration file";
    st_resp_t r = upload("?name=conf.tar&kind=opaque", data, sizeof(data));
    expect_error(&r, 400, "opaque without version", "version", NULL);
    r = upload("?kind=opaque&version=1", data, sizeof(data));
    expect_error(&r, 400, "no name", "name", NULL);
    r = upload("?name=a%2Fb&kind=opaque&version=1", data, sizeof(data));
    expect_error(&r, 400, "slash in name", "name", NULL);
    r = upload("?name=..&kind=opaque&version=1", data, sizeof(data));
    expect_error(&r, 400, "dots only", "name", NULL);
    char q[300];
    memset(q, 0, sizeof(q));
    strcpy(q, "?kind=opaque&version=1&name=");
    memset(q + strlen(q), 'n', 128);
    r = upload(q, data, sizeof(data));
    expect_error(&r, 400, "128-character name", "name", NULL);
    r = upload("?name=x.bin&kind=firmware", data, sizeof(data));
    expect_error(&r, 400, "unknown kind", "kind", NULL);
    r = upload("?name=x.bin&kind=opaque&version=1%202", data, sizeof(data));
    expect_error(&r, 400, "space in version", "version", NULL);
    r = upload("?name=empty.bin&kind=opaque&version=1", "", 0);
    expect_error(&r, 400, "empty body", "empty", NULL);

    r = upload("?name=conf.tar&kind=opaque&version=2024.1", data, sizeof(data));
    expect_status(&r, 201, "opaque with version");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "opaque");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "2024.1");
    json_decref(j);
    st_resp_free(&r);
}

static void test_upload_too_big(void **state)
{
    (void)state;
    size_t before = artifact_count();
    int files = stored_files();
    uint64_t saved = env.srv.cfg.max_artifact;
    env.srv.cfg.max_artifact = 1024;
    static uint8_t big[4096];
    st_resp_t r = upload("?name=big.bin&kind=opaque&version=1", big, sizeof(big));
    env.srv.cfg.max_artifact = saved;
    expect_error(&r, 413, "too big", "1024", NULL);
    assert_int_equal(artifact_count(), before);
    assert_int_equal(stored_files(), files);
}

/* ---- devices ----------------------------------------------------------------------------------
 */

static void test_devices(void **state)
{
    (void)state;
    st_resp_t r = op("POST", "/api/v1/devices", "{\"controller_id\": \"dev-a\"}");
    expect_status(&r, 201, "device add");
    json_t *j = body_json(&r);
    const char *tok = json_string_value(json_object_get(j, "token"));
    assert_non_null(tok);
    assert_int_equal(strlen(tok), 32);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "dev-a");
    char auth[80];
    snprintf(auth, sizeof(auth), "TargetToken %s", tok);
    json_decref(j);
    st_resp_free(&r);

    /* the token returned is the device's DDI TargetToken */
    r = req("GET", "/DEFAULT/controller/v1/dev-a", auth, NULL);
    expect_status(&r, 200, "DDI poll with the returned token");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/dev-a", "TargetToken wrong-token-0123456789", NULL);
    expect_status(&r, 401, "DDI poll with another token");
    st_resp_free(&r);

    /* a given token and name */
    r = op("POST", "/api/v1/devices",
           "{\"controller_id\": \"dev-b\", \"name\": \"Kitchen sensor\", "
           "\"token\": \"dev-b-token-0123456789\"}");
    expect_status(&r, 201, "device add with token");
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "token")), "dev-b-token-0123456789");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Kitchen sensor");
    json_decref(j);
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/dev-b", "TargetToken dev-b-token-0123456789", NULL);
    expect_status(&r, 200, "DDI poll with the given token");
    st_resp_free(&r);

    /* conflicts and bad input */
    r = op("POST", "/api/v1/devices", "{\"controller_id\": \"dev-a\"}");
    expect_error(&r, 409, "duplicate controller_id", "dev-a", NULL);
    r = op("POST", "/api/v1/devices",
           "{\"controller_id\": \"dev-c\", \"token\": \"dev-b-token-0123456789\"}");
    expect_error(&r, 409, "duplicate token", "token", NULL);
    r = op("POST", "/api/v1/devices", "{\"controller_id\": \"bad id\"}");
    expect_error(&r, 400, "bad controller_id", "controller_id", NULL);
    r = op("POST", "/api/v1/devices", "{\"controller_id\": 42}");
    expect_error(&r, 400, "controller_id not a string", "controller_id", NULL);
    r = op("POST", "/api/v1/devices", "{\"name\": \"x\"}");
    expect_error(&r, 400, "no controller_id", "controller_id", NULL);
    r = op("POST", "/api/v1/devices", "{\"controller_id\": \"dev-d\", \"token\": \"short\"}");
    expect_error(&r, 400, "short token", "token", NULL);
    r = op("POST", "/api/v1/devices", "{\"controller_id\": \"dev-d\", \"tokne\": \"x\"}");
    expect_error(&r, 400, "unknown field", "tokne", NULL);
    r = op("POST", "/api/v1/devices", "{\"controller_id\": \"dev-d\",\n \"name\": }");
    expect_error(&r, 400, "malformed JSON", "line 2", "column", NULL);
    r = op("POST", "/api/v1/devices", "[\"dev-d\"]");
    expect_error(&r, 400, "not an object", "object", NULL);
    assert_int_equal(status_of("GET", "/api/v1/devices/dev-d", NULL), 404);

    /*
     * list and details; check-ins reach the database within a second (the
     * list writes pending ones first, but the ticker may be writing them)
     */
    json_t *d, *a = NULL, *b = NULL;
    for (int tries = 0; tries < 20; tries++) {
        r = op("GET", "/api/v1/devices", NULL);
        expect_status(&r, 200, "device list");
        j = body_json(&r);
        size_t i;
        a = b = NULL;
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
            const char *cid = json_string_value(json_object_get(d, "controller_id"));
            a = strcmp(cid, "dev-a") == 0 ? d : a;
            b = strcmp(cid, "dev-b") == 0 ? d : b;
            assert_null(json_object_get(d, "token"));
        }
        assert_non_null(a);
        assert_non_null(b);
        if (json_integer_value(json_object_get(a, "polls")) == 1 || tries == 19) {
            break;
        }
        json_decref(j);
        st_resp_free(&r);
        usleep(100000);
    }
    assert_int_equal(json_integer_value(json_object_get(a, "polls")), 1);
    assert_true(json_integer_value(json_object_get(a, "last_seen")) > 0);
    assert_true(json_is_null(json_object_get(b, "action")));
    json_decref(j);
    st_resp_free(&r);

    r = req("PUT", "/DEFAULT/controller/v1/dev-b/configData", "TargetToken dev-b-token-0123456789",
            "{\"data\": {\"hw\": \"rev-c\", \"version\": \"0.9.0\"}}");
    expect_status(&r, 200, "configData");
    st_resp_free(&r);
    r = op("GET", "/api/v1/devices/dev-b", NULL);
    expect_status(&r, 200, "device show");
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Kitchen sensor");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "0.9.0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "attributes"), "hw")),
                        "rev-c");
    assert_true(json_is_array(json_object_get(j, "actions")));
    assert_true(json_is_array(json_object_get(j, "feedback")));
    assert_null(json_object_get(j, "token"));
    assert_null(json_object_get(j, "token_hash"));
    json_decref(j);
    st_resp_free(&r);
    r = op("GET", "/api/v1/devices/nobody", NULL);
    expect_error(&r, 404, "unknown device", "nobody", NULL);
}

/* ---- groups ------------------------------------------------------------------------------------
 */

static void add_devices(const char *prefix, int n)
{
    char body[200];
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body), "{\"controller_id\": \"%s-%02d\"}", prefix, i);
        assert_int_equal(status_of("POST", "/api/v1/devices", body), 201);
    }
}

static void test_groups(void **state)
{
    (void)state;
    add_devices("g", 3);
    assert_int_equal(status_of("POST", "/api/v1/groups", "{\"name\": \"lab\"}"), 201);
    st_resp_t r = op("POST", "/api/v1/groups", "{\"name\": \"lab\"}");
    expect_error(&r, 409, "duplicate group", "lab", NULL);
    r = op("POST", "/api/v1/groups", "{\"name\": \"a/b\"}");
    expect_error(&r, 400, "bad group name", "name", NULL);
    r = op("POST", "/api/v1/groups", "{}");
    expect_error(&r, 400, "no group name", "name", NULL);

    /* one unknown device: 404 naming it, and nothing added */
    r = op("POST", "/api/v1/groups/lab/devices", "{\"devices\": [\"g-00\", \"ghost\", \"g-01\"]}");
    expect_error(&r, 404, "unknown member", "ghost", NULL);
    r = op("GET", "/api/v1/groups/lab", NULL);
    expect_status(&r, 200, "group show");
    json_t *j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "devices")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "members")), 0);
    json_decref(j);
    st_resp_free(&r);

    r = op("POST", "/api/v1/groups/lab/devices", "{\"devices\": [\"g-00\", \"g-02\"]}");
    expect_status(&r, 200, "group add");
    j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "devices")), 2);
    json_decref(j);
    st_resp_free(&r);
    r = op("POST", "/api/v1/groups/lab/devices", "{\"devices\": [\"g-00\"]}");
    expect_status(&r, 200, "adding again is idempotent");
    st_resp_free(&r);
    r = op("POST", "/api/v1/groups/lab/devices", "{\"devices\": []}");
    expect_error(&r, 400, "empty list", "devices", NULL);
    r = op("POST", "/api/v1/groups/lab/devices", "{\"devices\": [\"g-00\", 7]}");
    expect_error(&r, 400, "not a string", "devices[1]", NULL);
    r = op("POST", "/api/v1/groups/nolab/devices", "{\"devices\": [\"g-00\"]}");
    expect_error(&r, 404, "unknown group", "nolab", NULL);

    r = op("GET", "/api/v1/groups/lab", NULL);
    expect_status(&r, 200, "group show");
    j = body_json(&r);
    json_t *m = json_object_get(j, "members");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "controller_id")),
                        "g-00");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "controller_id")),
                        "g-02");
    json_decref(j);
    st_resp_free(&r);

    r = op("GET", "/api/v1/groups", NULL);
    expect_status(&r, 200, "group list");
    j = body_json(&r);
    json_t *g;
    size_t i;
    bool found = false;
    json_array_foreach(json_object_get(j, "groups"), i, g)
    {
        if (strcmp(json_string_value(json_object_get(g, "name")), "lab") == 0) {
            found = true;
            assert_int_equal(json_integer_value(json_object_get(g, "devices")), 2);
        }
    }
    assert_true(found);
    json_decref(j);
    st_resp_free(&r);
    r = op("GET", "/api/v1/devices?group=lab", NULL);
    expect_status(&r, 200, "devices of a group");
    j = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "devices")), 2);
    json_decref(j);
    st_resp_free(&r);
}

/* ---- campaigns
 * ----------------------------------------------------------------------------------- */

static json_t *counts_of(json_t *c, int wave)
{
    return wave < 0 ? json_object_get(c, "counts")
                    : json_object_get(json_array_get(json_object_get(c, "per_wave"), (size_t)wave),
                                      "counts");
}

static long long count(json_t *c, int wave, const char *state)
{
    return (long long)json_integer_value(json_object_get(counts_of(c, wave), state));
}

static void test_campaigns(void **state)
{
    (void)state;
    size_t len;
    uint8_t *img = image(5, 0, 0, 0, 50, &key, &len);
    st_resp_t r = upload("?name=fw-5.bin", img, len);
    expect_status(&r, 201, "upload");
    st_resp_free(&r);
    free(img);
    add_devices("fleet", 10);
    assert_int_equal(status_of("POST", "/api/v1/groups", "{\"name\": \"fleet\"}"), 201);
    char body[600];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"devices\": [");
    for (int i = 0; i < 10; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"fleet-%02d\"", i ? ", " : "", i);
    }
    snprintf(body + n, sizeof(body) - n, "]}");
    assert_int_equal(status_of("POST", "/api/v1/groups/fleet/devices", body), 200);

    /* validation: 400 naming the field */
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"artifact\": \"fw-5.bin\"}", "name"},
        {"{\"name\": \"c\"}", "artifact"},
        {"{\"name\": \"c\", \"artifact\": \"nope.bin\"}", "artifact"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"group\": \"nogroup\"}", "group"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"waves\": [50, 10, 100]}", "waves[1]"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"waves\": [10, 50]}", "waves"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"waves\": []}", "waves"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"waves\": [\"10\", 100]}", "waves[0]"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"failure_threshold\": 101}",
         "failure_threshold"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"start_at\": \"2026-02-30T00:00:00Z\"}",
         "start_at"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"start_at\": \"tomorrow\"}", "start_at"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"forced\": \"yes\"}", "forced"},
        {"{\"name\": \"c\", \"artifact\": \"fw-5.bin\", \"wave\": [100]}", "wave"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = op("POST", "/api/v1/campaigns", bad[i].body);
        expect_error(&r, 400, bad[i].body, bad[i].field, NULL);
    }

    /* waves over the group, with a threshold */
    r = op("POST", "/api/v1/campaigns",
           "{\"name\": \"roll-5\", \"artifact\": \"fw-5.bin\", \"group\": \"fleet\", "
           "\"waves\": [10, 50, 100], \"failure_threshold\": 20, \"forced\": false}");
    expect_status(&r, 201, "campaign create");
    json_t *c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(c, "group")), "fleet");
    assert_int_equal(json_integer_value(json_object_get(c, "failure_threshold")), 20);
    assert_true(json_is_false(json_object_get(c, "forced")));
    assert_int_equal(json_integer_value(json_object_get(c, "wave")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "nwaves")), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "artifact"), "version")), "5.0.0");
    assert_int_equal(count(c, -1, "total"), 10);
    assert_int_equal(count(c, -1, "offered"), 1);
    assert_int_equal(count(c, -1, "pending"), 9);
    assert_int_equal(count(c, 0, "total"), 1);
    assert_int_equal(count(c, 1, "total"), 4);
    assert_int_equal(count(c, 2, "total"), 5);
    json_decref(c);
    st_resp_free(&r);
    r = op("POST", "/api/v1/campaigns", "{\"name\": \"roll-5\", \"artifact\": \"fw-5.bin\"}");
    expect_error(&r, 409, "duplicate campaign", "roll-5", NULL);

    /* pause, pause again, resume, cancel, resume a cancelled one */
    r = op("POST", "/api/v1/campaigns/roll-5/pause", "{\"reason\": \"checking logs\"}");
    expect_status(&r, 200, "pause");
    c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "paused");
    assert_string_equal(json_string_value(json_object_get(c, "reason")), "checking logs");
    json_decref(c);
    st_resp_free(&r);
    r = op("POST", "/api/v1/campaigns/roll-5/pause", NULL);
    expect_error(&r, 409, "pause a paused campaign", "paused", NULL);
    r = op("POST", "/api/v1/campaigns/roll-5/pause", "{\"why\": \"x\"}");
    expect_error(&r, 400, "unknown field", "why", NULL);
    r = op("POST", "/api/v1/campaigns/roll-5/resume", NULL);
    expect_status(&r, 200, "resume");
    c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "running");
    json_decref(c);
    st_resp_free(&r);
    r = op("POST", "/api/v1/campaigns/roll-5/resume", NULL);
    expect_error(&r, 409, "resume a running campaign", "running", NULL);
    r = op("POST", "/api/v1/campaigns/roll-5/cancel", "{\"reason\": \"wrong build\"}");
    expect_status(&r, 200, "cancel");
    c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "cancelled");
    assert_int_equal(count(c, -1, "offered"), 0);
    assert_int_equal(count(c, -1, "cancelling"), 1);
    assert_int_equal(count(c, -1, "cancelled"), 9);
    json_decref(c);
    st_resp_free(&r);
    r = op("POST", "/api/v1/campaigns/roll-5/resume", NULL);
    expect_error(&r, 409, "resume a cancelled campaign", "cancelled", NULL);
    r = op("POST", "/api/v1/campaigns/roll-5/cancel", NULL);
    expect_error(&r, 409, "cancel a cancelled campaign", "cancelled", NULL);
    r = op("POST", "/api/v1/campaigns/nothing/pause", NULL);
    expect_error(&r, 404, "unknown campaign", "nothing", NULL);

    /* a scheduled one (ISO-8601 UTC start in the future), over every device by default */
    r = op("POST", "/api/v1/campaigns",
           "{\"name\": \"later\", \"artifact\": \"fw-5.bin\", \"start_at\": "
           "\"2099-01-01T00:00:00Z\"}");
    expect_status(&r, 201, "scheduled campaign");
    c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "scheduled");
    assert_int_equal(json_integer_value(json_object_get(c, "start_at")), 4070908800LL);
    assert_true(json_is_null(json_object_get(c, "group")));
    assert_int_equal(count(c, -1, "offered"), 0);
    assert_true(count(c, -1, "pending") >= 10);
    json_decref(c);
    st_resp_free(&r);

    /* status and list */
    r = op("GET", "/api/v1/campaigns/roll-5", NULL);
    expect_status(&r, 200, "status");
    c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "reason")), "wrong build");
    assert_int_equal(json_array_size(json_object_get(c, "per_wave")), 3);
    json_decref(c);
    st_resp_free(&r);
    r = op("GET", "/api/v1/campaigns", NULL);
    expect_status(&r, 200, "list");
    c = body_json(&r);
    assert_true(json_array_size(json_object_get(c, "campaigns")) >= 2);
    json_decref(c);
    st_resp_free(&r);
}

/* A failing first wave pauses the campaign by itself; the status says why. */
static void test_campaign_threshold(void **state)
{
    (void)state;
    size_t len;
    uint8_t *img = image(6, 0, 0, 0, 60, &key, &len);
    st_resp_t r = upload("?name=fw-6.bin", img, len);
    expect_status(&r, 201, "upload");
    st_resp_free(&r);
    free(img);
    char body[300];
    assert_int_equal(status_of("POST", "/api/v1/groups", "{\"name\": \"pair\"}"), 201);
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof(body),
                 "{\"controller_id\": \"pair-%d\", \"token\": \"pair-%d-token-0123456789\"}", i, i);
        assert_int_equal(status_of("POST", "/api/v1/devices", body), 201);
    }
    assert_int_equal(
        status_of("POST", "/api/v1/groups/pair/devices", "{\"devices\": [\"pair-0\", \"pair-1\"]}"),
        200);
    r = op("POST", "/api/v1/campaigns",
           "{\"name\": \"roll-6\", \"artifact\": \"fw-6.bin\", \"group\": \"pair\", "
           "\"waves\": [50, 100], \"failure_threshold\": 0}");
    expect_status(&r, 201, "campaign");
    st_resp_free(&r);
    /* the device of wave 1 reports failure over DDI */
    for (int i = 0; i < 2; i++) {
        char auth[80], path[200];
        snprintf(auth, sizeof(auth), "TargetToken pair-%d-token-0123456789", i);
        snprintf(path, sizeof(path), "/DEFAULT/controller/v1/pair-%d", i);
        r = req("GET", path, auth, NULL);
        expect_status(&r, 200, "poll");
        json_t *j = body_json(&r);
        const char *href = json_string_value(json_object_get(
            json_object_get(json_object_get(j, "_links"), "deploymentBase"), "href"));
        if (href) {
            long long id = strtoll(strstr(href, "deploymentBase/") + 15, NULL, 10);
            snprintf(path, sizeof(path),
                     "/DEFAULT/controller/v1/pair-%d/deploymentBase/%lld/feedback", i, id);
            st_resp_t f = req("POST", path, auth,
                              "{\"status\": {\"execution\": \"closed\", \"result\": "
                              "{\"finished\": \"failure\"}, \"details\": [\"flash failed\"]}}");
            expect_status(&f, 200, "feedback");
            st_resp_free(&f);
        }
        json_decref(j);
        st_resp_free(&r);
    }
    r = op("GET", "/api/v1/campaigns/roll-6", NULL);
    expect_status(&r, 200, "status");
    json_t *c = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "paused");
    assert_non_null(strstr(json_string_value(json_object_get(c, "reason")), "failed"));
    assert_int_equal(count(c, 0, "failure"), 1);
    assert_int_equal(count(c, 1, "pending"), 1);
    json_decref(c);
    st_resp_free(&r);
    /* the failing device's history shows it */
    for (int i = 0; i < 2; i++) {
        char path[100];
        snprintf(path, sizeof(path), "/api/v1/devices/pair-%d", i);
        r = op("GET", path, NULL);
        expect_status(&r, 200, "device show");
        c = body_json(&r);
        json_t *acts = json_object_get(c, "actions");
        assert_int_equal(json_array_size(acts), 1);
        const char *st = json_string_value(json_object_get(json_array_get(acts, 0), "state"));
        if (strcmp(st, "failure") == 0) {
            json_t *fb = json_object_get(c, "feedback");
            assert_int_equal(json_array_size(fb), 1);
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(fb, 0), "finished")), "failure");
            assert_string_equal(json_string_value(json_array_get(
                                    json_object_get(json_array_get(fb, 0), "details"), 0)),
                                "flash failed");
        } else {
            assert_string_equal(st, "pending");
        }
        json_decref(c);
        st_resp_free(&r);
    }
}

static void test_unknown_route(void **state)
{
    (void)state;
    assert_int_equal(status_of("GET", "/api/v1/nothing", NULL), 404);
    assert_int_equal(status_of("DELETE", "/api/v1/devices/dev-a", NULL), 404);
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

static int load_trusted(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!pk) {
        return -1;
    }
    uint8_t *p = trusted_der;
    int n = i2d_PUBKEY(pk, NULL) <= (int)sizeof(trusted_der) ? i2d_PUBKEY(pk, &p) : -1;
    EVP_PKEY_free(pk);
    if (n <= 0) {
        return -1;
    }
    trusted.type = AIRLOCK_KEY_ED25519;
    trusted.der = trusted_der;
    trusted.der_len = (size_t)n;
    return 0;
}

static int setup(void **state)
{
    char hash[65];
    (void)state;
    if (tu_key_load(&key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem") != 0 ||
        tu_key_new(&other_key) != 0 ||
        load_trusted(AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pub.pem") != 0) {
        fprintf(stderr, "test_api: cannot load the test keys from %s\n", AIRLOCK_SHARED_DIR);
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (st_start(&env, NULL, false) != 0) {
        return -1;
    }
    /* before any request: the server reads both per request */
    env.srv.keys = &trusted;
    env.srv.nkeys = 1;
    srv_sha256_hex(OPERATOR, strlen(OPERATOR), hash);
    store_t *st = env.srv.store;
    if (st->ops->setting_set(st, "operator_token_sha256", hash) != STORE_OK) {
        return -1;
    }
    snprintf(bearer, sizeof(bearer), "Bearer %s", OPERATOR);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(&env, true);
    tu_key_free(&key);
    tu_key_free(&other_key);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_upload_good),
        cmocka_unit_test(test_upload_rejected),
        cmocka_unit_test(test_upload_input),
        cmocka_unit_test(test_upload_too_big),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_campaigns),
        cmocka_unit_test(test_campaign_threshold),
        cmocka_unit_test(test_unknown_route),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
