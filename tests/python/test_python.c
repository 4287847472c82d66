/* Integration tests of the Python runtime on real KVM: the example image (examples/python) booted
 * once into a snapshot (the `prewarm` case, a ctest fixture) and cloned by the other cases.
 *   test_python CASE IMAGES_DIR SNAP_DIR PYTHON SHIM_DIR HANDLER */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "../common/kvm_case.h"
#include "pyhost.h"
#include "sprout/clone.h"
#include "sprout/vmm.h"

#define INVOKE_TIMEOUT_MS 30000
#define CLONES            20

static const char *images, *snaps;
static struct pyhost host;
static struct sprout_kvm *kvm;

static char *snap_path(void)
{
        static char p[4096];
        snprintf(p, sizeof(p), "%s/python.snap", snaps);
        return p;
}

static struct sprout_base *load_base(void)
{
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        int r = sprout_base_load(kvm, snap_path(), 0, &b, &err);
        CHECK(r == 0, "loading %s: %s", snap_path(), err.msg);
        return r == 0 ? b : NULL;
}

static struct sprout_clone *new_clone(struct sprout_base *b, int console_fd)
{
        struct sprout_err err = {0};
        struct sprout_clone *c = NULL;
        int r = sprout_clone_create(b, console_fd, &c, NULL, &err);
        CHECK(r == 0, "clone: %s", err.msg);
        return r == 0 ? c : NULL;
}

/* Invokes and returns the response as a NUL-terminated copy, or NULL (a failed check). */
static char *invoke(struct sprout_clone *c, const char *req)
{
        struct sprout_err err = {0};
        const void *resp;
        size_t len;
        int r = sprout_clone_invoke(c, req, strlen(req), INVOKE_TIMEOUT_MS, &resp, &len, &err);
        CHECK(r == 0, "invoke %.100s on %s: %s", req, sprout_clone_id(c), err.msg);
        return r == 0 ? strndup(resp, len) : NULL;
}

static json_t *invoke_json(struct sprout_clone *c, const char *req)
{
        char *s = invoke(c, req);
        json_t *j = s ? pyhost_parse(req, s, strlen(s)) : NULL;
        CHECK(j != NULL, "the response to %.100s is a JSON object", req);
        free(s);
        return j;
}

static void case_prewarm(void)
{
        char img[4096];
        snprintf(img, sizeof(img), "%s/python", images);
        mkdir(snaps, 0755);
        struct sprout_prewarm_opts o = {
            .image = img, .out_path = snap_path(), .console_fd = -1, .timeout_ms = 900000};
        struct sprout_prewarm_stats st;
        struct sprout_err err = {0};
        int r = sprout_prewarm(kvm, &o, &st, &err);
        CHECK(r == 0, "prewarm python: %s\n%s", err.msg, st.console_tail);
        if (r == 0)
                printf("python: boot to READY %.2f s, snapshot %llu MiB RAM -> %llu KiB file\n",
                       st.boot_s, (unsigned long long)(st.write.ram_size >> 20),
                       (unsigned long long)(st.write.file_size >> 10));
}

/* "12.34" -> 1234; a rate "0.055" -> 55 (thousandths). Exact parsing of the handler's strings. */
static long long fixed(const char *s, int places)
{
        long long v = 0;
        int seen = -1;
        for (; *s; s++) {
                if (*s == '.') {
                        seen = 0;
                        continue;
                }
                if (*s < '0' || *s > '9' || (seen >= 0 && seen == places))
                        return -1;
                v = v * 10 + (*s - '0');
                if (seen >= 0)
                        seen++;
        }
        for (int i = seen < 0 ? 0 : seen; i < places; i++)
                v *= 10;
        return v;
}

/* x / 1000 rounded half to even: Decimal's ROUND_HALF_EVEN quantize to cents. */
static long long div1000_half_even(long long x)
{
        long long q = x / 1000, r = x % 1000;
        return r > 500 || (r == 500 && (q & 1)) ? q + 1 : q;
}

/* 20 clones, 20 different orders: each answer equals the host python's for the same event, and
 * its arithmetic is right (checked here in integer cents). */
static void case_results(void)
{
        static const char *countries[] = {"DE", "FR", "NL", "IT", "ES", "IE", "SE", "PL"};
        struct sprout_base *b = load_base();
        if (!b)
                return;
        int good = 0;
        for (int i = 0; i < CLONES; i++) {
                char ev[256];
                int qty = i % 7 + 1;
                snprintf(ev, sizeof(ev),
                         "{\"sku\":\"SKU-%04d\",\"qty\":%d,\"country\":\"%s\","
                         "\"customer\":\"Customer %d <C%d@Example.ORG>\"}",
                         (i * 97) % 2000 + 1, qty, countries[i % 8], i, i);
                char *want = pyhost_once(&host, ev, NULL);
                CHECK(want != NULL, "the host python answered %s", ev);
                struct sprout_clone *c = new_clone(b, -1);
                char *got = c ? invoke(c, ev) : NULL;
                CHECK(got && want && !strcmp(got, want), "clone %d: %s\n got  %s\n want %s", i, ev,
                      got ? got : "(none)", want ? want : "(none)");
                json_t *j = got ? pyhost_parse(ev, got, strlen(got)) : NULL;
                if (j) {
                        long long unit = fixed(pyhost_str(j, "result.unit_price"), 2);
                        long long net = fixed(pyhost_str(j, "result.net"), 2);
                        long long rate = fixed(pyhost_str(j, "result.vat_rate"), 3);
                        long long vat = fixed(pyhost_str(j, "result.vat"), 2);
                        long long total = fixed(pyhost_str(j, "result.total"), 2);
                        char email[64];
                        snprintf(email, sizeof(email), "c%d@example.org", i);
                        bool ok = unit > 0 && rate > 0 && net == unit * qty &&
                                  vat == div1000_half_even(net * rate) && total == net + vat &&
                                  !strcmp(pyhost_str(j, "result.customer.email"), email) &&
                                  pyhost_int(j, "result.qty") == qty;
                        CHECK(ok, "clone %d: wrong arithmetic or fields in %s", i, got);
                        good += ok && want && !strcmp(got, want);
                        json_decref(j);
                }
                free(want);
                free(got);
                sprout_clone_destroy(c);
        }
        CHECK(good == CLONES, "%d of %d clones answered correctly", good, CLONES);
        /* One known answer, fixed here: 150.90 x 3 = 452.70, 19 % VAT 86.01, total 538.71. */
        struct sprout_clone *c = new_clone(b, -1);
        json_t *j =
            c ? invoke_json(c, "{\"sku\":\"SKU-0042\",\"qty\":3,\"country\":\"DE\"}") : NULL;
        CHECK(j && !strcmp(pyhost_str(j, "result.total"), "538.71") &&
                  !strcmp(pyhost_str(j, "result.unit_price"), "150.90"),
              "SKU-0042 x 3 in DE is not 538.71");
        json_decref(j);
        sprout_clone_destroy(c);
        sprout_base_free(b);
}

/* Each clone of the one snapshot has randomness of its own: the random module (seeded at import,
 * before the snapshot, and re-seeded by the runtime's identity hook), uuid4 and os.urandom. */
static void case_random(void)
{
        static const char *keys[] = {"result.random", "result.uuid4", "result.urandom"};
        static char vals[CLONES][3][80];
        struct sprout_base *b = load_base();
        if (!b)
                return;
        int answered = 0;
        for (int i = 0; i < CLONES; i++) {
                struct sprout_clone *c = new_clone(b, -1);
                json_t *j = c ? invoke_json(c, "{\"op\":\"random\"}") : NULL;
                if (j) {
                        json_t *r = json_object_get(json_object_get(j, "result"), "random");
                        snprintf(vals[i][0], sizeof(vals[i][0]), "%.17g",
                                 json_is_real(r) ? json_real_value(r) : -1.0);
                        snprintf(vals[i][1], sizeof(vals[i][1]), "%s", pyhost_str(j, keys[1]));
                        snprintf(vals[i][2], sizeof(vals[i][2]), "%s", pyhost_str(j, keys[2]));
                        CHECK(json_is_real(r) && strlen(vals[i][1]) == 36 &&
                                  strlen(vals[i][2]) == 32,
                              "clone %d: random values missing", i);
                        /* The runtime knows which clone it is, and it applied one identity. */
                        CHECK(!strcmp(pyhost_str(j, "result.clone.clone"), sprout_clone_id(c)),
                              "clone %d reports id %s, the VMM gave %s", i,
                              pyhost_str(j, "result.clone.clone"), sprout_clone_id(c));
                        CHECK(pyhost_int(j, "result.clone.identities") == 1,
                              "clone %d applied %lld identities", i,
                              pyhost_int(j, "result.clone.identities"));
                        answered++;
                        json_decref(j);
                }
                /* A second call in the same clone moves on; it does not repeat the first. */
                json_t *k = c ? invoke_json(c, "{\"op\":\"random\"}") : NULL;
                if (k) {
                        char again[80];
                        json_t *r = json_object_get(json_object_get(k, "result"), "random");
                        snprintf(again, sizeof(again), "%.17g",
                                 json_is_real(r) ? json_real_value(r) : -1.0);
                        CHECK(strcmp(again, vals[i][0]) != 0, "clone %d repeated random %s", i,
                              again);
                        json_decref(k);
                }
                sprout_clone_destroy(c);
        }
        CHECK(answered == CLONES, "%d of %d clones answered", answered, CLONES);
        for (int k = 0; k < 3; k++)
                for (int i = 0; i < CLONES; i++)
                        for (int j = i + 1; j < CLONES; j++)
                                CHECK(!vals[i][k][0] || strcmp(vals[i][k], vals[j][k]) != 0,
                                      "clones %d and %d share %s %s", i, j, keys[k] + 7,
                                      vals[i][k]);
        printf("random.random of clone 0 and 1: %s %s\n", vals[0][0], vals[1][0]);
        sprout_base_free(b);
}

/* Ready clones (warmed up off the request path by the shim's warm-up hook): a correct first result,
 * and randomness of their own, each applied once, during the warm-up. */
static void case_ready(void)
{
        enum { N = 6 };
        static char vals[N][2][80];
        struct sprout_base *b = load_base();
        if (!b)
                return;
        struct sprout_err err = {0};
        int r = sprout_base_prepare_ready(b, N, &err);
        CHECK(r == 0 && sprout_base_ready_count(b) == N, "prepare_ready: %s", err.msg);
        int answered = 0;
        for (int i = 0; i < N; i++) {
                struct sprout_clone *c = NULL;
                r = sprout_clone_take_ready(b, &c);
                CHECK(r == 0, "take_ready %d: %d", i, r);
                if (r < 0)
                        continue;
                json_t *j;
                if (i == 0) {
                        /* The first real request of a ready clone is an ordinary one. */
                        j = invoke_json(c, "{\"sku\":\"SKU-0042\",\"qty\":3,\"country\":\"DE\"}");
                        CHECK(j && !strcmp(pyhost_str(j, "result.total"), "538.71") &&
                                  !strcmp(pyhost_str(j, "result.unit_price"), "150.90"),
                              "ready clone: SKU-0042 x 3 in DE is not 538.71");
                        json_decref(j);
                }
                j = invoke_json(c, "{\"op\":\"random\"}");
                if (j) {
                        json_t *rv = json_object_get(json_object_get(j, "result"), "random");
                        snprintf(vals[i][0], sizeof(vals[i][0]), "%.17g",
                                 json_is_real(rv) ? json_real_value(rv) : -1.0);
                        snprintf(vals[i][1], sizeof(vals[i][1]), "%s",
                                 pyhost_str(j, "result.urandom"));
                        CHECK(json_is_real(rv) && strlen(vals[i][1]) == 32,
                              "ready clone %d: random values missing", i);
                        CHECK(!strcmp(pyhost_str(j, "result.clone.clone"), sprout_clone_id(c)),
                              "ready clone %d reports id %s, the VMM gave %s", i,
                              pyhost_str(j, "result.clone.clone"), sprout_clone_id(c));
                        CHECK(pyhost_int(j, "result.clone.identities") == 1 &&
                                  pyhost_int(j, "result.clone.warmups") == 1,
                              "ready clone %d: %lld identities, %lld warm-ups", i,
                              pyhost_int(j, "result.clone.identities"),
                              pyhost_int(j, "result.clone.warmups"));
                        answered++;
                        json_decref(j);
                }
                sprout_clone_destroy(c);
        }
        CHECK(answered == N, "%d of %d ready clones answered", answered, N);
        for (int k = 0; k < 2; k++)
                for (int i = 0; i < N; i++)
                        for (int j = i + 1; j < N; j++)
                                CHECK(!vals[i][k][0] || strcmp(vals[i][k], vals[j][k]) != 0,
                                      "ready clones %d and %d share %s %s", i, j,
                                      k ? "urandom" : "random", vals[i][k]);
        sprout_base_free(b);
}

/* A clone's guest timers fire: time.sleep in a fresh clone, a ready clone and a second request
 * returns after its interval, not never. A fresh clone restored with IA32_TSC_DEADLINE written
 * before its LAPIC (vcpu_state.c) had no timer armed, and on an Intel host every such sleep hung
 * (docs/architecture.md, "Capture at READY"). */
static void case_timers(void)
{
        struct sprout_base *b = load_base();
        if (!b)
                return;
        struct sprout_err err = {0};
        int r = sprout_base_prepare_ready(b, 1, &err);
        CHECK(r == 0, "prepare_ready: %s", err.msg);
        for (int i = 0; i < 3; i++) {
                struct sprout_clone *c = NULL;
                if (i < 2)
                        c = new_clone(b, -1);
                else
                        CHECK(sprout_clone_take_ready(b, &c) == 0, "take_ready");
                if (!c)
                        continue;
                for (int k = 0; k < (i == 0 ? 2 : 1); k++) {
                        json_t *j = invoke_json(c, "{\"op\":\"sleep\",\"ms\":50}");
                        json_t *v =
                            j ? json_object_get(json_object_get(j, "result"), "slept_ms") : NULL;
                        double ms = json_is_number(v) ? json_number_value(v) : -1;
                        CHECK(ms >= 50, "%s clone %d, request %d: slept %.1f ms of 50",
                              i < 2 ? "fresh" : "ready", i, k + 1, ms);
                        json_decref(j);
                }
                sprout_clone_destroy(c);
        }
        sprout_base_free(b);
}

/* A handler that raises gives a structured error with the traceback; a request that is not JSON
 * gives BadRequest; and the clone goes on serving after either. */
static void case_errors(void)
{
        struct sprout_base *b = load_base();
        struct sprout_clone *c = b ? new_clone(b, -1) : NULL;
        if (!c) {
                sprout_base_free(b);
                return;
        }
        json_t *j = invoke_json(c, "{\"op\":\"raise\",\"message\":\"boom 42\"}");
        const char *tb = pyhost_str(j, "error.traceback");
        CHECK(j && json_is_false(json_object_get(j, "ok")) &&
                  !strcmp(pyhost_str(j, "error.type"), "ValueError") &&
                  !strcmp(pyhost_str(j, "error.message"), "boom 42"),
              "a raising handler's response");
        CHECK(strstr(tb, "Traceback (most recent call last):") &&
                  strstr(tb, "File \"/app/handler.py\", line") &&
                  strstr(tb, "raise ValueError(event.get(\"message\"") &&
                  strstr(tb, "ValueError: boom 42"),
              "the traceback names the handler's file, line and source: %s", tb);
        CHECK(!strstr(tb, "sprout_shim"), "the runtime's own frame is in the traceback: %s", tb);
        json_decref(j);

        j = invoke_json(c, "{\"sku\":\"SKU-0001\",\"qty\":2}");
        CHECK(j && json_is_true(json_object_get(j, "ok")) && pyhost_int(j, "result.qty") == 2,
              "the clone serves after an error");
        json_decref(j);

        j = invoke_json(c, "{\"sku\":\"NOPE\"}");
        CHECK(j && !strcmp(pyhost_str(j, "error.type"), "KeyError") &&
                  strstr(pyhost_str(j, "error.traceback"), "in _quote"),
              "an unknown sku is a KeyError from _quote");
        json_decref(j);

        j = invoke_json(c, "this is not json");
        CHECK(j && !strcmp(pyhost_str(j, "error.type"), "BadRequest"),
              "a request that is not JSON is a BadRequest");
        json_decref(j);

        j = invoke_json(c, "[1,2,3]");
        CHECK(j && !strcmp(pyhost_str(j, "error.type"), "ValueError") &&
                  strstr(pyhost_str(j, "error.message"), "unknown op None"),
              "a non-object event reaches the handler, which refuses it");
        json_decref(j);

        /* Many errors in a row: nothing accumulates that breaks the clone. */
        int ok = 0;
        for (int i = 0; i < 50; i++) {
                json_t *e = invoke_json(c, "{\"op\":\"raise\"}");
                ok += e && !strcmp(pyhost_str(e, "error.type"), "ValueError");
                json_decref(e);
        }
        CHECK(ok == 50, "%d of 50 raising calls answered with the error", ok);
        j = invoke_json(c, "{\"sku\":\"SKU-0042\",\"qty\":3}");
        CHECK(j && !strcmp(pyhost_str(j, "result.total"), "538.71"),
              "the clone still answers correctly after 55 errors");
        json_decref(j);
        sprout_clone_destroy(c);
        sprout_base_free(b);
}

static size_t file_count(int fd, const char *needle, size_t *size)
{
        struct stat st;
        fstat(fd, &st);
        *size = (size_t)st.st_size;
        char *buf = malloc(*size + 1);
        size_t n = 0;
        if (!buf || pread(fd, buf, *size, 0) != (ssize_t)*size) {
                free(buf);
                return 0;
        }
        buf[*size] = '\0';
        for (char *p = buf; (p = strstr(p, needle)); p++)
                n++;
        free(buf);
        return n;
}

/* What a handler prints comes back in the response; a lot of it is cut there and goes whole to
 * the clone's log; a result too big for the mailbox is an error, not a broken protocol. */
static void case_output(void)
{
        char logpath[] = "/tmp/sprout-pyout-XXXXXX";
        int logfd = mkstemp(logpath);
        CHECK(logfd >= 0, "mkstemp: %s", strerror(errno));
        if (logfd < 0)
                return;
        unlink(logpath);
        struct sprout_base *b = load_base();
        struct sprout_clone *c = b ? new_clone(b, logfd) : NULL;
        if (!c) {
                close(logfd);
                sprout_base_free(b);
                return;
        }
        json_t *j = invoke_json(c, "{\"op\":\"print\",\"bytes\":1050}");
        const char *out = pyhost_str(j, "stdout");
        CHECK(j && strlen(out) == 1050 && out[0] == 'x' && out[999] == '\n' && out[1049] == 'y' &&
                  !strcmp(pyhost_str(j, "stderr"), "printed 1050 bytes to stdout\n") &&
                  pyhost_int(j, "result.printed") == 1050,
              "small output comes back in the response");
        json_decref(j);

        /* 2 MB of stdout: the first 64 Ki characters in the response, all of it in the log. */
        enum { BIG = 2000000 };
        j = invoke_json(c, "{\"op\":\"print\",\"bytes\":2000000}");
        CHECK(j && json_is_true(json_object_get(j, "ok")) &&
                  strlen(pyhost_str(j, "stdout")) == 65536 &&
                  pyhost_int(j, "stdout_logged") == BIG && pyhost_int(j, "result.printed") == BIG,
              "2 MB of output: ok, 64 KiB kept, stdout_logged %lld",
              pyhost_int(j, "stdout_logged"));
        json_decref(j);
        size_t logsize;
        size_t lines = file_count(logfd, "xxxxxxxxxx\n", &logsize);
        CHECK(logsize > BIG && lines >= BIG / 100,
              "the clone's log holds the whole output: %zu bytes, %zu full lines", logsize, lines);

        /* A result larger than the response area. */
        j = invoke_json(c, "{\"op\":\"print\",\"bytes\":10,\"result_bytes\":600000}");
        CHECK(j && !strcmp(pyhost_str(j, "error.type"), "ResponseTooLarge"),
              "a 600 KB result is ResponseTooLarge");
        json_decref(j);

        /* And the protocol is intact: the next request gets its own answer. */
        j = invoke_json(c, "{\"sku\":\"SKU-0042\",\"qty\":3}");
        CHECK(j && !strcmp(pyhost_str(j, "result.total"), "538.71") &&
                  !json_object_get(j, "stdout"),
              "a normal request after large output");
        json_decref(j);
        sprout_clone_destroy(c);
        sprout_base_free(b);
        close(logfd);
}

int main(int argc, char **argv)
{
        static const struct kvm_case cases[] = {
            {"prewarm", case_prewarm}, {"results", case_results}, {"random", case_random},
            {"errors", case_errors},   {"output", case_output},   {"ready", case_ready},
            {"timers", case_timers},
        };
        if (argc != 7) {
                fprintf(stderr,
                        "usage: test_python CASE IMAGES_DIR SNAP_DIR PYTHON SHIM_DIR HANDLER\n");
                return 2;
        }
        images = argv[2];
        snaps = argv[3];
        host = (struct pyhost){.python = argv[4], .shim_dir = argv[5], .handler = argv[6]};
        return kvm_case_run(argv[1], cases, sizeof(cases) / sizeof(cases[0]), &kvm);
}
