/* End-to-end tests of sproutd: a real daemon on a real socket, real KVM, a real HTTP client.
 * `test_daemon CASE SPROUTD SPROUT IMAGES_DIR WORK_DIR`. The `prewarm` case makes the snapshot the
 * other cases share (a ctest fixture), so the whole suite boots few VMs. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/check.h"
#include "../common/kvm_skip.h"
#include "harness.h"
#include "snapshot_format.h"
#include "sprout/abi.h"
#include "sprout/snapshot.h"
#include "sprout/vmstate.h"

#define UUID_LEN 36

static bool is_uuid(const char *s)
{
        if (!s || strlen(s) != UUID_LEN)
                return false;
        for (int i = 0; i < UUID_LEN; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

static const char *jstr(json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

static long long jint(json_t *o, const char *k)
{
        return (long long)json_integer_value(json_object_get(o, k));
}

/* A snapshot's field, as text, through GET /v1/snapshots/ID. */
static void get_snapshot(struct daemon *d, const char *id, struct reply *r)
{
        char path[128];
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        http_json(d, "GET", path, NULL, r);
}

/* A metric's value from /metrics (a line "name value"), or -1. */
static long long metric(struct daemon *d, const char *name)
{
        struct reply r;
        char key[128];
        long long v = -1;
        http(d, "GET", "/metrics", NULL, NULL, 0, &r);
        snprintf(key, sizeof(key), "\n%s ", name);
        const char *p = r.body ? strstr(r.body, key) : NULL;
        if (p)
                v = atoll(p + strlen(key));
        reply_free(&r);
        return v;
}

/* Polls the snapshot until it has n ready clones; returns the last count seen. */
static long long wait_ready(struct daemon *d, const char *id, long long n, double timeout_s)
{
        struct reply r;
        long long have = -1;
        double until = sprout_mono_s() + timeout_s;
        do {
                get_snapshot(d, id, &r);
                have = jint(r.json, "ready_clones");
                reply_free(&r);
                if (have == n)
                        break;
                usleep(20000);
        } while (sprout_mono_s() < until);
        return have;
}

static bool file_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0;
}

/* ---- prewarm: the fixture snapshot, through the CLI and the API ---- */

/* Whether the host kernel has a file system of this name (its line in /proc/filesystems). */
static bool fs_registered(const char *name)
{
        char all[8192], want[64];
        FILE *f = fopen("/proc/filesystems", "r");
        size_t n = f ? fread(all, 1, sizeof(all) - 1, f) : 0;
        if (f)
                fclose(f);
        all[n] = '\0';
        snprintf(want, sizeof(want), "\t%s\n", name);
        return strstr(all, want) != NULL;
}

static void case_prewarm(void)
{
        struct daemon d;
        struct reply r;
        char img[2048], cmd[8192], *out = NULL;
        make_state(&d, "fixture");
        const char *flags[] = {"--max-prewarms", "2", NULL};
        if (daemon_start(&d, flags) < 0) {
                CHECK(0, "sproutd did not start");
                return;
        }
        /* A handler that exits before READY: the prewarm must fail with the reason. */
        snprintf(img, sizeof(img), "{\"image\":\"%s/crash\"}", t_images);
        http_json(&d, "POST", "/v1/snapshots", img, &r);
        CHECK(r.status == 202, "prewarm crash: HTTP %ld %s", r.status, r.body ? r.body : "");
        char crash[64];
        snprintf(crash, sizeof(crash), "%s", jstr(r.json, "id"));
        CHECK(is_uuid(crash), "prewarm returned id '%s'", crash);
        const char *st = jstr(r.json, "status");
        CHECK(!strcmp(st, "queued") || !strcmp(st, "booting"), "a new prewarm is '%s'", st);
        reply_free(&r);

        /* The real one through the CLI: it waits, shows progress, prints the id. */
        snprintf(cmd, sizeof(cmd), "'%s' prewarm '%s/hello' --socket '%s'", t_sprout, t_images,
                 d.sock);
        int rc = run(cmd, &out);
        char id[64] = "";
        if (out)
                snprintf(id, sizeof(id), "%.36s", out);
        CHECK(rc == 0 && is_uuid(id), "sprout prewarm: rc %d, output '%s'", rc, out ? out : "");
        free(out);

        get_snapshot(&d, id, &r);
        CHECK(r.status == 200 && !strcmp(jstr(r.json, "status"), "ready"),
              "snapshot %s after prewarm: %ld %s", id, r.status, r.body ? r.body : "");
        CHECK(jint(r.json, "ram_bytes") == 64 << 20, "ram_bytes %lld", jint(r.json, "ram_bytes"));
        CHECK(json_real_value(json_object_get(r.json, "ratio")) > 2, "ratio %f",
              json_real_value(json_object_get(r.json, "ratio")));
        CHECK(!strcmp(jstr(r.json, "image"), "hello"), "image '%s'", jstr(r.json, "image"));
        char file[2300];
        snprintf(file, sizeof(file), "%s/snapshots/%s.snap", d.state, id);
        CHECK(file_exists(file) && !strcmp(jstr(r.json, "path"), file),
              "the snapshot file %s (the daemon says %s)", file, jstr(r.json, "path"));
        reply_free(&r);

        const char *fin[] = {"ready", "failed", NULL};
        st = wait_status(&d, crash, fin, 300);
        get_snapshot(&d, crash, &r);
        CHECK(!strcmp(st, "failed"), "the crash image's prewarm ended '%s'", st);
        CHECK(strstr(jstr(r.json, "error"), "READY") != NULL, "failure reason '%s'",
              jstr(r.json, "error"));
        reply_free(&r);

        /* A restart finds the snapshot again under the same id; a failed prewarm is gone. */
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM: sproutd did not exit 0");
        CHECK(daemon_start(&d, NULL) == 0, "restart");
        http_json(&d, "GET", "/v1/snapshots", NULL, &r);
        json_t *arr = json_object_get(r.json, "snapshots");
        CHECK(json_array_size(arr) == 1 && !strcmp(jstr(json_array_get(arr, 0), "id"), id) &&
                  !strcmp(jstr(json_array_get(arr, 0), "status"), "ready"),
              "after a restart: %s", r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM after restart");

        char p[1200];
        snprintf(p, sizeof(p), "%s/fixture-id", t_work);
        FILE *f = fopen(p, "w");
        if (f) {
                fprintf(f, "%s\n", id);
                fclose(f);
        }
}

/* ---- api: every endpoint, end to end ---- */

/* ?log=true on clone c: the call's own log beside the response spliced in byte for byte, nothing
 * of the calls before; a call that logs nothing has an empty log; a bad flag is refused. seq is the
 * clone's next request number. */
static void check_invoke_log(struct daemon *d, const char *c, int seq, const char *how)
{
        struct reply r;
        char path[256], want[160], line[96];
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke?log=true", c);
        http_json(d, "POST", path, "{\"say\":1}", &r);
        snprintf(want, sizeof(want),
                 ",\"response\":{\"hello\":\"world\",\"echo\":{\"say\":1},\"seq\":%d}}", seq);
        snprintf(line, sizeof(line), "[guest] hello: said during request %d\n", seq);
        const char *log = jstr(r.json, "log");
        CHECK(r.status == 200 && r.body && json_is_object(r.json) && log && !strcmp(log, line) &&
                  json_is_false(json_object_get(r.json, "log_lost")) &&
                  strlen(r.body) > strlen(want) &&
                  !strcmp(r.body + strlen(r.body) - strlen(want), want),
              "%s: ?log=true gives the call's log and the response as it came: %ld '%s'", how,
              r.status, r.body ? r.body : "");
        reply_free(&r);
        http_json(d, "POST", path, "{\"quiet\":1}", &r);
        log = jstr(r.json, "log");
        CHECK(r.status == 200 && log && !*log &&
                  json_integer_value(json_object_get(json_object_get(r.json, "response"), "seq")) ==
                      seq + 1,
              "%s: a call that logs nothing has an empty log: %ld '%s'", how, r.status,
              r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke?log=maybe", c);
        http_json(d, "POST", path, "{}", &r);
        CHECK(r.status == 400, "%s: ?log=maybe: %ld '%s'", how, r.status, r.body ? r.body : "");
        reply_free(&r);
        /* The whole log has the line too, after the earlier requests' lines. */
        snprintf(path, sizeof(path), "/v1/clones/%s/log", c);
        http_json(d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && r.body && strstr(r.body, line), "%s: the clone's log: '%.300s'",
              how, r.body ? r.body : "");
        reply_free(&r);
}

static void case_api(void)
{
        struct daemon d;
        struct reply r;
        char path[256], body[256];
        make_state(&d, "api");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        http_json(&d, "GET", "/v1/health", NULL, &r);
        CHECK(r.status == 200 && !strcmp(jstr(r.json, "status"), "ok") &&
                  jint(r.json, "snapshots") == 1,
              "health: %ld %s", r.status, r.body ? r.body : "");
        /* What the daemon found this host's settings cost every clone: sentences, and the debugfs
         * one whenever the host has debugfs (docs/workers.md, "Limits for many clones"). */
        json_t *advice = json_object_get(r.json, "host_advice");
        bool says_debugfs = false;
        CHECK(json_is_array(advice), "health has no host_advice array: %s", r.body ? r.body : "");
        for (size_t i = 0; i < json_array_size(advice); i++) {
                const char *line = json_string_value(json_array_get(advice, i));
                CHECK(line && strlen(line) > 20, "host_advice[%zu] is not a sentence", i);
                says_debugfs |= line && strstr(line, "debugfs") != NULL;
        }
        CHECK(says_debugfs == fs_registered("debugfs"), "host_advice on debugfs: %s",
              r.body ? r.body : "");
        reply_free(&r);

        http_json(&d, "GET", "/v1/snapshots", NULL, &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "snapshots")) == 1,
              "list: %s", r.body ? r.body : "");
        reply_free(&r);
        get_snapshot(&d, id, &r);
        CHECK(r.status == 200 && jint(r.json, "clones") == 0 &&
                  json_is_false(json_object_get(r.json, "loaded")),
              "show: %s", r.body ? r.body : "");
        reply_free(&r);

        /* Clones: one, then three. */
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 201, "create a clone: %ld %s", r.status, r.body ? r.body : "");
        char c1[64];
        snprintf(c1, sizeof(c1), "%s",
                 jstr(json_array_get(json_object_get(r.json, "clones"), 0), "id"));
        CHECK(is_uuid(c1), "clone id '%s'", c1);
        reply_free(&r);
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":3}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 201 && json_array_size(json_object_get(r.json, "clones")) == 3,
              "create 3 clones: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        http_json(&d, "GET", "/v1/clones", NULL, &r);
        CHECK(json_array_size(json_object_get(r.json, "clones")) == 4, "list clones: %s",
              r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones?snapshot=%s", id);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(json_array_size(json_object_get(r.json, "clones")) == 4, "list by snapshot: %s",
              r.body ? r.body : "");
        reply_free(&r);
        http_json(&d, "GET", "/v1/clones?snapshot=00000000-0000-0000-0000-000000000000", NULL, &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "clones")) == 0,
              "list by another snapshot: %s", r.body ? r.body : "");
        reply_free(&r);

        /* Invoke a clone twice: its state carries over (seq counts). */
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", c1);
        http_json(&d, "POST", path, "{\"name\":\"api\"}", &r);
        CHECK(r.status == 200 && r.body && strstr(r.body, "\"echo\":{\"name\":\"api\"}") &&
                  strstr(r.body, "\"seq\":1") && !strcmp(r.clone_id, c1),
              "invoke: %ld %s (clone header '%s')", r.status, r.body ? r.body : "", r.clone_id);
        reply_free(&r);
        http(&d, "POST", path, NULL, NULL, 0, &r); /* no body: {} */
        CHECK(r.status == 200 && r.body && strstr(r.body, "\"seq\":2"), "second invoke: %s",
              r.body ? r.body : "");
        reply_free(&r);
        /* Its log: text, read between its requests. */
        snprintf(path, sizeof(path), "/v1/clones/%s/log", c1);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && !r.json, "the clone's log: %ld '%.200s'", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        check_invoke_log(&d, c1, 3, "in a worker");
        snprintf(path, sizeof(path), "/v1/clones/%s", c1);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && jint(r.json, "invocations") == 4 &&
                  !strcmp(jstr(r.json, "state"), "idle") &&
                  json_is_integer(json_object_get(r.json, "private_bytes")) &&
                  jint(r.json, "private_bytes") > 0 &&
                  json_is_number(json_object_get(r.json, "age_s")),
              "show clone: %s", r.body ? r.body : "");
        reply_free(&r);

        /* One-shot, fresh: a new clone each time, gone afterwards. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "{\"k\":1}", &r);
        char fresh[64];
        snprintf(fresh, sizeof(fresh), "%s", r.clone_id);
        CHECK(r.status == 200 && r.body && strstr(r.body, "\"seq\":1") && is_uuid(fresh),
              "one-shot: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s", fresh);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 404, "a fresh one-shot clone outlived its call: %ld", r.status);
        reply_free(&r);
        /* The ready pool (--pool-ready 2): a fresh one-shot takes a warmed-up clone that has
         * served nothing ("seq":1, its own id), and the pool makes another. */
        long long ready = wait_ready(&d, id, 2, 30);
        CHECK(ready == 2, "ready clones: %lld, want 2", ready);
        CHECK(metric(&d, "sprout_ready_clones") == 2, "sprout_ready_clones gauge");
        long long taken = metric(&d, "sprout_ready_clones_taken_total");
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "{\"identity\":1}", &r);
        char readyc[64], want_clone[128];
        snprintf(readyc, sizeof(readyc), "%s", r.clone_id);
        snprintf(want_clone, sizeof(want_clone), "\"clone\":\"%s\"", readyc);
        CHECK(r.status == 200 && r.body && strstr(r.body, "\"seq\":1") && is_uuid(readyc) &&
                  strcmp(readyc, fresh) && strstr(r.body, want_clone),
              "one-shot from the ready pool: %ld %s (clone header '%s')", r.status,
              r.body ? r.body : "", readyc);
        reply_free(&r);
        CHECK(taken >= 0 && metric(&d, "sprout_ready_clones_taken_total") == taken + 1,
              "the one-shot did not take a ready clone (%lld taken before)", taken);
        snprintf(path, sizeof(path), "/v1/clones/%s", readyc);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 404, "a ready one-shot clone outlived its call: %ld", r.status);
        reply_free(&r);
        ready = wait_ready(&d, id, 2, 30);
        CHECK(ready == 2, "ready clones after a take: %lld, want 2 again", ready);
        /* One-shot with reuse: the second call is served by the same pooled clone. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke?reuse=true", id);
        http_json(&d, "POST", path, "{}", &r);
        char pooled[64];
        snprintf(pooled, sizeof(pooled), "%s", r.clone_id);
        CHECK(r.status == 200 && strstr(r.body, "\"seq\":1"), "reuse 1: %s", r.body ? r.body : "");
        reply_free(&r);
        http_json(&d, "POST", path, "{}", &r);
        CHECK(r.status == 200 && strstr(r.body, "\"seq\":2") && !strcmp(r.clone_id, pooled),
              "reuse 2 (clone %s, then %s): %s", pooled, r.clone_id, r.body ? r.body : "");
        reply_free(&r);
        get_snapshot(&d, id, &r);
        CHECK(jint(r.json, "idle_clones") == 1 && json_is_true(json_object_get(r.json, "loaded")),
              "snapshot after reuse: %s", r.body ? r.body : "");
        reply_free(&r);

        /* Delete a clone. */
        snprintf(path, sizeof(path), "/v1/clones/%s", c1);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK(r.status == 200, "delete clone: %ld", r.status);
        reply_free(&r);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 404 && !strcmp(err_code(&r), "clone_not_found"), "deleted clone: %ld %s",
              r.status, r.body ? r.body : "");
        reply_free(&r);

        /* Metrics: Prometheus text with the histograms and gauges. */
        http(&d, "GET", "/metrics", NULL, NULL, 0, &r);
        CHECK(r.status == 200 && r.body &&
                  strstr(r.body, "# TYPE sprout_restore_seconds histogram") &&
                  strstr(r.body, "sprout_invoke_seconds_bucket{le=\"+Inf\"}") &&
                  strstr(r.body, "sprout_oneshot_seconds_count 4") &&
                  strstr(r.body, "sprout_clone_create_seconds_count") &&
                  strstr(r.body, "sprout_clones_live 4") &&
                  strstr(r.body, "sprout_bases_loaded 1") &&
                  strstr(r.body, "sprout_errors_total{code=\"clone_not_found\"} 3") &&
                  strstr(r.body, "sprout_process_resident_bytes"),
              "metrics:\n%s", r.body ? r.body : "");
        reply_free(&r);

        /* A snapshot with clones: 409 without force; force destroys them; then it is gone. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK(r.status == 409 && !strcmp(err_code(&r), "snapshot_in_use"), "delete in use: %ld %s",
              r.status, r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s?force=true", id);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK(r.status == 200 && jint(r.json, "clones_destroyed") == 4, "force delete: %ld %s",
              r.status, r.body ? r.body : "");
        reply_free(&r);
        http_json(&d, "GET", "/v1/clones", NULL, &r);
        CHECK(r.status == 200 && json_is_array(json_object_get(r.json, "clones")) &&
                  json_array_size(json_object_get(r.json, "clones")) == 0,
              "clones left: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        get_snapshot(&d, id, &r);
        CHECK(r.status == 404, "deleted snapshot: %ld", r.status);
        reply_free(&r);
        /* Its ready clones went with its base, and so did their slots under the limit. */
        double until = sprout_mono_s() + 30;
        long long total = -1;
        while (sprout_mono_s() < until && total != 0) {
                /* A dead daemon's missing answer must not read as zero clones. */
                http_json(&d, "GET", "/v1/health", NULL, &r);
                json_t *clones = json_object_get(r.json, "clones");
                total = r.status == 200 && json_is_integer(json_object_get(clones, "total"))
                            ? jint(clones, "total")
                            : -1;
                reply_free(&r);
                usleep(50000);
        }
        CHECK(total == 0, "%lld clones counted after the snapshot was deleted (-1: no answer)",
              total);
        CHECK(metric(&d, "sprout_ready_clones") == 0, "ready clones after the delete");
        char file[2300];
        snprintf(file, sizeof(file), "%s/snapshots/%s.snap", d.state, id);
        CHECK(!file_exists(file), "%s still exists", file);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
}

/* ---- malformed input ---- */

/* How a raw exchange ended. */
enum raw_end {
        RAW_NO_CONNECTION = -1,
        RAW_RESPONSE = 0, /* a response head came back */
        RAW_CLOSED,       /* the daemon closed (or reset) the connection without answering */
        RAW_TIMEOUT,      /* neither, within 10 s */
};

/* Writes the head, then body_bytes of body (chunked or not), while reading what comes back. */
static enum raw_end raw_exchange(const struct daemon *d, const char *head, size_t body_bytes,
                                 bool chunked, char *resp, size_t resp_len, size_t *sent)
{
        static const char last[] = "0\r\n\r\n";
        bool ended = false;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        *sent = 0;
        resp[0] = '\0';
        memcpy(a.sun_path, d->sock, sizeof(a.sun_path));
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return RAW_NO_CONNECTION;
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
                close(s);
                return RAW_NO_CONNECTION;
        }
        if (send(s, head, strlen(head), MSG_NOSIGNAL) < 0) {
                close(s);
                return RAW_CLOSED;
        }
        static char chunk[65536 + 16];
        size_t got = 0;
        enum raw_end end = RAW_TIMEOUT;
        double until = sprout_mono_s() + 10;
        while (sprout_mono_s() < until) {
                struct pollfd p = {.fd = s, .events = POLLIN | (*sent < body_bytes ? POLLOUT : 0)};
                if (poll(&p, 1, 100) < 0)
                        break;
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = recv(s, resp + got, resp_len - got - 1, 0);
                        if (n <= 0) {
                                end = RAW_CLOSED;
                                break;
                        }
                        got += (size_t)n;
                        resp[got] = '\0';
                        if (strstr(resp, "\r\n\r\n")) {
                                end = RAW_RESPONSE;
                                break;
                        }
                        continue;
                }
                if (*sent >= body_bytes && chunked && !ended) {
                        ended = send(s, last, sizeof(last) - 1, MSG_NOSIGNAL) > 0 || true;
                        continue;
                }
                if (p.revents & POLLOUT) {
                        size_t n = 65536;
                        if (chunked) {
                                int h = snprintf(chunk, 16, "10000\r\n");
                                memset(chunk + h, 'x', n);
                                memcpy(chunk + h + n, "\r\n", 2);
                                n += (size_t)h + 2;
                        } else {
                                memset(chunk, ' ', n);
                        }
                        ssize_t w = send(s, chunk, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w < 0 && errno != EAGAIN) {
                                end = RAW_CLOSED; /* EPIPE, ECONNRESET: the daemon hung up */
                                break;
                        }
                        if (w > 0)
                                *sent += (size_t)w;
                }
        }
        close(s);
        return end;
}

static long vm_hwm_kb(pid_t pid)
{
        char p[64], line[256];
        long kb = -1;
        snprintf(p, sizeof(p), "/proc/%d/status", pid);
        FILE *f = fopen(p, "r");
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
                        break;
        if (f)
                fclose(f);
        return kb;
}

/* Checks an error reply: status, code, and that the message names what it should. */
#define CHECK_ERR(r, st, code, needle)                                                             \
        CHECK((r).status == (st) && !strcmp(err_code(&(r)), (code)) &&                             \
                  strstr(err_msg(&(r)), (needle)) != NULL,                                         \
              "want %d %s naming '%s', got %ld %s", (st), (code), (needle), (r).status,            \
              (r).body ? (r).body : "")

static void case_bad_input(void)
{
        struct daemon d;
        struct reply r;
        char path[256], body[512];
        make_state(&d, "bad_input");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        long hwm0 = vm_hwm_kb(d.pid);

        /* A 100 MB body is refused from its Content-Length, before any of it is read. */
        static const char head[] = "POST /v1/snapshots HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 104857600\r\n\r\n";
        char resp[4096];
        size_t sent = 0;
        enum raw_end end = raw_exchange(&d, head, 100u << 20, false, resp, sizeof(resp), &sent);
        CHECK(end == RAW_RESPONSE && !strncmp(resp, "HTTP/1.1 413", 12),
              "100 MB body, no Expect: ended %d, '%.40s'", end, resp);
        CHECK(sent < (8u << 20), "the daemon read %zu bytes of a body it refused", sent);
        /* And through libcurl, which asks with Expect: 100-continue first. */
        char *big = malloc(100u << 20);
        if (big) {
                memset(big, ' ', 100u << 20);
                http(&d, "POST", "/v1/snapshots", NULL, big, 100u << 20, &r);
                CHECK_ERR(r, 413, "body_too_large", "bytes");
                reply_free(&r);
                free(big);
        }
        /* Chunked, no length: counted as it arrives and dropped past the limit; 413 at its
         * end, and a connection that keeps sending is closed. */
        static const char chead[] = "POST /v1/clones HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n";
        end = raw_exchange(&d, chead, 2u << 20, true, resp, sizeof(resp), &sent);
        CHECK(end == RAW_RESPONSE && !strncmp(resp, "HTTP/1.1 413", 12),
              "chunked 2 MB body: ended %d, '%.40s'", end, resp);
        /* An endless one: no answer can be queued mid-body, so the daemon must hang up, and only
         * after discarding its 16 MiB allowance (more than that went out before it did). */
        end = raw_exchange(&d, chead, 1u << 30, true, resp, sizeof(resp), &sent);
        CHECK(end == RAW_CLOSED && resp[0] == '\0',
              "an endless chunked body: ended %d (want the daemon to close it), answer '%.40s'",
              end, resp);
        CHECK(sent > (16u << 20) && sent < (64u << 20),
              "an endless chunked body: %zu bytes went out before the daemon hung up", sent);
        long hwm1 = vm_hwm_kb(d.pid);
        CHECK(hwm1 - hwm0 < 16 * 1024, "the daemon's peak RSS grew %ld KiB on refused bodies",
              hwm1 - hwm0);
        /* A request over the mailbox's request area. */
        size_t over = SPROUT_MB_REQ_SIZE + 10;
        char *req = malloc(over);
        if (req) {
                memset(req, ' ', over);
                req[0] = '"';
                req[over - 1] = '"';
                snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
                http(&d, "POST", path, NULL, req, over, &r);
                CHECK_ERR(r, 413, "body_too_large", "at most");
                reply_free(&r);
                free(req);
        }

        http_json(&d, "POST", "/v1/snapshots", "{\"image\": ", &r);
        CHECK_ERR(r, 400, "invalid_json", "not JSON");
        reply_free(&r);
        http_json(&d, "POST", "/v1/clones", "[1,2]", &r);
        CHECK_ERR(r, 400, "invalid_request", "object");
        reply_free(&r);
        http(&d, "POST", "/v1/clones", "application/x-www-form-urlencoded", "snapshot=x", 10, &r);
        CHECK_ERR(r, 415, "unsupported_media_type", "application/json");
        reply_free(&r);
        http(&d, "POST", "/v1/clones", "text/plain", "{}", 2, &r);
        CHECK_ERR(r, 415, "unsupported_media_type", "application/json");
        reply_free(&r);
        http_json(&d, "GET", "/v1/nothing", NULL, &r);
        CHECK_ERR(r, 404, "not_found", "/v1/nothing");
        reply_free(&r);
        http_json(&d, "GET", "/", NULL, &r);
        CHECK_ERR(r, 404, "not_found", "/");
        reply_free(&r);
        http_json(&d, "PUT", "/v1/snapshots", "{}", &r);
        CHECK_ERR(r, 405, "method_not_allowed", "PUT");
        CHECK(strstr(r.allow, "GET") && strstr(r.allow, "POST"), "Allow: '%s'", r.allow);
        reply_free(&r);
        http_json(&d, "DELETE", "/v1/health", NULL, &r);
        CHECK_ERR(r, 405, "method_not_allowed", "DELETE");
        reply_free(&r);

        /* Fields: wrong type, unknown, missing, out of range, duplicated; each named. */
        static const struct {
                const char *path, *body;
                const char *code, *needle;
        } fields[] = {
            {"/v1/snapshots", "{\"image\": 42}", "invalid_field", "'image'"},
            {"/v1/snapshots", "{\"image\": \"relative/path\"}", "invalid_field", "'image'"},
            {"/v1/snapshots", "{\"image\": \"/nonexistent/image\"}", "invalid_field", "'image'"},
            {"/v1/snapshots", "{}", "missing_field", "'image'"},
            {"/v1/snapshots", "{\"image\":\"/x\",\"colour\":\"blue\"}", "unknown_field",
             "'colour'"},
            {"/v1/snapshots", "{\"image\":\"/x\",\"timeout_s\":\"10\"}", "invalid_field",
             "'timeout_s'"},
            {"/v1/clones", "{\"snapshot\":true}", "invalid_field", "'snapshot'"},
            {"/v1/clones", "{\"snapshot\":\"not-an-id\"}", "invalid_field", "'snapshot'"},
            {"/v1/clones", "{\"snapshot\":\"a\",\"snapshot\":\"b\"}", "invalid_json", "duplicate"},
        };
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                http_json(&d, "POST", fields[i].path, fields[i].body, &r);
                CHECK_ERR(r, 400, fields[i].code, fields[i].needle);
                reply_free(&r);
        }
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":0}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK_ERR(r, 400, "invalid_field", "'count'");
        reply_free(&r);
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":1.5}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK_ERR(r, 400, "invalid_field", "'count'");
        reply_free(&r);
        /* Ids: malformed (400) and well-formed but unknown (404). */
        static const char *bad_ids[] = {"x", "ABCDEF00-0000-0000-0000-000000000000",
                                        "00000000-0000-0000-0000-0000000000000",
                                        "0000000g-0000-0000-0000-000000000000", NULL};
        for (int i = 0; bad_ids[i]; i++) {
                snprintf(path, sizeof(path), "/v1/clones/%s", bad_ids[i]);
                http_json(&d, "GET", path, NULL, &r);
                CHECK_ERR(r, 400, "invalid_id", "UUID");
                reply_free(&r);
        }
        static const char nobody[] = "12345678-1234-1234-1234-123456789abc";
        snprintf(path, sizeof(path), "/v1/clones/%s", nobody);
        http_json(&d, "GET", path, NULL, &r);
        CHECK_ERR(r, 404, "clone_not_found", nobody);
        reply_free(&r);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK_ERR(r, 404, "clone_not_found", nobody);
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", nobody);
        http_json(&d, "POST", path, "{}", &r);
        CHECK_ERR(r, 404, "clone_not_found", nobody);
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s", nobody);
        http_json(&d, "GET", path, NULL, &r);
        CHECK_ERR(r, 404, "snapshot_not_found", nobody);
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", nobody);
        http_json(&d, "POST", path, "{}", &r);
        CHECK_ERR(r, 404, "snapshot_not_found", nobody);
        reply_free(&r);
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", nobody);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK_ERR(r, 404, "snapshot_not_found", nobody);
        reply_free(&r);

        /* Query parameters: unknown, badly typed. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s?force=maybe", id);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK_ERR(r, 400, "invalid_field", "'force'");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s?recursive=1", id);
        http_json(&d, "DELETE", path, NULL, &r);
        CHECK_ERR(r, 400, "unknown_field", "'recursive'");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke?timeout_ms=-5", id);
        http_json(&d, "POST", path, "{}", &r);
        CHECK_ERR(r, 400, "invalid_field", "'timeout_ms'");
        reply_free(&r);
        /* The invocation body must be JSON too. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "not json", &r);
        CHECK_ERR(r, 400, "invalid_json", "not JSON");
        reply_free(&r);

        /* Still healthy, and the errors were counted by code. */
        http(&d, "GET", "/metrics", NULL, NULL, 0, &r);
        CHECK(r.body && strstr(r.body, "sprout_errors_total{code=\"invalid_id\"} 4") &&
                  strstr(r.body, "sprout_errors_total{code=\"body_too_large\"} 4"),
              "error metrics: %s", r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "{\"still\":\"alive\"}", &r);
        CHECK(r.status == 200, "an invocation after all that: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
}

/* ---- concurrency: many one-shot calls at once, and the queue limit ---- */

struct shot {
        pthread_t t;
        const struct daemon *d;
        char path[256];
        const char *body;
        pthread_barrier_t *go;
        struct reply r;
};

static void *shot_main(void *arg)
{
        struct shot *s = arg;
        pthread_barrier_wait(s->go);
        http_json(s->d, "POST", s->path, s->body, &s->r);
        return NULL;
}

/* n one-shot calls released at once; returns how many got each status in ok/busy/other. */
static void fire(const struct daemon *d, const char *id, int n, const char *body, bool mixed,
                 int *ok, int *limited, int *other, int *bad_body)
{
        struct shot *s = calloc((size_t)n, sizeof(*s));
        pthread_barrier_t go;
        *ok = *limited = *other = *bad_body = 0;
        if (!s)
                return;
        pthread_barrier_init(&go, NULL, (unsigned)n);
        for (int i = 0; i < n; i++) {
                s[i].d = d;
                s[i].go = &go;
                s[i].body = body;
                snprintf(s[i].path, sizeof(s[i].path), "/v1/snapshots/%s/invoke%s", id,
                         mixed && i % 2 ? "?reuse=true" : "");
                pthread_create(&s[i].t, NULL, shot_main, &s[i]);
        }
        for (int i = 0; i < n; i++) {
                pthread_join(s[i].t, NULL);
                if (s[i].r.status == 200) {
                        (*ok)++;
                        if (!s[i].r.body || !strstr(s[i].r.body, "\"hello\":\"world\""))
                                (*bad_body)++;
                } else if (s[i].r.status == 429) {
                        (*limited)++;
                } else {
                        if (!*other)
                                fprintf(stderr, "first unexpected reply: %ld %s\n", s[i].r.status,
                                        s[i].r.body ? s[i].r.body : "");
                        (*other)++;
                }
                reply_free(&s[i].r);
        }
        pthread_barrier_destroy(&go);
        free(s);
}

static void case_concurrency(void)
{
        struct daemon d;
        struct reply r;
        int ok, limited, other, bad;
        make_state(&d, "concurrency");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        double t0 = sprout_mono_s();
        fire(&d, id, 200, "{\"n\":1}", true, &ok, &limited, &other, &bad);
        printf("200 concurrent one-shot calls: %d ok in %.2f s\n", ok, sprout_mono_s() - t0);
        CHECK(ok == 200 && bad == 0,
              "200 concurrent one-shots: %d ok (%d bad bodies), %d 429, %d other", ok, bad, limited,
              other);
        /* A worker counts itself idle just after it hands the response back: allow a moment. */
        bool idle_workers = false;
        for (int i = 0; i < 50 && !idle_workers; i++) {
                http_json(&d, "GET", "/v1/health", NULL, &r);
                json_t *w = json_object_get(r.json, "workers");
                idle_workers = r.status == 200 && jint(w, "busy") == 0 && jint(w, "queued") == 0;
                if (!idle_workers && i == 49)
                        CHECK(0, "health after the burst: %s", r.body ? r.body : "");
                reply_free(&r);
                usleep(20000);
        }
        /* Fresh clones are torn down off the request path; they all go, the pool stays, and so do
         * the ready pool's 2 slots (its clones refilled). */
        double until = sprout_mono_s() + 60;
        long long total = -1, idle = -1, ready = -1;
        while (sprout_mono_s() < until) {
                http_json(&d, "GET", "/v1/health", NULL, &r);
                total = jint(json_object_get(r.json, "clones"), "total");
                reply_free(&r);
                get_snapshot(&d, id, &r);
                idle = jint(r.json, "idle_clones");
                ready = jint(r.json, "ready_clones");
                reply_free(&r);
                if (total == idle + 2 && ready == 2)
                        break;
                usleep(100000);
        }
        CHECK(total == idle + 2 && ready == 2 && idle > 0 && idle <= 100,
              "after the burst %lld clones remain, %lld of them pooled, %lld ready", total, idle,
              ready);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");

        /* One worker, a queue of two: a burst gets 429s for the rest, nothing else. */
        make_state(&d, "queue");
        id = add_fixture_snapshot(&d);
        const char *flags[] = {"--workers",          "1", "--max-queue", "2",
                               "--tenant-max-queue", "2", NULL};
        if (!id || daemon_start(&d, flags) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        /* Each call holds the one worker for 3 s in the guest, so the whole burst arrives while the
         * first is running: one running and two queued at most are served, on any host. (Two when
         * the third arrives before the worker took the first off the queue.) */
        fire(&d, id, 12, "{\"hold_ms\":3000}", false, &ok, &limited, &other, &bad);
        printf("12 one-shots on 1 worker, queue 2: %d ok, %d refused\n", ok, limited);
        CHECK(ok >= 2 && ok <= 3 && bad == 0 && limited == 12 - ok && other == 0,
              "queue limit: %d ok (%d bad bodies), %d 429, %d other", ok, bad, limited, other);
        http(&d, "GET", "/metrics", NULL, NULL, 0, &r);
        char want[64];
        snprintf(want, sizeof(want), "sprout_errors_total{code=\"queue_full\"} %d", limited);
        CHECK(r.body && strstr(r.body, want), "metrics lack '%s'", want);
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
}

/* ---- limits: live clones, invocation time, idle reaping ---- */

static void case_limits(void)
{
        struct daemon d;
        struct reply r;
        char path[256], body[256];
        make_state(&d, "limits");
        const char *id = add_fixture_snapshot(&d);
        /* Settings from a config file, one overridden by a flag; bad ones refused at start. */
        char conf[1100], bad[1100];
        snprintf(conf, sizeof(conf), "%s/sproutd.json", d.state);
        snprintf(bad, sizeof(bad), "%s/bad.json", d.state);
        FILE *f = fopen(conf, "w");
        if (f) {
                fputs("{\"max_clones\": 3, \"idle_timeout_s\": 100, \"log_level\": \"debug\"}", f);
                fclose(f);
        }
        f = fopen(bad, "w");
        if (f) {
                fputs("{\"max_clones\": \"many\"}", f);
                fclose(f);
        }
        const char *bad_flags[][3] = {
            {"--config", bad, NULL}, {"--max-clones", "0", NULL}, {"--no-such-flag", "1", NULL}};
        for (int i = 0; i < 3; i++) {
                int rc = daemon_run_expect_exit(&d, bad_flags[i], 10);
                CHECK(rc == 2, "sproutd %s %s: exit %d, want 2", bad_flags[i][0], bad_flags[i][1],
                      rc);
        }
        const char *flags[] = {"--config", conf, "--idle-timeout-s", "3", NULL};
        if (!id || daemon_start(&d, flags) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":3}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 201, "3 clones under a limit of 3: %ld %s", r.status,
              r.body ? r.body : "");
        char c0[64];
        snprintf(c0, sizeof(c0), "%s",
                 jstr(json_array_get(json_object_get(r.json, "clones"), 0), "id"));
        reply_free(&r);
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK_ERR(r, 429, "too_many_clones", "limit");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "{}", &r);
        CHECK_ERR(r, 429, "too_many_clones", "limit");
        reply_free(&r);
        http_json(&d, "GET", "/v1/health", NULL, &r);
        CHECK(r.status == 200 && jint(json_object_get(r.json, "clones"), "live") == 3 &&
                  jint(json_object_get(r.json, "clones"), "limit") == 3,
              "health at the limit: %s", r.body ? r.body : "");
        reply_free(&r);

        /* An invocation over its time limit: 504, and the clone is dead from then on. The guest
         * holds the request 50 times longer than the limit, whatever the host's speed. */
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke?timeout_ms=100", c0);
        double t0 = sprout_mono_s();
        http_json(&d, "POST", path, "{\"hold_ms\":5000}", &r);
        CHECK_ERR(r, 504, "invoke_timeout", "100 ms");
        CHECK(sprout_mono_s() - t0 < 3, "a 100 ms limit took %.2f s", sprout_mono_s() - t0);
        reply_free(&r);
        http_json(&d, "POST", path, "{}", &r);
        CHECK_ERR(r, 409, "clone_dead", "did not answer");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s", c0);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(!strcmp(jstr(r.json, "state"), "dead") && *jstr(r.json, "dead_reason"),
              "a timed-out clone: %s", r.body ? r.body : "");
        reply_free(&r);

        /* Deleting one frees room once the reaper has torn it down. */
        http_json(&d, "DELETE", path, NULL, &r);
        reply_free(&r);
        double until = sprout_mono_s() + 10;
        long status = 0;
        while (sprout_mono_s() < until && status != 201) {
                snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
                http_json(&d, "POST", "/v1/clones", body, &r);
                status = r.status;
                reply_free(&r);
        }
        CHECK(status == 201, "no room after a delete: %ld", status);

        /* Idle clones are reaped after --idle-timeout-s. */
        until = sprout_mono_s() + 15;
        long long left = 3;
        while (sprout_mono_s() < until && left) {
                /* Only a listing the daemon answered counts: no answer is not "none left". */
                http_json(&d, "GET", "/v1/clones", NULL, &r);
                json_t *clones = json_object_get(r.json, "clones");
                left = r.status == 200 && json_is_array(clones) ? (long long)json_array_size(clones)
                                                                : -1;
                reply_free(&r);
                usleep(200000);
        }
        CHECK(left == 0, "%lld idle clones not reaped (-1: no answer)", left);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
}

/* ---- restart: a daemon killed mid-prewarm lists nothing broken; socket and lock ---- */

static void case_restart(void)
{
        struct daemon d, other;
        struct reply r;
        char p[2300], img[2048];
        make_state(&d, "restart");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        struct stat st;
        CHECK(stat(d.sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0660,
              "socket mode %o", st.st_mode & 0777);
        CHECK(!(st.st_mode & S_IWOTH), "the socket is world-writable");

        /* A second daemon: refused on the same state directory, and on the same socket. */
        other = d;
        other.pid = 0;
        snprintf(other.log, sizeof(other.log), "%s.second.log", d.state);
        int rc = daemon_run_expect_exit(&other, NULL, 10);
        CHECK(rc == 1, "a second daemon on the same state dir: exit %d", rc);
        make_state(&other, "restart-other");
        memcpy(other.sock, d.sock, sizeof(other.sock));
        rc = daemon_run_expect_exit(&other, NULL, 10);
        CHECK(rc == 1, "a second daemon on a live socket: exit %d", rc);
        CHECK(stat(d.sock, &st) == 0, "the second daemon removed the live socket");

        /* A prewarm that cannot finish: the handler spins in user mode and never rings READY, so
         * the kill lands mid-prewarm however fast the host boots. */
        snprintf(img, sizeof(img), "{\"image\":\"%s/hostile\",\"cmdline\":\"SPROUT_HOSTILE=spin\"}",
                 t_images);
        http_json(&d, "POST", "/v1/snapshots", img, &r);
        char killed[64];
        snprintf(killed, sizeof(killed), "%s", jstr(r.json, "id"));
        CHECK(r.status == 202, "prewarm: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        const char *booting[] = {"booting", NULL};
        const char *st_seen = wait_status(&d, killed, booting, 30);
        CHECK(!strcmp(st_seen, "booting"), "the prewarm to kill is '%s', not booting", st_seen);
        get_snapshot(&d, killed, &r);
        CHECK(r.status == 200 && !strcmp(jstr(r.json, "status"), "booting"),
              "the prewarm just before SIGKILL: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGKILL, 10) == 128 + SIGKILL, "SIGKILL");

        /* What an interrupted write leaves, and a file that is no snapshot. */
        snprintf(p, sizeof(p), "%s/snapshots/.%s.snap.tmp.Ab12Cd", d.state, killed);
        FILE *f = fopen(p, "w");
        if (f) {
                fputs("half a snapshot", f);
                fclose(f);
        }
        char junk[2300];
        snprintf(junk, sizeof(junk), "%s/snapshots/junk.snap", d.state);
        f = fopen(junk, "w");
        if (f) {
                fputs("SPROUT? no", f);
                fclose(f);
        }
        CHECK(stat(d.sock, &st) == 0, "SIGKILL left no stale socket to test with");
        CHECK(daemon_start(&d, NULL) == 0, "restart over a stale socket");
        http_json(&d, "GET", "/v1/snapshots", NULL, &r);
        json_t *arr = json_object_get(r.json, "snapshots");
        CHECK(json_array_size(arr) == 1 && !strcmp(jstr(json_array_get(arr, 0), "id"), id) &&
                  !strcmp(jstr(json_array_get(arr, 0), "status"), "ready"),
              "after SIGKILL mid-prewarm: %s", r.body ? r.body : "");
        reply_free(&r);
        CHECK(!file_exists(p), "the temporary file %s was not cleaned up", p);
        CHECK(file_exists(junk), "a file that is not a snapshot was deleted");
        get_snapshot(&d, killed, &r);
        CHECK(r.status == 404, "the killed prewarm is listed: %ld", r.status);
        reply_free(&r);
        /* The snapshot that was there still works. */
        char path[256];
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_json(&d, "POST", path, "{}", &r);
        CHECK(r.status == 200, "invoke after restart: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
        CHECK(stat(d.sock, &st) < 0, "the socket outlived a clean stop");
}

/* ---- drain: SIGTERM lets in-flight requests finish ---- */

/* How long the in-flight invocation holds in the guest: far longer than the test needs between
 * seeing it busy and seeing the daemon refuse new work, on any host. */
#define DRAIN_HOLD_MS 4000

struct held {
        const struct daemon *d;
        char path[256];
        struct reply r;
        double done_s; /* when its reply came; read after the join */
};

static void *held_main(void *arg)
{
        struct held *h = arg;
        char body[64];
        snprintf(body, sizeof(body), "{\"hold_ms\":%d}", DRAIN_HOLD_MS);
        http_json(h->d, "POST", h->path, body, &h->r);
        h->done_s = sprout_mono_s();
        return NULL;
}

/* A connection made now and kept open (HTTP/1.1 keep-alive): after SIGTERM the daemon takes no new
 * connection, so only one made before can show how it answers requests while draining. */
static int keepalive_open(const struct daemon *d)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        memcpy(a.sun_path, d->sock, sizeof(a.sun_path));
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
                close(s);
                s = -1;
        }
        return s;
}

/* GET path on the kept connection; the status of the one response read back (body into buf), or 0
 * when the connection ended or nothing came within 10 s. */
static long keepalive_get(int s, const char *path, char *buf, size_t cap)
{
        char req[512];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
        buf[0] = '\0';
        if (send(s, req, (size_t)n, MSG_NOSIGNAL) != n)
                return 0;
        size_t got = 0, want = 0;
        const char *body = NULL;
        double until = sprout_mono_s() + 10;
        while (sprout_mono_s() < until && (!body || got < want)) {
                struct pollfd p = {.fd = s, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t r = recv(s, buf + got, cap - got - 1, 0);
                if (r <= 0)
                        return 0;
                got += (size_t)r;
                buf[got] = '\0';
                const char *eoh = strstr(buf, "\r\n\r\n");
                if (!body && eoh) {
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");
                        body = eoh + 4;
                        want = (size_t)(body - buf) +
                               (cl && cl < eoh ? strtoul(cl + 17, NULL, 10) : 0);
                        if (want >= cap)
                                return 0;
                }
        }
        long status = 0;
        if (body && got >= want && sscanf(buf, "HTTP/1.1 %ld", &status) == 1) {
                memmove(buf, body, got - (size_t)(body - buf) + 1);
                return status;
        }
        return 0;
}

static void case_drain(void)
{
        struct daemon d;
        struct reply r;
        char path[256], body[256], buf[8192];
        make_state(&d, "drain");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        /* A named clone, so the test can watch its state; the base loads here, not in the call. */
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        char c[64];
        snprintf(c, sizeof(c), "%s",
                 jstr(json_array_get(json_object_get(r.json, "clones"), 0), "id"));
        CHECK(r.status == 201 && is_uuid(c), "a clone: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        int kept = keepalive_open(&d);
        long st = kept >= 0 ? keepalive_get(kept, "/v1/health", buf, sizeof(buf)) : 0;
        CHECK(st == 200, "the kept connection: health gave %ld", st);
        if (!is_uuid(c) || st != 200) {
                if (kept >= 0)
                        close(kept);
                daemon_stop(&d, SIGKILL, 10);
                return;
        }

        struct held h = {.d = &d};
        snprintf(h.path, sizeof(h.path), "/v1/clones/%s/invoke?timeout_ms=60000", c);
        pthread_t t;
        pthread_create(&t, NULL, held_main, &h);
        /* In flight means the daemon says so: the clone is busy running the request. */
        snprintf(path, sizeof(path), "/v1/clones/%s", c);
        bool busy = false;
        double until = sprout_mono_s() + 30;
        while (!busy && sprout_mono_s() < until) {
                http_json(&d, "GET", path, NULL, &r);
                busy = r.status == 200 && !strcmp(jstr(r.json, "state"), "busy");
                reply_free(&r);
                if (!busy)
                        usleep(5000);
        }
        CHECK(busy, "the held invocation never showed as busy");

        double t_sig = sprout_mono_s();
        kill(d.pid, SIGTERM);
        /* The kept connection answers 200 until the daemon has seen the signal, then 503. */
        double t_503 = 0;
        until = t_sig + 10;
        while (sprout_mono_s() < until) {
                st = keepalive_get(kept, "/v1/health", buf, sizeof(buf));
                if (st != 200)
                        break;
                usleep(2000);
        }
        t_503 = sprout_mono_s();
        json_t *j = json_loads(buf, 0, NULL);
        CHECK(st == 503 && !strcmp(jstr(json_object_get(j, "error"), "code"), "shutting_down"),
              "a request on an open connection after SIGTERM: %ld %s", st, buf);
        json_decref(j);
        close(kept);
        /* And no new connection is taken at all. */
        http_json(&d, "GET", "/v1/health", NULL, &r);
        CHECK(r.status == 0, "a new connection after SIGTERM was answered: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);

        int rc = daemon_stop(&d, 0, 60); /* signalled above: only wait */
        pthread_join(t, NULL);
        double t_exit = sprout_mono_s();
        char want[64];
        snprintf(want, sizeof(want), "\"held_ms\":%d", DRAIN_HOLD_MS);
        CHECK(rc == 0, "sproutd exit status %d after SIGTERM", rc);
        CHECK(h.r.status == 200 && h.r.body && strstr(h.r.body, want),
              "the in-flight request: %ld %s", h.r.status, h.r.body ? h.r.body : "");
        /* The proof that it was in flight: its answer came after the refusal, not before. */
        CHECK(busy && h.done_s > t_sig && h.done_s > t_503,
              "the in-flight request finished %.3f s after SIGTERM, the 503 came %.3f s after it",
              h.done_s - t_sig, t_503 - t_sig);
        printf("drained an in-flight invocation: 503 %.3f s, its answer %.3f s, exit %.3f s after "
               "SIGTERM\n",
               t_503 - t_sig, h.done_s - t_sig, t_exit - t_sig);
        reply_free(&h.r);
        http_json(&d, "GET", "/v1/health", NULL, &r);
        CHECK(r.status == 0, "a stopped daemon answered: %ld", r.status);
        reply_free(&r);
}

/* ---- cli: the sprout client commands against a daemon ---- */

static int cli(const struct daemon *d, const char *args, char **out)
{
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "'%s' %s --socket '%s' 2>/dev/null", t_sprout, args, d->sock);
        return run(cmd, out);
}

static void case_cli(void)
{
        struct daemon d;
        char args[512], *out = NULL;
        make_state(&d, "cli");
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, NULL) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        int rc = cli(&d, "snapshots", &out);
        CHECK(rc == 0 && out && strstr(out, "STATUS") && strstr(out, id) && strstr(out, "ready"),
              "sprout snapshots: rc %d\n%s", rc, out ? out : "");
        free(out);
        rc = cli(&d, "snapshots --json", &out);
        json_t *j = out ? json_loads(out, 0, NULL) : NULL;
        CHECK(rc == 0 && json_is_array(j) && json_array_size(j) == 1, "snapshots --json: %s",
              out ? out : "");
        json_decref(j);
        free(out);
        snprintf(args, sizeof(args), "clone %s -n 2", id);
        rc = cli(&d, args, &out);
        char c1[64] = "";
        if (out)
                snprintf(c1, sizeof(c1), "%.36s", out);
        CHECK(rc == 0 && out && is_uuid(c1) && strlen(out) == 2 * (UUID_LEN + 1),
              "sprout clone -n 2: rc %d '%s'", rc, out ? out : "");
        free(out);
        snprintf(args, sizeof(args), "invoke %s '{\"from\":\"cli\"}'", c1);
        rc = cli(&d, args, &out);
        CHECK(rc == 0 && out && strstr(out, "\"from\":\"cli\""), "sprout invoke: rc %d '%s'", rc,
              out ? out : "");
        free(out);
        snprintf(args, sizeof(args), "invoke --snapshot %s --reuse --json", id);
        rc = cli(&d, args, &out);
        j = out ? json_loads(out, 0, NULL) : NULL;
        CHECK(rc == 0 && is_uuid(jstr(j, "clone")) &&
                  json_is_object(json_object_get(j, "response")),
              "sprout invoke --snapshot --json: rc %d '%s'", rc, out ? out : "");
        json_decref(j);
        free(out);
        rc = cli(&d, "clones", &out);
        CHECK(rc == 0 && out && strstr(out, c1) && strstr(out, "PRIVATE"), "sprout clones: %s",
              out ? out : "");
        free(out);
        snprintf(args, sizeof(args), "rm snapshot %s", id);
        rc = cli(&d, args, &out);
        CHECK(rc == 1, "rm of a snapshot in use: rc %d", rc);
        free(out);
        snprintf(args, sizeof(args), "rm clone %s", c1);
        rc = cli(&d, args, &out);
        CHECK(rc == 0 && out && strstr(out, c1), "rm clone: rc %d '%s'", rc, out ? out : "");
        free(out);
        /* Exit codes: usage 2, request failure 1, daemon unreachable 3. */
        rc = cli(&d, "clone", &out);
        CHECK(rc == 2, "usage error: rc %d", rc);
        free(out);
        rc = cli(&d, "invoke 12345678-1234-1234-1234-123456789abc", &out);
        CHECK(rc == 1, "unknown clone: rc %d", rc);
        free(out);
        snprintf(args, sizeof(args), "rm snapshot %s --force", id);
        rc = cli(&d, args, &out);
        CHECK(rc == 0, "rm --force: rc %d", rc);
        free(out);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "SIGTERM");
        rc = cli(&d, "snapshots", &out);
        CHECK(rc == 3, "no daemon: rc %d", rc);
        free(out);
}

/* ---- files a request names: opened with the client's rights, beneath the image roots ---- */

#define NOBODY 65534

/* One request, as root or (as_nobody) from a child running as uid/gid 65534 with no groups: a real
 * unprivileged client on the real socket. */
static void http_as(const struct daemon *d, bool as_nobody, const char *method, const char *path,
                    const char *body, struct reply *r)
{
        if (!as_nobody) {
                http_json(d, method, path, body, r);
                return;
        }
        memset(r, 0, sizeof(*r));
        int p[2];
        if (pipe(p) < 0)
                return;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                struct reply cr;
                if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                        _exit(3);
                http_json(d, method, path, body, &cr);
                dprintf(p[1], "%ld\n%s", cr.status, cr.body ? cr.body : "");
                _exit(0);
        }
        close(p[1]);
        char buf[65536];
        size_t n = 0;
        ssize_t k;
        while (n < sizeof(buf) - 1 && (k = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)k;
        buf[n] = '\0';
        close(p[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        char *nl = strchr(buf, '\n');
        if (!nl || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return;
        r->status = strtol(buf, NULL, 10);
        r->body = strdup(nl + 1);
        r->len = r->body ? strlen(r->body) : 0;
        r->json = r->body ? json_loads(r->body, 0, NULL) : NULL;
}

/* One POST /v1/snapshots of image, as root or as uid 65534. */
static void post_image(const struct daemon *d, const char *image, bool as_nobody, struct reply *r)
{
        char body[4200];
        snprintf(body, sizeof(body), "{\"image\":\"%s\"}", image);
        http_as(d, as_nobody, "POST", "/v1/snapshots", body, r);
}

static void list_as(const struct daemon *d, bool as_nobody, struct reply *r)
{
        http_as(d, as_nobody, "GET", "/v1/snapshots", NULL, r);
}

/* The message with the image's own path cut off: what stays must not depend on why. */
static const char *after_manifest(const struct reply *r)
{
        const char *m = err_msg(r), *p = strstr(m, "manifest.json: ");
        return p ? p + strlen("manifest.json: ") : m;
}

/* Runs a set-up script with $R the scratch root and $H the hello image. */
static void sh(const char *script)
{
        CHECK(system(script) == 0, "set-up: %s", script);
}

static void case_files(void)
{
        struct daemon d;
        struct reply r, r2;
        char root[64] = "/tmp/sprout-files-XXXXXX", img[256], flags_root[80];
        /* Under /tmp, so the unprivileged client can reach the root and the socket whatever the
         * permissions of the build tree are. */
        REQUIRE(mkdtemp(root) != NULL, "mkdtemp: %s", strerror(errno));
        REQUIRE(chmod(root, 0755) == 0, "chmod %s", root);
        char hello[900];
        snprintf(hello, sizeof(hello), "%s/hello", t_images);
        setenv("H", hello, 1);
        setenv("R", root, 1);
        sh("set -e; cd \"$R\"; mkdir good evil fifo priv noinit secret kernel; "
           "cp \"$H\"/manifest.json \"$H\"/initrd.cpio good/; "
           "for i in evil fifo priv noinit kernel; do cp \"$H\"/manifest.json $i/; done; "
           "ln -s /etc/shadow evil/initrd.cpio; mkfifo fifo/initrd.cpio; "
           "cp \"$H\"/initrd.cpio priv/ && chmod 600 priv/initrd.cpio; "
           "cp \"$H\"/initrd.cpio kernel/ && sed -i 's|\"kernel\": *\"default\"|\"kernel\": "
           "\"/etc/shadow\"|' "
           "kernel/manifest.json && grep -q /etc/shadow kernel/manifest.json; "
           "printf '{\"format\": AKIAIOSFODNN7EXAMPLE}' > secret/manifest.json; "
           "ln -s \"$R\"/good linkdir; chmod -R a+rX good evil fifo noinit secret kernel; "
           "chmod 755 priv; chmod 644 priv/manifest.json");
        make_state(&d, "files");
        /* The socket where the unprivileged client can reach it, its group the client's. */
        snprintf(d.sock, sizeof(d.sock), "%s/api.sock", root);
        snprintf(flags_root, sizeof(flags_root), "%s", root);
        const char *flags[] = {"--image-roots", flags_root, "--socket-group", "nogroup", NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        REQUIRE(chmod(d.sock, 0660) == 0, "socket mode");

        /* A good image passes every check: 202 where KVM can boot it, else 503 kvm_unavailable
         * (the file checks come first, so either way they were passed). */
        bool kvm = access("/dev/kvm", F_OK) == 0;
        snprintf(img, sizeof(img), "%s/good", root);
        post_image(&d, img, false, &r);
        CHECK(kvm ? r.status == 202 : (r.status == 503 && !strcmp(err_code(&r), "kvm_unavailable")),
              "a good image as root: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        post_image(&d, img, true, &r);
        CHECK(kvm ? r.status == 202 : (r.status == 503 && !strcmp(err_code(&r), "kvm_unavailable")),
              "a good image as nobody: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);

        /* Function directories the daemon builds first, as the client: one the client may not
         * read is refused in the same words as any unreadable image, nothing built; one it may
         * read but not write fails where the build writes, which root's rights would not; a
         * missing module is named. */
        char fns[1200];
        snprintf(fns, sizeof(fns), "%s/tests/python/functions", SPROUT_SOURCE_DIR);
        setenv("F", fns, 1);
        sh("set -e; cd \"$R\"; cp -r \"$F\"/yaml-orders fn-secret; cp -r \"$F\"/yaml-orders fn-ro; "
           "cp -r \"$F\"/missing-module fn-missing; chmod 0700 fn-secret; chmod -R a+rX,go-w "
           "fn-ro; "
           "chmod -R a+rwX fn-missing");
        char built[1300];
        snprintf(img, sizeof(img), "%s/fn-secret", root);
        snprintf(built, sizeof(built), "%s/fn-secret/.sprout-image", root);
        post_image(&d, img, true, &r);
        CHECK(r.status == 400 && strstr(err_msg(&r), "you may read beneath an image root") &&
                  !strstr(err_msg(&r), "handler") && !file_exists(built),
              "uid 65534 naming a root-only function directory: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        snprintf(img, sizeof(img), "%s/fn-ro", root);
        post_image(&d, img, true, &r);
        snprintf(built, sizeof(built), "%s/fn-ro/.sprout-image", root);
        CHECK(r.status == 400 && strstr(err_msg(&r), "ermission denied") && !file_exists(built),
              "uid 65534 building a function directory it may not write: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        snprintf(img, sizeof(img), "%s/fn-missing", root);
        post_image(&d, img, true, &r);
        CHECK(r.status == 400 && strstr(err_msg(&r), "sprout_no_such_module_xyz"),
              "a function importing a module nobody has, built as uid 65534: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);

        /* The attack: an initrd that is a symlink to a root-only file. Refused for root too. */
        static const struct {
                const char *dir, *why;
        } refused[] = {
            {"evil", "initrd symlink to /etc/shadow"},
            {"fifo", "initrd is a FIFO"},
            {"noinit", "initrd absent"},
            {"kernel", "kernel outside the roots (/etc/shadow)"},
            {"linkdir", "image directory is a symlink"},
            {"../../etc", "a path climbing out of the root"},
            {"nope", "no such image"},
        };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                snprintf(img, sizeof(img), "%s/%s", root, refused[i].dir);
                int64_t t0 = sprout_mono_ns();
                post_image(&d, img, false, &r);
                CHECK_ERR(r, 400, "invalid_field", "not found, or not");
                CHECK(!strstr(r.body ? r.body : "", "root:"), "%s: the reply quotes the file",
                      refused[i].why);
                CHECK(sprout_mono_ns() - t0 < 5000000000LL, "%s: took %.1f s", refused[i].why,
                      (double)(sprout_mono_ns() - t0) / 1e9);
                reply_free(&r);
        }
        /* The API still answers after the FIFO. */
        http_json(&d, "GET", "/v1/health", NULL, &r);
        CHECK(r.status == 200, "health after the FIFO image: %ld", r.status);
        reply_free(&r);

        /* Readable by root but not by the client: the client is refused, with exactly the words
         * an absent file gets, so the answer does not tell that the file exists. */
        snprintf(img, sizeof(img), "%s/priv", root);
        post_image(&d, img, true, &r);
        CHECK_ERR(r, 400, "invalid_field", "initrd");
        snprintf(img, sizeof(img), "%s/noinit", root);
        post_image(&d, img, true, &r2);
        CHECK(r2.status == 400 && !strcmp(after_manifest(&r), after_manifest(&r2)),
              "unreadable and absent differ: '%s' vs '%s'", err_msg(&r), err_msg(&r2));
        reply_free(&r);
        reply_free(&r2);
        snprintf(img, sizeof(img), "%s/priv", root);
        post_image(&d, img, false, &r);
        CHECK(kvm ? r.status == 202 : r.status == 503, "the same image as root: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);

        /* A request may lower the daemon's limits, never raise them. */
        snprintf(img, sizeof(img), "{\"image\":\"%s/good\",\"timeout_s\":86400}", root);
        http_json(&d, "POST", "/v1/snapshots", img, &r);
        CHECK_ERR(r, 400, "invalid_field", "'timeout_s' may be at most 300");
        reply_free(&r);
        snprintf(img, sizeof(img), "{\"image\":\"%s/good\",\"zstd_level\":19}", root);
        http_json(&d, "POST", "/v1/snapshots", img, &r);
        CHECK_ERR(r, 400, "invalid_field", "'zstd_level' may be at most 9");
        reply_free(&r);

        /* A manifest whose text is a secret: the parse error names line and column, not it. */
        snprintf(img, sizeof(img), "%s/secret", root);
        post_image(&d, img, true, &r);
        CHECK_ERR(r, 400, "invalid_field", "invalid JSON");
        CHECK(!strstr(r.body ? r.body : "", "AKIA"), "the reply quotes the file: %s",
              r.body ? r.body : "");
        reply_free(&r);

        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");

        /* One client's open connections are bounded; another client is not held back by them. */
        struct daemon cd;
        make_state(&cd, "files-conns");
        snprintf(cd.sock, sizeof(cd.sock), "%s/conns.sock", root);
        const char *cflags[] = {"--max-connections-per-client", "2", "--socket-group", "nogroup",
                                NULL};
        REQUIRE(daemon_start(&cd, cflags) == 0, "sproutd (connection limit) did not start");
        REQUIRE(chmod(cd.sock, 0660) == 0, "socket mode");
        int held[2] = {keepalive_open(&cd), keepalive_open(&cd)};
        CHECK(held[0] >= 0 && held[1] >= 0, "two connections held open");
        /* Once the daemon has taken both, a third connection of this client is one too many. */
        long st429 = 0;
        for (int i = 0; i < 250 && st429 != 429; i++) {
                http_json(&cd, "GET", "/v1/health", NULL, &r);
                st429 = r.status;
                if (st429 == 429)
                        CHECK_ERR(r, 429, "too_many_connections", "--max-connections-per-client");
                reply_free(&r);
                if (st429 != 429)
                        usleep(20000);
        }
        CHECK(st429 == 429, "a third connection of one client was served (%ld)", st429);
        snprintf(img, sizeof(img), "%s/good", root);
        struct reply rn;
        post_image(&cd, "/x-not-beneath-a-root", true, &rn);
        CHECK(rn.status == 400, "another client (uid 65534) is served meanwhile: %ld %s", rn.status,
              rn.body ? rn.body : "");
        reply_free(&rn);
        close(held[0]);
        long st200 = 0;
        for (int i = 0; i < 250 && st200 != 200; i++) {
                http_json(&cd, "GET", "/v1/health", NULL, &r);
                st200 = r.status;
                reply_free(&r);
                if (st200 != 200)
                        usleep(20000);
        }
        CHECK(st200 == 200, "after one closed, the client is served again (%ld)", st200);
        close(held[1]);
        CHECK(daemon_stop(&cd, SIGTERM, 30) == 0, "sproutd (connection limit) did not stop");

        /* A state directory others may write to, or a socket in a directory others may write to
         * (not sticky), is refused at start: either could be swapped under the daemon. */
        struct daemon bad;
        make_state(&bad, "files-open-state");
        REQUIRE(chmod(bad.state, 0777) == 0, "chmod %s", bad.state);
        int st = daemon_run_expect_exit(&bad, NULL, 15);
        char *log = NULL;
        char cmd[2100];
        snprintf(cmd, sizeof(cmd), "cat '%s'", bad.log);
        run(cmd, &log);
        CHECK(st == 1 && log && strstr(log, "writable by others"),
              "a 0777 state directory: exit %d, log '%s'", st, log ? log : "");
        free(log);
        make_state(&bad, "files-open-sock");
        sh("mkdir -p \"$R\"/open && chmod 0777 \"$R\"/open");
        snprintf(bad.sock, sizeof(bad.sock), "%s/open/api.sock", root);
        st = daemon_run_expect_exit(&bad, NULL, 15);
        snprintf(cmd, sizeof(cmd), "cat '%s'", bad.log);
        log = NULL;
        run(cmd, &log);
        CHECK(st == 1 && log && strstr(log, "socket's directory"),
              "a socket in a 0777 directory: exit %d, log '%s'", st, log ? log : "");
        free(log);
        sh("rm -rf \"$R\"");
}

/* The id of the first clone a POST /v1/clones answered, or "". */
static void first_clone_id(const struct reply *r, char out[40])
{
        const char *id = jstr(json_array_get(json_object_get(r->json, "clones"), 0), "id");
        snprintf(out, 40, "%s", id ? id : "");
}

/* A prewarm of image as uid 65534: its status (the reply printed unless 202), and the new
 * snapshot's id into id ("" if none). */
static long post_image_id(const struct daemon *d, const char *image, char id[40])
{
        struct reply r;
        post_image(d, image, true, &r);
        const char *s = jstr(r.json, "id");
        snprintf(id, 40, "%s", s ? s : "");
        long st = r.status;
        if (st != 202)
                fprintf(stderr, "prewarm of %s: %ld %s\n", image, st, r.body ? r.body : "");
        reply_free(&r);
        return st;
}

/* As uid 65534: two clones of id are made (the first's id into c0, when given), and a third is
 * refused with 429 quota_exceeded naming flag. */
static void two_then_refused(struct daemon *d, const char *id, const char *flag, char c0[40])
{
        struct reply r;
        char body[160], first[40] = "";
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":2}", id);
        http_as(d, true, "POST", "/v1/clones", body, &r);
        first_clone_id(&r, first);
        CHECK(r.status == 201 && is_uuid(first), "2 clones within the quota (%s): %ld %s", flag,
              r.status, r.body ? r.body : "");
        reply_free(&r);
        if (c0)
                memcpy(c0, first, sizeof(first));
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        http_as(d, true, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 429 && !strcmp(err_code(&r), "quota_exceeded") &&
                  strstr(err_msg(&r), flag),
              "a third clone past %s: %ld %s", flag, r.status, r.body ? r.body : "");
        reply_free(&r);
}

/* sproutd for the tenant's client (the socket group's) with a ready pool of pool_ready, the
 * guest-memory quota mem and, unless NULL, the disk quota disk (MiB). */
static void start_quota_daemon(struct daemon *d, const char *root, const char *pool_ready,
                               const char *mem, const char *disk)
{
        const char *flags[] = {"--image-roots",
                               root,
                               "--socket-group",
                               "nogroup",
                               "--pool-ready",
                               pool_ready,
                               "--tenant-max-guest-memory-mib",
                               mem,
                               disk ? "--tenant-max-disk-mib" : NULL,
                               disk,
                               NULL};
        REQUIRE(daemon_start(d, flags) == 0, "sproutd did not start with the quotas");
        REQUIRE(chmod(d->sock, 0660) == 0, "socket mode");
}

/* Guest memory and disk per tenant: with room for two clones' whole RAM (and the base), a third
 * is refused; with room for one more snapshot file than it has, a prewarm is admitted, its file
 * written, found over the quota, removed, and the snapshot failed naming the quota; a worker's
 * ready clones count against the memory. */
static void quota_memory_disk(const char *root)
{
        struct daemon d;
        struct reply r;
        char path[1200], mem[32], disk[32];
        make_state(&d, "quota-mem");
        const char *fixture = add_fixture_snapshot(&d);
        REQUIRE(fixture != NULL, "the fixture snapshot");
        char id[40];
        snprintf(id, sizeof(id), "%s", fixture);
        snprintf(path, sizeof(path), "echo %d > '%s/snapshots/%s.owner'", NOBODY, d.state, id);
        REQUIRE(system(path) == 0, "set-up: %s", path);
        snprintf(d.sock, sizeof(d.sock), "%s/api3.sock", root);
        const char *plain[] = {"--image-roots", root, "--socket-group", "nogroup", NULL};
        REQUIRE(daemon_start(&d, plain) == 0, "sproutd did not start");
        get_snapshot(&d, id, &r);
        long long ram = jint(r.json, "ram_bytes"), nonzero = jint(r.json, "nonzero_bytes"),
                  file = jint(r.json, "file_bytes");
        reply_free(&r);
        REQUIRE(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop");
        REQUIRE(ram >= (1 << 20) && file >= (2 << 20), "the snapshot's sizes: %lld RAM, %lld file",
                ram, file);
        snprintf(mem, sizeof(mem), "%lld", (nonzero + 2 * ram + (1 << 20) - 1) >> 20);
        snprintf(disk, sizeof(disk), "%lld", (file >> 20) + 1);
        start_quota_daemon(&d, root, "0", mem, disk);
        two_then_refused(&d, id, "--tenant-max-guest-memory-mib", NULL);

        snprintf(path, sizeof(path), "%s/hello", root);
        char p[40];
        CHECK(post_image_id(&d, path, p) == 202, "a prewarm while under the disk quota");
        static const char *const done[] = {"ready", "failed", NULL};
        const char *st = p[0] ? wait_status(&d, p, done, 600) : "";
        get_snapshot(&d, p, &r);
        CHECK(!strcmp(st, "failed") && strstr(jstr(r.json, "error"), "--tenant-max-disk-mib"),
              "a snapshot past the disk quota: %s %s", st, r.body ? r.body : "");
        reply_free(&r);
        struct stat sb;
        snprintf(path, sizeof(path), "%s/snapshots/%s.snap", d.state, p);
        CHECK(stat(path, &sb) < 0 && errno == ENOENT, "%s is still on disk", path);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "sproutd did not stop cleanly");

        /* The ready clones a worker keeps for the tenant count as its clones do: room for four
         * clones' RAM is the two asked for and the two ready ones the worker reserves with them
         * (without that count, a third and a fourth would fit). */
        snprintf(mem, sizeof(mem), "%lld", (nonzero + 4 * ram + (1 << 20) - 1) >> 20);
        start_quota_daemon(&d, root, "2", mem, NULL);
        two_then_refused(&d, id, "--tenant-max-guest-memory-mib", NULL);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "sproutd did not stop cleanly");
}

/* Per-tenant quotas: a tenant's clones (of its snapshots, whoever asks), its snapshots and its
 * prewarms in flight stop at its quota with 429 quota_exceeded naming it; root is not limited;
 * freeing a clone makes room again. The tenant is a real unprivileged client (uid 65534). */
static void case_quota(void)
{
        struct daemon d;
        struct reply r;
        char root[64] = "/tmp/sprout-quota-XXXXXX", body[256], path[1200];
        REQUIRE(mkdtemp(root) != NULL, "mkdtemp: %s", strerror(errno));
        REQUIRE(chmod(root, 0755) == 0, "chmod %s", root);
        make_state(&d, "quota");
        const char *id = add_fixture_snapshot(&d);
        REQUIRE(id != NULL, "the fixture snapshot");
        /* The fixture snapshot is the tenant's, as if its prewarm had made it. */
        snprintf(path, sizeof(path),
                 "echo %d > '%s/snapshots/%s.owner' && cp -r '%s/hello' '%s/' "
                 "&& chmod -R a+rX '%s/hello'",
                 NOBODY, d.state, id, t_images, root, root);
        REQUIRE(system(path) == 0, "set-up: %s", path);
        snprintf(d.sock, sizeof(d.sock), "%s/api.sock", root);
        const char *flags[] = {"--image-roots",
                               root,
                               "--socket-group",
                               "nogroup",
                               "--pool-ready",
                               "0",
                               "--tenant-max-clones",
                               "2",
                               "--tenant-max-snapshots",
                               "1",
                               NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        REQUIRE(chmod(d.sock, 0660) == 0, "socket mode");

        char c0[40];
        two_then_refused(&d, id, "--tenant-max-clones", c0);
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        /* Its snapshots' clones count whoever asks for them; a one-shot call needs one too. */
        http_json(&d, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 429 && !strcmp(err_code(&r), "quota_exceeded"),
              "root cloning the tenant's snapshot: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        http_as(&d, true, "POST", path, "{}", &r);
        CHECK(r.status == 429 && !strcmp(err_code(&r), "quota_exceeded"),
              "a one-shot call at the quota: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        /* Its one snapshot is its quota of snapshots: a prewarm is refused before it boots. */
        snprintf(path, sizeof(path), "%s/hello", root);
        post_image(&d, path, true, &r);
        CHECK(r.status == 429 && !strcmp(err_code(&r), "quota_exceeded") &&
                  strstr(err_msg(&r), "--tenant-max-snapshots"),
              "a second snapshot: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        /* Freeing a clone makes room, once the reaper has torn it down. */
        snprintf(path, sizeof(path), "/v1/clones/%s", c0);
        http_as(&d, true, "DELETE", path, NULL, &r);
        CHECK(r.status == 200, "delete a clone: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        long status = 0;
        for (int i = 0; i < 100 && status != 201; i++) {
                http_as(&d, true, "POST", "/v1/clones", body, &r);
                status = r.status;
                reply_free(&r);
                if (status != 201)
                        usleep(100000);
        }
        CHECK(status == 201, "a clone after one was deleted: %ld", status);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");

        /* Prewarms in flight: the second is refused while the first runs. */
        struct daemon d2;
        make_state(&d2, "quota-prewarm");
        snprintf(d2.sock, sizeof(d2.sock), "%s/api2.sock", root);
        const char *flags2[] = {
            "--image-roots", root, "--socket-group", "nogroup", "--tenant-max-prewarms", "1", NULL};
        REQUIRE(daemon_start(&d2, flags2) == 0, "sproutd did not start");
        REQUIRE(chmod(d2.sock, 0660) == 0, "socket mode");
        snprintf(path, sizeof(path), "%s/hello", root);
        char p1[40];
        CHECK(post_image_id(&d2, path, p1) == 202, "the tenant's first prewarm");
        post_image(&d2, path, true, &r);
        bool first_done = false;
        if (r.status == 202) { /* only if the first had finished already: say so */
                get_snapshot(&d2, p1, &r);
                first_done = !strcmp(jstr(r.json, "status"), "ready");
        }
        CHECK((r.status == 429 && !strcmp(err_code(&r), "quota_exceeded") &&
               strstr(err_msg(&r), "--tenant-max-prewarms")) ||
                  first_done,
              "a second prewarm in flight: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        post_image(&d2, path, false, &r);
        CHECK(r.status == 202, "root is not limited: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d2, SIGTERM, 60) == 0, "sproutd did not stop cleanly");
        quota_memory_disk(root);
        snprintf(path, sizeof(path), "rm -rf '%s'", root);
        (void)system(path);
}

/* --clones-per-worker 0: every clone in sproutd itself (no workers), through the same API. */
static void case_inproc(void)
{
        struct daemon d;
        struct reply r;
        char body[256], c[40] = "";
        make_state(&d, "inproc");
        const char *id = add_fixture_snapshot(&d);
        const char *flags[] = {"--clones-per-worker", "0", "--pool-ready", "0", NULL};
        if (!id || daemon_start(&d, flags) < 0) {
                CHECK(0, "set-up failed");
                return;
        }
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        http_json(&d, "POST", "/v1/clones", body, &r);
        first_clone_id(&r, c);
        CHECK(r.status == 201 && is_uuid(c), "create a clone: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        CHECK(metric(&d, "sprout_worker_processes") == 0, "a worker process holds the clone");
        if (is_uuid(c))
                check_invoke_log(&d, c, 1, "in sproutd");
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");
}

/* Fresh one-shots through a daemon that recycles (docs/architecture.md, "Recycling"): each answers
 * as a clone that has served nothing, with its own id and randomness, and /metrics shows recycled
 * clones handed out, in workers and in sproutd; with --recycle 0 none is. */
static void recycle_run(const char *name, const char *const *flags, bool recycles, char ids[][40],
                        char rnd[][40], int *n)
{
        enum { CALLS = 8 };
        struct daemon d;
        struct reply r;
        char path[256], want[64];
        make_state(&d, name);
        const char *id = add_fixture_snapshot(&d);
        if (!id || daemon_start(&d, flags) < 0) {
                CHECK(0, "%s: set-up failed", name);
                return;
        }
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        /* The first call loads the snapshot, so it finds no pool yet: one miss. */
        http_json(&d, "POST", path, "{}", &r);
        CHECK(r.status == 200, "%s: the first call: %ld %s", name, r.status, r.body ? r.body : "");
        reply_free(&r);
        for (int i = 0; i < CALLS; i++) {
                /* The last call's clone handed back and a full pool each time: every call takes a
                 * ready clone, so the counts below are exact rather than a matter of timing. */
                double until = sprout_mono_s() + 60;
                while (metric(&d, "sprout_clones_dying") != 0 && sprout_mono_s() < until)
                        usleep(10000);
                CHECK(wait_ready(&d, id, 2, 60) == 2, "%s: the pool did not refill before call %d",
                      name, i);
                http_json(&d, "POST", path, "{\"identity\":1}", &r);
                const char *rn = r.body ? strstr(r.body, "\"random\":\"") : NULL;
                snprintf(want, sizeof(want), "\"clone\":\"%s\"", r.clone_id);
                CHECK(r.status == 200 && r.body && strstr(r.body, "\"seq\":1") &&
                          is_uuid(r.clone_id) && strstr(r.body, want) && rn,
                      "%s: call %d: %ld %s", name, i, r.status, r.body ? r.body : "");
                snprintf(ids[*n], 40, "%s", r.clone_id);
                snprintf(rnd[*n], 40, "%.32s", rn ? rn + 10 : "");
                for (int j = 0; j < *n; j++) {
                        CHECK(strcmp(ids[j], ids[*n]) != 0, "%s: call %d reused clone id %s", name,
                              i, ids[j]);
                        CHECK(strcmp(rnd[j], rnd[*n]) != 0, "%s: call %d repeated random %s", name,
                              i, rnd[j]);
                }
                (*n)++;
                reply_free(&r);
        }
        long long taken = metric(&d, "sprout_ready_clones_taken_total");
        long long recycled = metric(&d, "sprout_recycled_clones_taken_total");
        long long missed = metric(&d, "sprout_ready_pool_misses_total");
        printf("%s: %lld ready clones taken, %lld of them recycled, %lld misses\n", name, taken,
               recycled, missed);
        CHECK(taken == CALLS && missed == 1, "%s: %lld taken from the pool, %lld misses", name,
              taken, missed);
        /* At most the pool's first two clones were made before any came back; every later one
         * was recycled from an earlier call's. */
        if (recycles)
                CHECK(recycled >= CALLS - 2 && recycled <= CALLS,
                      "%s: only %lld of %d fresh clones were recycled", name, recycled, CALLS);
        else
                CHECK(recycled == 0, "%s: %lld recycled with --recycle 0", name, recycled);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "%s: sproutd did not stop cleanly", name);
}

static void case_recycle(void)
{
        static char ids[24][40], rnd[24][40];
        int n = 0;
        const char *workers[] = {"--pool-ready", "2", NULL};
        const char *inproc[] = {"--pool-ready", "2", "--clones-per-worker", "0", NULL};
        const char *off[] = {"--pool-ready", "2", "--recycle", "0", NULL};
        recycle_run("recycle-workers", workers, true, ids, rnd, &n);
        recycle_run("recycle-inproc", inproc, true, ids, rnd, &n);
        recycle_run("recycle-off", off, false, ids, rnd, &n);
}

/* A user's function directory to an answered invocation: `sprout deploy DIR`, then one
 * `sprout invoke` (the README's path). The function is tests/python/functions/yaml-orders: its own
 * module, Debian's python3-yaml, uuid and secrets, an error on bad input. */
static void case_deploy(void)
{
        struct daemon d;
        struct reply r;
        char args[3000], fn[1024], *out = NULL;
        make_state(&d, "deploy");
        char root[1000];
        snprintf(root, sizeof(root), "%s/images", d.state);
        REQUIRE(mkdir(root, 0755) == 0, "mkdir %s: %s", root, strerror(errno));
        /* The Python image takes minutes to boot on a PVM host: a limit above the default's. */
        const char *flags[] = {"--image-roots", root, "--prewarm-timeout-s", "900", NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        snprintf(fn, sizeof(fn), "%s/tests/python/functions/yaml-orders", SPROUT_SOURCE_DIR);
        /* Built beneath the daemon's image root by choosing it from GET /v1/health. */
        snprintf(args, sizeof(args), "deploy '%s' --timeout 900", fn);
        int rc = cli(&d, args, &out);
        char id[64] = "";
        if (out)
                snprintf(id, sizeof(id), "%.36s", out);
        CHECK(rc == 0 && is_uuid(id), "sprout deploy: rc %d '%s'", rc, out ? out : "");
        free(out);
        REQUIRE(is_uuid(id), "no snapshot to invoke");
        snprintf(args, sizeof(args),
                 "invoke --snapshot %s '{\"order\": \"items:\\n  - {qty: 2, cents: 150}\\n  "
                 "- {qty: 1, cents: 999}\\ncoupon: TENOFF\\n\"}'",
                 id);
        rc = cli(&d, args, &out);
        json_t *j = out ? json_loads(out, 0, NULL) : NULL;
        json_t *res = json_object_get(j, "result");
        CHECK(rc == 0 && json_is_true(json_object_get(j, "ok")) &&
                  json_integer_value(json_object_get(res, "total")) == 1170 &&
                  is_uuid(json_string_value(json_object_get(res, "order_id"))),
              "sprout invoke of the deployed function: rc %d '%s'", rc, out ? out : "");
        json_decref(j);
        free(out);
        /* OpenSSL's generator is the clone's own: two fresh clones draw different bytes. */
        char tok[2][40] = {"", ""};
        for (int k = 0; k < 2; k++) {
                snprintf(args, sizeof(args),
                         "invoke --snapshot %s '{\"order\": \"items: [{qty: 1, cents: 1}]\"}'", id);
                rc = cli(&d, args, &out);
                j = out ? json_loads(out, 0, NULL) : NULL;
                const char *t =
                    json_string_value(json_object_get(json_object_get(j, "result"), "ssl_token"));
                snprintf(tok[k], sizeof(tok[k]), "%s", t ? t : "");
                json_decref(j);
                free(out);
        }
        CHECK(strlen(tok[0]) == 16 && strlen(tok[1]) == 16 && strcmp(tok[0], tok[1]),
              "ssl.RAND_bytes in two fresh clones: '%s' '%s'", tok[0], tok[1]);
        /* What the handler printed: in the response, and with --log the call's own log. */
        snprintf(args, sizeof(args),
                 "invoke --snapshot %s --log --json '{\"order\": \"items: [{qty: 1, cents: 5}]\"}'",
                 id);
        rc = cli(&d, args, &out);
        j = out ? json_loads(out, 0, NULL) : NULL;
        const char *log = json_string_value(json_object_get(j, "log"));
        json_t *resp = json_object_get(j, "response");
        CHECK(rc == 0 && log && !strcmp(log, "[guest] yaml-orders: pricing 1 items\n") &&
                  json_is_false(json_object_get(j, "log_lost")) &&
                  !strcmp(json_string_value(json_object_get(resp, "stdout")) ?: "",
                          "yaml-orders: pricing 1 items\n") &&
                  json_integer_value(json_object_get(json_object_get(resp, "result"), "total")) ==
                      5,
              "sprout invoke --log: rc %d '%s'", rc, out ? out : "");
        json_decref(j);
        free(out);
        snprintf(args, sizeof(args), "invoke --snapshot %s '{\"order\": 7}'", id);
        rc = cli(&d, args, &out);
        CHECK(out && strstr(out, "\"ok\":false") && strstr(out, "ValueError"),
              "a bad event is the handler's error: rc %d '%s'", rc, out ? out : "");
        free(out);

        /* The API alone: POST /v1/snapshots naming the function directory builds it first, as the
         * client, into its .sprout-image, then prewarms that. */
        char src[1200], path[1300];
        snprintf(args, sizeof(args), "cp -r '%s' '%s/src-orders'", fn, root);
        REQUIRE(system(args) == 0, "copying the functions: %s", args);
        snprintf(src, sizeof(src), "%s/src-orders", root);
        post_image(&d, src, false, &r);
        char id2[64] = "";
        if (jstr(r.json, "id"))
                snprintf(id2, sizeof(id2), "%s", jstr(r.json, "id"));
        CHECK(r.status == 202 && is_uuid(id2), "POST /v1/snapshots of a function directory: %ld %s",
              r.status, r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "%s/.sprout-image/manifest.json", src);
        CHECK(file_exists(path), "the daemon built the function into %s", path);
        const char *st2 = "";
        for (int i = 0; i < 9000 && is_uuid(id2); i++) {
                get_snapshot(&d, id2, &r);
                st2 = jstr(r.json, "status");
                bool done =
                    strcmp(st2, "queued") && strcmp(st2, "booting") && strcmp(st2, "snapshotting");
                if (done)
                        break;
                reply_free(&r);
                usleep(100000);
        }
        CHECK(!strcmp(st2, "ready"), "the built function's prewarm: %s", r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id2);
        http_json(&d, "POST", path, "{\"order\": \"items: [{qty: 3, cents: 7}]\"}", &r);
        CHECK(r.status == 200 && r.body && strstr(r.body, "\"total\":21"),
              "the function built by the daemon answers: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");
}

/* ---- snapshot keys: what the daemon lists when files are dropped in or edited (no VM) ---- */

/* A snapshot as a foreign host would write it: no key, 2 MiB of RAM, one vCPU, a manifest. */
static int write_foreign(const char *path, uint8_t uuid[16])
{
        static const char manifest[] = "{\"name\":\"foreign\"}";
        size_t ram_size = 2u << 20;
        uint8_t *ram = calloc(1, ram_size);
        if (!ram)
                return -ENOMEM;
        for (size_t i = 0; i < ram_size; i += 4096)
                snprintf((char *)ram + i, 64, "page %zu", i / 4096);
        struct snap_section sec = {
            .tag = SPROUT_SEC_MANIFEST, .data = manifest, .len = sizeof(manifest) - 1};
        struct snap_write_opts o = {
            .path = path,
            .host = {.cpu_vendor = "GenuineIntel"},
            .vcpus = 1,
            .sections = &sec,
            .nsections = 1,
            .ram = ram,
            .ram_size = ram_size,
        };
        struct sprout_err err = {0};
        int r = snap_write(&o, NULL, &err);
        free(ram);
        struct snap_file *f;
        if (r == 0 && (r = snap_open(path, &f, &err)) == 0) {
                memcpy(uuid, snap_get_info(f)->uuid, 16);
                snap_close(f);
        }
        if (r < 0)
                fprintf(stderr, "write_foreign: %s\n", err.msg);
        return r;
}

/* The forger's edit of a file: fn changes the header or the sections, then every XXH3 that covers
 * them is recomputed, as anyone can. */
static int forge(const char *from, const char *to, void (*fn)(struct snap_fmt_header *, uint8_t *))
{
        FILE *f = fopen(from, "rb");
        if (!f)
                return -1;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        uint8_t *b = malloc((size_t)n);
        bool ok = b && fread(b, 1, (size_t)n, f) == (size_t)n;
        fclose(f);
        if (ok) {
                struct snap_fmt_header *h = (struct snap_fmt_header *)b;
                fn(h, b + h->sections_off);
                h->header_checksum = snapfmt_header_hash(h, b + h->sections_off, h->sections_len);
                f = fopen(to, "wb");
                ok = f && fwrite(b, 1, (size_t)n, f) == (size_t)n;
                if (f)
                        ok = fclose(f) == 0 && ok;
        }
        free(b);
        return ok ? 0 : -1;
}

static void new_uuid(struct snap_fmt_header *h, uint8_t *sections)
{
        (void)sections;
        h->uuid[0] ^= 0xff;
}

static void rename_image(struct snap_fmt_header *h, uint8_t *sections)
{
        (void)h;
        sections[16 + 9] = 'F'; /* "foreign" -> "Foreign" in the manifest's data */
}

static char *log_of(const struct daemon *d)
{
        char cmd[1100], *out = NULL;
        snprintf(cmd, sizeof(cmd), "cat '%s'", d->log);
        run(cmd, &out);
        return out;
}

static size_t listed(const struct daemon *d, const char *id)
{
        struct reply r;
        http_json(d, "GET", "/v1/snapshots", NULL, &r);
        json_t *arr = json_object_get(r.json, "snapshots");
        size_t n = json_array_size(arr), found = 0;
        for (size_t i = 0; id && i < n; i++)
                if (!strcmp(jstr(json_array_get(arr, i), "id"), id))
                        found++;
        reply_free(&r);
        return id ? found : n;
}

static void case_keys(void)
{
        struct daemon d;
        char foreign[1200], dropped[1300], cmd[4000], id[40], key[1000], *out = NULL, *log;
        uint8_t uuid[16];
        struct stat st;

        make_state(&d, "keys");
        snprintf(foreign, sizeof(foreign), "%s/keys-foreign.snap", t_work);
        REQUIRE(write_foreign(foreign, uuid) == 0, "a foreign snapshot");
        uuid_unparse_lower(uuid, id);
        /* Dropped straight into the state directory: not listed, and the log says what to do. */
        snprintf(dropped, sizeof(dropped), "%s/snapshots/%s.snap", d.state, id);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", foreign, dropped);
        REQUIRE(system(cmd) == 0, "%s", cmd);
        REQUIRE(daemon_start(&d, NULL) == 0, "sproutd did not start");
        snprintf(key, sizeof(key), "%s/snapshot.key", d.state);
        CHECK(lstat(key, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600 &&
                  st.st_size == 32 && st.st_uid == geteuid(),
              "the first start made a 0600, 32-byte snapshot key");
        CHECK(listed(&d, NULL) == 0, "an unauthenticated file is not listed");
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "SIGTERM");
        log = log_of(&d);
        CHECK(log && strstr(log, "not written by this daemon (no authenticator); import it first"),
              "the log says why: %s", log ? log : "");
        free(log);

        /* The import: checked, then written under the daemon's key; listed at the next start. The
         * unusable file in the state directory is the one imported: upgraded in place. */
        snprintf(cmd, sizeof(cmd), "'%s' import '%s' --state-dir '%s'", t_sprout, dropped, d.state);
        int rc = run(cmd, &out);
        CHECK(rc == 0 && out && strstr(out, id) && strstr(out, "replacing"),
              "sprout import in place: exit %d, '%s'", rc, out ? out : "");
        free(out);
        /* Now the state directory has it: importing the foreign original again is refused. */
        snprintf(cmd, sizeof(cmd), "'%s' import '%s' --state-dir '%s' 2>&1", t_sprout, foreign,
                 d.state);
        rc = run(cmd, &out);
        CHECK(rc != 0 && out && strstr(out, "is already in"),
              "a second import of the same snapshot is refused: exit %d '%s'", rc, out ? out : "");
        free(out);
        /* A copy with another UUID, the header re-sealed: a header edit. */
        char edited[1300];
        snprintf(edited, sizeof(edited), "%s/snapshots/edited.snap", d.state);
        REQUIRE(forge(dropped, edited, new_uuid) == 0, "forging %s", edited);
        REQUIRE(daemon_start(&d, NULL) == 0, "sproutd did not restart");
        CHECK(listed(&d, NULL) == 1 && listed(&d, id) == 1,
              "only the imported snapshot is listed, not the edited copy");
        struct reply r;
        char path[100];
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && !strcmp(jstr(r.json, "status"), "ready") &&
                  !strcmp(jstr(r.json, "image"), "foreign"),
              "the import is ready: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "SIGTERM");
        log = log_of(&d);
        CHECK(log && strstr(log, "edited.snap: header tag mismatch"), "the log names the edit: %s",
              log ? log : "");
        free(log);

        /* The imported file itself edited in place: a section byte, re-sealed. */
        unlink(edited);
        REQUIRE(forge(dropped, dropped, rename_image) == 0, "forging %s", dropped);
        REQUIRE(daemon_start(&d, NULL) == 0, "sproutd did not restart");
        CHECK(listed(&d, NULL) == 0, "the edited snapshot is no longer listed");
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "SIGTERM");
        log = log_of(&d);
        CHECK(log && strstr(log, "sections tag mismatch"), "the log names the edit: %s",
              log ? log : "");
        free(log);

        /* A key others could read is refused: sproutd will not start on it. */
        REQUIRE(chmod(key, 0644) == 0, "chmod %s", key);
        rc = daemon_run_expect_exit(&d, NULL, 15);
        log = log_of(&d);
        CHECK(rc == 1 && log && strstr(log, "mode 0644"), "a 0644 key: exit %d, log '%s'", rc,
              log ? log : "");
        free(log);
        unlink(foreign);
}

/* ---- tenants: a client sees and acts on its own snapshots only (no VM) ---- */

/* Snapshot id of a foreign file written by write_foreign, imported into d's state directory. */
static bool import_foreign(const struct daemon *d, const char *tmp, const char *name, char *id)
{
        char path[1200], cmd[3000];
        uint8_t uuid[16];
        snprintf(path, sizeof(path), "%s/%s.snap", tmp, name);
        if (write_foreign(path, uuid) < 0)
                return false;
        uuid_unparse_lower(uuid, id);
        snprintf(cmd, sizeof(cmd), "'%s' import '%s' --state-dir '%s' >/dev/null 2>&1", t_sprout,
                 path, d->state);
        return system(cmd) == 0;
}

static bool lists_snapshot(const struct reply *r, const char *id)
{
        json_t *arr = json_object_get(r->json, "snapshots"), *v;
        size_t i;
        json_array_foreach(arr, i, v) if (!strcmp(jstr(v, "id"), id)) return true;
        return false;
}

static void case_tenants(void)
{
        struct daemon d;
        struct reply r;
        char tmp[64] = "/tmp/sprout-tenants-XXXXXX", mine[40], roots[40], path[1200];
        REQUIRE(mkdtemp(tmp) != NULL, "mkdtemp: %s", strerror(errno));
        REQUIRE(chmod(tmp, 0755) == 0, "chmod %s", tmp);
        make_state(&d, "tenants");
        snprintf(d.sock, sizeof(d.sock), "%s/api.sock", tmp);
        const char *flags[] = {"--socket-group", "nogroup", NULL};
        /* A first start makes the state directory's key, which import signs with. */
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        REQUIRE(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop");
        REQUIRE(import_foreign(&d, tmp, "a", mine) && import_foreign(&d, tmp, "b", roots),
                "two snapshots imported");
        /* The daemon's record of who made a snapshot (owners.c); "b" has none: root's. */
        snprintf(path, sizeof(path), "%s/snapshots/%s.owner", d.state, mine);
        FILE *f = fopen(path, "w");
        REQUIRE(f && fprintf(f, "%d\n", NOBODY) > 0 && fclose(f) == 0, "writing %s", path);
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start again");
        REQUIRE(chmod(d.sock, 0660) == 0, "socket mode");

        list_as(&d, false, &r);
        CHECK(r.status == 200 && lists_snapshot(&r, mine) && lists_snapshot(&r, roots),
              "root sees both tenants' snapshots: %s", r.body ? r.body : "");
        reply_free(&r);
        list_as(&d, true, &r);
        CHECK(r.status == 200 && lists_snapshot(&r, mine) && !lists_snapshot(&r, roots),
              "uid 65534 sees its own snapshot only: %s", r.body ? r.body : "");
        /* Where the daemon keeps the file is not the tenant's to know; root is told. */
        CHECK(r.body && !strstr(r.body, "\"path\"") && !strstr(r.body, d.state),
              "a tenant's listing names no host path: %s", r.body ? r.body : "");
        reply_free(&r);
        list_as(&d, false, &r);
        CHECK(r.body && strstr(r.body, "\"path\""), "root's listing has the path: %s",
              r.body ? r.body : "");
        reply_free(&r);

        /* Another tenant's id answers exactly as an id that does not exist. */
        static const char absent[] = "00000000-0000-4000-8000-000000000000";
        static const struct {
                const char *method, *url_pre, *url_post; /* the id goes between, or none: NULL */
                const char *body_pre, *body_post;        /* likewise; body_pre NULL: no body */
        } acts[] = {
            {"GET", "/v1/snapshots/", "", NULL, NULL},
            {"DELETE", "/v1/snapshots/", "?force=true", NULL, NULL},
            {"POST", "/v1/snapshots/", "/invoke", "{}", NULL},
            {"POST", "/v1/clones", NULL, "{\"snapshot\":\"", "\"}"},
        };
        for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
                const char *ids[2] = {roots, absent};
                long st[2];
                char msg[2][300];
                for (int k = 0; k < 2; k++) {
                        char url[200], body[200];
                        snprintf(url, sizeof(url), "%s%s%s", acts[i].url_pre,
                                 acts[i].url_post ? ids[k] : "",
                                 acts[i].url_post ? acts[i].url_post : "");
                        if (acts[i].body_pre)
                                snprintf(body, sizeof(body), "%s%s%s", acts[i].body_pre,
                                         acts[i].body_post ? ids[k] : "",
                                         acts[i].body_post ? acts[i].body_post : "");
                        struct reply rr;
                        http_as(&d, true, acts[i].method, url, acts[i].body_pre ? body : NULL, &rr);
                        st[k] = rr.status;
                        /* The ids differ; the rest of the answer must not. */
                        char *m = strdup(err_msg(&rr)), *p;
                        while (m && (p = strstr(m, ids[k])))
                                memset(p, 'X', 36);
                        snprintf(msg[k], sizeof(msg[k]), "%s/%s", err_code(&rr), m ? m : "");
                        free(m);
                        reply_free(&rr);
                }
                CHECK(st[0] == 404 && st[1] == 404 && !strcmp(msg[0], msg[1]),
                      "%s %s... of root's snapshot as uid 65534: %ld '%s' (absent: %ld '%s')",
                      acts[i].method, acts[i].url_pre, st[0], msg[0], st[1], msg[1]);
        }
        /* A clone's log is a clone's: an unknown one is not found. */
        http_as(&d, true, "GET", "/v1/clones/00000000-0000-4000-8000-000000000000/log", NULL, &r);
        CHECK_ERR(r, 404, "clone_not_found", "no clone");
        reply_free(&r);
        list_as(&d, false, &r);
        CHECK(lists_snapshot(&r, roots), "root's snapshot survived the other tenant's DELETE");
        reply_free(&r);

        /* A tenant acts on its own: it deletes it, and the record of its owner goes too. */
        char url[200];
        snprintf(url, sizeof(url), "/v1/snapshots/%s", mine);
        http_as(&d, true, "DELETE", url, NULL, &r);
        CHECK(r.status == 200, "uid 65534 deletes its own snapshot: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        CHECK(access(path, F_OK) < 0, "the owner record %s outlived its snapshot", path);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");

        /* An admin group's members see every tenant's. */
        const char *aflags[] = {"--socket-group", "nogroup", "--admin-group", "nogroup", NULL};
        REQUIRE(daemon_start(&d, aflags) == 0, "sproutd (admin group) did not start");
        REQUIRE(chmod(d.sock, 0660) == 0, "socket mode");
        list_as(&d, true, &r);
        CHECK(r.status == 200 && lists_snapshot(&r, roots),
              "a member of --admin-group sees root's snapshot: %s", r.body ? r.body : "");
        reply_free(&r);
        CHECK(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop cleanly");
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        CHECK(system(cmd) == 0, "cleanup");
}

/* ---- workers: each tenant's clones in jailed processes of its own (docs/workers.md) ---- */

struct wpids {
        pid_t pid[16];
        unsigned tenant[16];
        size_t n;
};

/* The parent pid from /proc/PID/stat; -1 if it is gone. The command name may hold ')' and spaces,
 * so the fields are read after its last ')'. */
static pid_t proc_ppid(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
                fclose(f);
        buf[n] = '\0';
        char *e = strrchr(buf, ')');
        char state;
        int ppid;
        return e && sscanf(e + 1, " %c %d", &state, &ppid) == 2 ? (pid_t)ppid : -1;
}

/* The daemon's worker processes: its children running sprout-worker, and the tenant each serves
 * (from its --tenant argument). Found by each process's parent in /proc, not from the threads'
 * children lists, which may miss a child while others come and go (proc(5),
 * /proc/pid/task/tid/children). */
static void find_workers(const struct daemon *d, struct wpids *w)
{
        w->n = 0;
        char path[64], buf[4096];
        DIR *dir = opendir("/proc");
        for (struct dirent *e; dir && (e = readdir(dir)) && w->n < 16;) {
                pid_t pid = (pid_t)atoi(e->d_name);
                if (pid <= 0 || proc_ppid(pid) != d->pid)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
                FILE *c = fopen(path, "r");
                if (!c)
                        continue;
                size_t n = fread(buf, 1, sizeof(buf) - 1, c);
                fclose(c);
                buf[n] = '\0';
                if (strcmp(buf, "sprout-worker"))
                        continue;
                long tenant = -1;
                for (size_t i = 0; i + 1 < n; i += strlen(buf + i) + 1)
                        if (!strcmp(buf + i, "--tenant"))
                                tenant = atol(buf + i + strlen(buf + i) + 1);
                w->pid[w->n] = pid;
                w->tenant[w->n++] = (unsigned)tenant;
        }
        if (dir)
                closedir(dir);
}

/* Whether every thread of pid is stopped (state T), within timeout_s (0: now): kill() only queues a
 * SIGSTOP, and each thread stops on its own way out of the kernel. */
static bool wait_stopped(pid_t pid, double timeout_s)
{
        char dir_path[64], path[384], buf[512];
        snprintf(dir_path, sizeof(dir_path), "/proc/%d/task", (int)pid);
        for (double until = sprout_mono_s() + timeout_s;; usleep(10000)) {
                DIR *dir = opendir(dir_path);
                if (!dir)
                        return false;
                bool all = true, any = false;
                for (struct dirent *e; (e = readdir(dir));) {
                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s/stat", dir_path, e->d_name);
                        FILE *f = fopen(path, "r");
                        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
                        if (f)
                                fclose(f);
                        buf[n] = '\0';
                        char *p = strrchr(buf, ')');
                        any = true;
                        all = all && p && p[1] == ' ' && p[2] == 'T';
                }
                closedir(dir);
                if (any && all)
                        return true;
                if (sprout_mono_s() >= until)
                        return false;
        }
}

static size_t workers_of(const struct wpids *w, unsigned tenant, pid_t *first)
{
        size_t n = 0;
        for (size_t i = 0; i < w->n; i++)
                if (w->tenant[i] == tenant) {
                        if (!n && first)
                                *first = w->pid[i];
                        n++;
                }
        return n;
}

/* A field of /proc/PID/status ("Uid:", "Seccomp:", ...), the rest of its line; "" if absent. */
static const char *proc_status(pid_t pid, const char *field, char *buf, size_t len)
{
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        buf[0] = '\0';
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, field, strlen(field))) {
                        const char *v = line + strlen(field);
                        while (*v == ' ' || *v == '\t')
                                v++;
                        snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
                        break;
                }
        if (f)
                fclose(f);
        return buf;
}

static bool same_ns(pid_t a, pid_t b, const char *ns)
{
        char pa[64], pb[64], la[64] = "", lb[64] = "";
        snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", (int)a, ns);
        snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", (int)b, ns);
        ssize_t na = readlink(pa, la, sizeof(la) - 1), nb = readlink(pb, lb, sizeof(lb) - 1);
        return na > 0 && nb > 0 && na == nb && !memcmp(la, lb, (size_t)na);
}

/* The jail as the host sees it: its own uid, no capabilities, no_new_privs, seccomp, namespaces
 * of its own, and a root holding nothing but /proc. */
static void check_jail(const struct daemon *d, pid_t w)
{
        char v[256];
        unsigned uid = 0;
        sscanf(proc_status(w, "Uid:", v, sizeof(v)), "%u", &uid);
        CHECK(uid >= 1500000000u, "worker %d runs as uid %u, not the daemon's", (int)w, uid);
        CHECK(!strcmp(proc_status(w, "CapEff:", v, sizeof(v)), "0000000000000000") &&
                  !strcmp(proc_status(w, "CapPrm:", v, sizeof(v)), "0000000000000000"),
              "worker %d has no capabilities (CapEff %s)", (int)w, v);
        CHECK(!strcmp(proc_status(w, "NoNewPrivs:", v, sizeof(v)), "1"),
              "worker %d no_new_privs: %s", (int)w, v);
        CHECK(!strcmp(proc_status(w, "Seccomp:", v, sizeof(v)), "2"), "worker %d seccomp mode: %s",
              (int)w, v);
        static const char *const nss[] = {"mnt", "pid", "net", "ipc", "uts"};
        for (size_t i = 0; i < 5; i++)
                CHECK(!same_ns(d->pid, w, nss[i]), "worker %d has its own %s namespace", (int)w,
                      nss[i]);
        char cmd[128], *out = NULL;
        snprintf(cmd, sizeof(cmd), "ls -A /proc/%d/root/", (int)w);
        int rc = run(cmd, &out);
        CHECK(rc == 0 && out && !strcmp(out, "proc\n"), "worker %d's root holds only proc: '%s'",
              (int)w, out ? out : "");
        free(out);
}

/* POST /v1/clones of n clones of snap; their ids into ids[]. */
static size_t make_clones(struct daemon *d, const char *snap, int n, char ids[][40])
{
        struct reply r;
        char body[160];
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":%d}", snap, n);
        http_json(d, "POST", "/v1/clones", body, &r);
        CHECK(r.status == 201, "%d clones of %s: %ld %s", n, snap, r.status, r.body ? r.body : "");
        json_t *arr = json_object_get(r.json, "clones");
        size_t k = 0;
        for (; k < json_array_size(arr) && k < (size_t)n; k++)
                snprintf(ids[k], 40, "%s", jstr(json_array_get(arr, k), "id"));
        reply_free(&r);
        return k;
}

/* An invocation that holds its clone for 20 s, on a thread of its own. */
struct slow_call {
        struct daemon *d;
        char path[160];
        struct reply r;
};

static void *slow_call_main(void *arg)
{
        struct slow_call *h = arg;
        http_json(h->d, "POST", h->path, "{\"hold_ms\":20000}", &h->r);
        return NULL;
}

/* The metric once it reaches want (the broker counts a death when it has reaped the worker). */
static long long wait_metric(struct daemon *d, const char *name, long long want, double timeout_s)
{
        long long v = -1;
        for (double until = sprout_mono_s() + timeout_s; sprout_mono_s() < until; usleep(20000))
                if ((v = metric(d, name)) == want)
                        break;
        return v;
}

static long invoke_clone(struct daemon *d, const char *id, const char *query, struct reply *r)
{
        char path[160];
        snprintf(path, sizeof(path), "/v1/clones/%.39s/invoke%s", id, query ? query : "");
        http_json(d, "POST", path, "{\"name\":\"worker\"}", r);
        return r->status;
}

/* A new worker of tenant snapshot snap, made to misbehave by the worker test hook: its clone's
 * invocation fails with worker_died saying why, root's clone answers meanwhile, and the broker
 * counts the death (the deaths-th). */
static void hook_kills_worker(struct daemon *d, const char *snap, const char *hook, const char *why,
                              const char *root_clone, long long deaths)
{
        struct reply r;
        char c[1][40], path[160], body[80];
        REQUIRE(make_clones(d, snap, 1, c) == 1, "a clone in a new worker (%s)", hook);
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", c[0]);
        snprintf(body, sizeof(body), "{\"sprout_test\":\"%s\"}", hook);
        http_json(d, "POST", path, body, &r);
        CHECK(r.status == 502 && !strcmp(err_code(&r), "worker_died") && strstr(err_msg(&r), why),
              "the %s hook: %ld %s", hook, r.status, r.body ? r.body : "");
        reply_free(&r);
        CHECK(invoke_clone(d, root_clone, NULL, &r) == 200, "root's clone meanwhile: %ld",
              r.status);
        reply_free(&r);
        CHECK(wait_metric(d, "sprout_worker_deaths_total", deaths, 10) == deaths,
              "%lld worker deaths counted", deaths);
}

/* ---- fair: the worker queue between clients, and requests waiting on a busy clone ---- */

/* How long a held invocation spins in the guest: far longer than the test needs between seeing
 * it start and the request it races against, on any host. */
#define FAIR_HOLD_MS 2000

struct fair_call {
        const struct daemon *d;
        bool as_nobody;
        char path[200];
        struct reply r;
        double done_s;
        atomic_bool done;
        pthread_t t;
};

static void *fair_call_main(void *arg)
{
        struct fair_call *c = arg;
        char body[64];
        snprintf(body, sizeof(body), "{\"hold_ms\":%d}", FAIR_HOLD_MS);
        http_as(c->d, c->as_nobody, "POST", c->path, body, &c->r);
        c->done_s = sprout_mono_s();
        atomic_store(&c->done, true);
        return NULL;
}

static void fair_start(struct fair_call *c, const struct daemon *d, const char *clone)
{
        memset(c, 0, sizeof(*c));
        c->d = d;
        snprintf(c->path, sizeof(c->path), "/v1/clones/%s/invoke?timeout_ms=60000", clone);
        pthread_create(&c->t, NULL, fair_call_main, c);
}

/* Until /v1/health shows busy running and queued waiting requests (at most 30 s). */
static bool wait_workers(const struct daemon *d, int busy, int queued)
{
        struct reply r;
        for (double until = sprout_mono_s() + 30; sprout_mono_s() < until; usleep(10000)) {
                http_json(d, "GET", "/v1/health", NULL, &r);
                json_t *w = json_object_get(r.json, "workers");
                bool ok = jint(w, "busy") == busy && jint(w, "queued") == queued;
                reply_free(&r);
                if (ok)
                        return true;
        }
        return false;
}

/* The queue is fair (docs/architecture.md "Fair queueing"): a client at its share of workers
 * (--tenant-max-workers) waits while another client is served; a client cannot fill the queue past
 * its share (--tenant-max-queue); requests waiting on a busy clone hold no worker, so another
 * clone's request runs meanwhile, and one that waits past its time limit is answered 409. Clients
 * are root and a real uid 65534; every check is an order of events, not a duration. */
static void case_fair(void)
{
        struct daemon d;
        struct reply r;
        char c[4][40], path[1200];
        make_state(&d, "fair");
        const char *id = add_fixture_snapshot(&d);
        REQUIRE(id != NULL, "the fixture snapshot");
        /* uid 65534's snapshot, so that it may invoke the clones; root may too. */
        snprintf(path, sizeof(path), "echo %d > '%s/snapshots/%s.owner'", NOBODY, d.state, id);
        REQUIRE(system(path) == 0, "set-up: %s", path);
        const char *flags[] = {"--workers",
                               "3",
                               "--tenant-max-workers",
                               "2",
                               "--tenant-max-queue",
                               "3",
                               "--pool-ready",
                               "0",
                               "--socket-group",
                               "nogroup",
                               NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        REQUIRE(chmod(d.sock, 0660) == 0, "socket mode");
        REQUIRE(make_clones(&d, id, 4, c) == 4, "4 clones");

        /* Three held calls on clone 0: one runs, two wait in the queue without a worker. */
        struct fair_call h[4];
        fair_start(&h[0], &d, c[0]);
        CHECK(wait_workers(&d, 1, 0), "the first held call never ran");
        fair_start(&h[1], &d, c[0]);
        fair_start(&h[2], &d, c[0]);
        CHECK(wait_workers(&d, 1, 2), "two calls for the busy clone never showed as queued");
        /* Another clone runs on a free worker while clone 0's calls wait. */
        CHECK(invoke_clone(&d, c[1], NULL, &r) == 200, "clone 1 meanwhile: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        CHECK(!atomic_load(&h[0].done),
              "clone 1 answered only after clone 0's first held call: the waiting calls held the "
              "workers");
        /* Root's share of the queue is 3: a third waiting call fits, a fourth does not. */
        fair_start(&h[3], &d, c[0]);
        CHECK(wait_workers(&d, 1, 3), "the third waiting call never showed as queued");
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", c[0]);
        http_json(&d, "POST", path, "{}", &r);
        CHECK(r.status == 429 && !strcmp(err_code(&r), "queue_full") &&
                  strstr(err_msg(&r), "--tenant-max-queue"),
              "a fourth waiting call of one client: %ld %s", r.status, r.body ? r.body : "");
        reply_free(&r);
        for (int i = 0; i < 4; i++) {
                pthread_join(h[i].t, NULL);
                CHECK(h[i].r.status == 200, "held call %d: %ld %s", i, h[i].r.status,
                      h[i].r.body ? h[i].r.body : "");
                reply_free(&h[i].r);
                CHECK(h[0].done_s <= h[i].done_s, "clone 0's first call finished first");
        }

        /* A call that waits for a busy clone past its own time limit: 409, never run. */
        fair_start(&h[0], &d, c[0]);
        CHECK(wait_workers(&d, 1, 0), "the held call never ran");
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke?timeout_ms=300", c[0]);
        http_json(&d, "POST", path, "{}", &r);
        CHECK(r.status == 409 && !strcmp(err_code(&r), "clone_busy") && !atomic_load(&h[0].done),
              "a call whose limit passes while its clone is busy: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        pthread_join(h[0].t, NULL);
        CHECK(h[0].r.status == 200, "the held call: %ld", h[0].r.status);
        reply_free(&h[0].r);

        /* Root holds three clones, two at a time (its share); uid 65534 gets the third worker. */
        double t0 = sprout_mono_s();
        for (int i = 0; i < 3; i++)
                fair_start(&h[i], &d, c[i]);
        CHECK(wait_workers(&d, 2, 1), "root's third call never waited for its share");
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", c[3]);
        http_as(&d, true, "POST", path, "{}", &r);
        bool root_done = atomic_load(&h[0].done) || atomic_load(&h[1].done);
        CHECK(r.status == 200 && !root_done,
              "uid 65534's call while root is at its share: %ld %s (root finished first: %d)",
              r.status, r.body ? r.body : "", root_done);
        reply_free(&r);
        double last = 0;
        for (int i = 0; i < 3; i++) {
                pthread_join(h[i].t, NULL);
                CHECK(h[i].r.status == 200, "root's call %d: %ld", i, h[i].r.status);
                reply_free(&h[i].r);
                last = h[i].done_s > last ? h[i].done_s : last;
        }
        /* The third ran only after one of the first two: two holds one after the other. */
        CHECK(last - t0 >= 1.9 * FAIR_HOLD_MS / 1000.0,
              "root's three calls took %.2f s: more than two ran at once", last - t0);
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "sproutd did not stop cleanly");
}

static void case_workers(void)
{
        struct daemon d;
        struct reply r;
        char b[40], path[1200], ca[3][40], cb[2][40], cc[1][40];
        make_state(&d, "workers");
        const char *fixture = add_fixture_snapshot(&d);
        REQUIRE(fixture != NULL, "the fixture snapshot");
        char a[40];
        snprintf(a, sizeof(a), "%s", fixture);
        const char *flags[] = {
            "--clones-per-worker", "2", "--pool-ready", "0", "--worker-test-hooks", "1", NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        /* A second snapshot of the same image, which becomes uid 65534's. */
        snprintf(path, sizeof(path), "{\"image\":\"%s/hello\"}", t_images);
        http_json(&d, "POST", "/v1/snapshots", path, &r);
        snprintf(b, sizeof(b), "%s", jstr(r.json, "id"));
        reply_free(&r);
        static const char *const ready[] = {"ready", "failed", NULL};
        REQUIRE(!strcmp(wait_status(&d, b, ready, 600), "ready"), "the second snapshot");
        REQUIRE(daemon_stop(&d, SIGTERM, 30) == 0, "sproutd did not stop");
        snprintf(path, sizeof(path), "%s/snapshots/%s.owner", d.state, b);
        FILE *f = fopen(path, "w");
        REQUIRE(f && fprintf(f, "%d\n", NOBODY) > 0 && fclose(f) == 0, "writing %s", path);
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start again");

        /* Three of root's clones need two workers (K = 2); uid 65534's two clones one of its own.
         */
        REQUIRE(make_clones(&d, a, 3, ca) == 3 && make_clones(&d, b, 2, cb) == 2, "clones");
        struct wpids w;
        find_workers(&d, &w);
        pid_t wb = 0;
        CHECK(w.n == 3 && workers_of(&w, 0, NULL) == 2 && workers_of(&w, NOBODY, &wb) == 1,
              "3 workers: 2 for root, 1 for uid 65534 (found %zu; root %zu, 65534 %zu)", w.n,
              workers_of(&w, 0, NULL), workers_of(&w, NOBODY, NULL));
        for (size_t i = 0; i < w.n; i++)
                check_jail(&d, w.pid[i]);
        for (int i = 0; i < 3; i++) {
                CHECK(invoke_clone(&d, ca[i], NULL, &r) == 200 && strstr(r.body, "worker"),
                      "root's clone %d answers: %ld %s", i, r.status, r.body ? r.body : "");
                reply_free(&r);
        }
        for (int i = 0; i < 2; i++) {
                CHECK(invoke_clone(&d, cb[i], NULL, &r) == 200,
                      "uid 65534's clone %d answers: %ld %s", i, r.status, r.body ? r.body : "");
                reply_free(&r);
        }
        /* Memory comes from the workers: a clone that ran has private pages. */
        snprintf(path, sizeof(path), "/v1/clones/%s", ca[0]);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && jint(r.json, "private_bytes") > 0,
              "private bytes from the worker: %s", r.body ? r.body : "");
        reply_free(&r);
        /* A one-shot runs in a worker as well. */
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", a);
        http_json(&d, "POST", path, "{\"name\":\"oneshot\"}", &r);
        CHECK(r.status == 200 && strstr(r.body, "oneshot"), "a one-shot: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s/log", ca[0]);
        http(&d, "GET", path, NULL, NULL, 0, &r);
        CHECK(r.status == 200, "a clone's log through its worker: %ld", r.status);
        reply_free(&r);

        /* SIGKILL uid 65534's worker in the middle of an invocation: that call, and every clone
         * of the worker after it, fail with worker_died; root's clones do not notice. */
        REQUIRE(wb > 0, "uid 65534's worker");
        struct slow_call h = {.d = &d};
        snprintf(h.path, sizeof(h.path), "/v1/clones/%s/invoke", cb[0]);
        pthread_t ht;
        REQUIRE(pthread_create(&ht, NULL, slow_call_main, &h) == 0, "a held invocation");
        usleep(1000000);
        kill(wb, SIGKILL);
        pthread_join(ht, NULL);
        CHECK(h.r.status == 502 && !strcmp(err_code(&h.r), "worker_died"),
              "the invocation its worker died in: %ld %s", h.r.status, h.r.body ? h.r.body : "");
        reply_free(&h.r);
        for (int i = 0; i < 2; i++) {
                invoke_clone(&d, cb[i], NULL, &r);
                CHECK(r.status == 502 && !strcmp(err_code(&r), "worker_died"),
                      "a clone of the killed worker: %ld %s", r.status, r.body ? r.body : "");
                reply_free(&r);
        }
        for (int i = 0; i < 3; i++) {
                CHECK(invoke_clone(&d, ca[i], NULL, &r) == 200,
                      "root's clone %d after the other tenant's worker died: %ld %s", i, r.status,
                      r.body ? r.body : "");
                reply_free(&r);
        }
        snprintf(path, sizeof(path), "/v1/clones/%s", cb[0]);
        http_json(&d, "GET", path, NULL, &r);
        CHECK(r.status == 200 && !strcmp(jstr(r.json, "state"), "dead") &&
                  strstr(jstr(r.json, "dead_reason"), "killed by signal 9"),
              "the dead clone says why: %s", r.body ? r.body : "");
        reply_free(&r);
        CHECK(wait_metric(&d, "sprout_worker_deaths_total", 1, 10) == 1,
              "one worker death counted");
        /* The tenant gets a new worker. */
        REQUIRE(make_clones(&d, b, 1, cc) == 1, "a clone after the death");
        CHECK(invoke_clone(&d, cc[0], NULL, &r) == 200, "it answers: %ld %s", r.status,
              r.body ? r.body : "");
        reply_free(&r);
        find_workers(&d, &w);
        pid_t wb2 = 0;
        size_t nb = workers_of(&w, NOBODY, &wb2);
        CHECK(nb == 1 && wb2 != wb, "a new worker for uid 65534 (%zu found, the first %d)", nb,
              (int)wb2);

        /* A worker that stops answering is killed after the call's deadline and a grace. */
        REQUIRE(kill(wb2, SIGSTOP) == 0, "SIGSTOP to worker %d", (int)wb2);
        REQUIRE(wait_stopped(wb2, 30), "worker %d stopped", (int)wb2);
        double t0 = sprout_mono_s();
        invoke_clone(&d, cc[0], "?timeout_ms=200", &r);
        double took = sprout_mono_s() - t0;
        CHECK(r.status == 502 && !strcmp(err_code(&r), "worker_died") &&
                  strstr(err_msg(&r), "did not answer"),
              "a hung worker: %ld %s (worker %d stopped: %d)", r.status, r.body ? r.body : "",
              (int)wb2, wait_stopped(wb2, 0));
        CHECK(took < 60, "the broker gave up on it in %.1f s", took);
        reply_free(&r);
        CHECK(invoke_clone(&d, ca[0], NULL, &r) == 200, "root's clone meanwhile: %ld", r.status);
        reply_free(&r);
        CHECK(wait_metric(&d, "sprout_worker_deaths_total", 2, 10) == 2,
              "two worker deaths counted");

        /* A system call outside the allow-list (the test hook makes one) kills the worker. */
        hook_kills_worker(&d, b, "forbidden_syscall", "signal 31", ca[1], 3);
        /* So does answering on a clone's socket what the broker never asked (the hook sends a
         * reply with the next sequence number). */
        hook_kills_worker(&d, b, "stray_reply", "broke the protocol on a clone's socket", ca[2], 4);

        /* A guest that set the PIT ticking as fast as it can before READY: its clones have no
         * PIT (its ports read as all ones, so mode 7), and KVM keeps no PIT timer and no
         * kvm-pit thread for any of them. */
        snprintf(path, sizeof(path),
                 "{\"image\":\"%s/hostile\",\"cmdline\":\"SPROUT_HOSTILE=pit\"}", t_images);
        http_json(&d, "POST", "/v1/snapshots", path, &r);
        char pit[40];
        snprintf(pit, sizeof(pit), "%s", jstr(r.json, "id"));
        reply_free(&r);
        REQUIRE(!strcmp(wait_status(&d, pit, ready, 600), "ready"), "the PIT snapshot");
        char cp[8][40];
        REQUIRE(make_clones(&d, pit, 8, cp) == 8, "clones of the PIT snapshot");
        for (int i = 0; i < 8; i++) {
                snprintf(path, sizeof(path), "/v1/clones/%s/invoke", cp[i]);
                http_json(&d, "POST", path, "\"P\"", &r);
                CHECK(r.status == 200 && r.body && !strcmp(r.body, "pit 7"),
                      "clone %d has no PIT: %ld %s", i, r.status, r.body ? r.body : "");
                reply_free(&r);
        }
        char *tl = NULL;
        int rc = run("cat /proc/timer_list", &tl);
        CHECK(rc == 0 && tl && (strstr(tl, "hrtimer_wakeup") || strstr(tl, "tick_sched_timer")),
              "/proc/timer_list lists the host's timers");
        CHECK(tl && !strstr(tl, "pit_timer_fn"), "no PIT hrtimer is armed for the idle clones");
        free(tl);
        /* KVM names a PIT's kernel thread after the pid of the process that made it, as that
         * process sees it: 1 in a worker's pid namespace (the pid itself without namespaces). */
        struct wpids wp;
        find_workers(&d, &wp);
        CHECK(wp.n > 0, "the PIT clones' workers are found");
        char *comms = NULL;
        /* A process may exit between the glob and cat: only the output counts. */
        CHECK(run("cat /proc/[0-9]*/comm 2>/dev/null; true", &comms) == 0 && comms &&
                  strstr(comms, "kthreadd"),
              "the host's threads are listed");
        CHECK(comms && !strstr(comms, "kvm-pit/1\n"), "no worker VM has a kvm-pit thread");
        for (size_t i = 0; i < wp.n; i++) {
                char name[32];
                snprintf(name, sizeof(name), "kvm-pit/%d\n", (int)wp.pid[i]);
                CHECK(comms && !strstr(comms, name), "worker %d has no kvm-pit thread",
                      (int)wp.pid[i]);
        }
        free(comms);

        /* Deleting the dead clones works; a clean stop ends every worker. */
        for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "/v1/clones/%s", cb[i]);
                http_json(&d, "DELETE", path, NULL, &r);
                CHECK(r.status == 204 || r.status == 200, "delete a dead clone: %ld", r.status);
                reply_free(&r);
        }
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "sproutd stops");
        for (size_t i = 0; i < w.n; i++)
                CHECK(kill(w.pid[i], 0) < 0 && errno == ESRCH, "worker %d is gone", (int)w.pid[i]);
}

/* ---- many: 1,000 live clones, spread over workers of K each, all answering ---- */

static void case_many(void)
{
        struct daemon d;
        struct reply r;
        enum { N = 1000, K = 64 };
        static char ids[N][40];
        make_state(&d, "many");
        const char *id = add_fixture_snapshot(&d);
        REQUIRE(id != NULL, "the fixture snapshot");
        const char *flags[] = {"--max-clones",
                               "1100",
                               "--clones-per-worker",
                               "64",
                               "--pool-ready",
                               "0",
                               "--base-keep-s",
                               "1",
                               NULL};
        REQUIRE(daemon_start(&d, flags) == 0, "sproutd did not start");
        double t0 = sprout_mono_s();
        size_t n = 0;
        while (n < N) {
                size_t got = make_clones(&d, id, N - n < 250 ? (int)(N - n) : 250, ids + n);
                if (!got)
                        break;
                n += got;
        }
        double secs = sprout_mono_s() - t0;
        printf("%zu live clones in %.1f s (%.0f /s)\n", n, secs, (double)n / secs);
        REQUIRE(n == N, "%d live clones: %zu made", N, n);
        struct wpids w;
        find_workers(&d, &w);
        CHECK(w.n == (N + K - 1) / K, "%d clones in %zu workers of %d", N, w.n, K);
        http_json(&d, "GET", "/v1/clones", NULL, &r);
        CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "clones")) == N,
              "GET /v1/clones lists %d", N);
        reply_free(&r);
        /* Every 50th answers, from every worker. */
        int ok = 0;
        for (size_t i = 0; i < N; i += 50) {
                if (invoke_clone(&d, ids[i], NULL, &r) == 200)
                        ok++;
                reply_free(&r);
        }
        CHECK(ok == N / 50, "%d of %d sampled clones answer", ok, N / 50);
        for (size_t i = 0; i < N; i++) {
                char path[128];
                snprintf(path, sizeof(path), "/v1/clones/%.39s", ids[i]);
                http_json(&d, "DELETE", path, NULL, &r);
                if (r.status != 204 && r.status != 200)
                        CHECK(0, "delete %s: %ld", ids[i], r.status);
                reply_free(&r);
        }
        /* With no clones for --base-keep-s, the workers are stopped. */
        for (double until = sprout_mono_s() + 60; sprout_mono_s() < until; usleep(200000)) {
                find_workers(&d, &w);
                if (!w.n)
                        break;
        }
        CHECK(w.n == 0, "idle workers stopped: %zu left", w.n);
        CHECK(metric(&d, "sprout_worker_deaths_total") == 0, "no worker died");
        CHECK(daemon_stop(&d, SIGTERM, 60) == 0, "sproutd stops");
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = {
            {"prewarm", case_prewarm},     {"api", case_api},
            {"bad_input", case_bad_input}, {"concurrency", case_concurrency},
            {"limits", case_limits},       {"restart", case_restart},
            {"drain", case_drain},         {"cli", case_cli},
            {"files", case_files},         {"deploy", case_deploy},
            {"inproc", case_inproc},       {"quota", case_quota},
            {"keys", case_keys},           {"tenants", case_tenants},
            {"workers", case_workers},     {"many", case_many},
            {"recycle", case_recycle},     {"fair", case_fair},
        };
        if (argc != 6) {
                fprintf(stderr, "usage: test_daemon CASE SPROUTD SPROUT IMAGES_DIR WORK_DIR\n");
                return 2;
        }
        /* "files" and "keys" need no VM: they run on any host, KVM or not. */
        if (strcmp(argv[1], "files") != 0 && strcmp(argv[1], "keys") != 0 &&
            strcmp(argv[1], "tenants") != 0 && kvm_absent_skip())
                return KVM_SKIP_STATUS;
        t_sproutd = argv[2];
        t_sprout = argv[3];
        t_images = argv[4];
        t_work = argv[5];
        mkdir(t_work, 0755);
        curl_global_init(CURL_GLOBAL_NOTHING);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (!strcmp(argv[1], cases[i].name)) {
                        cases[i].fn();
                        if (check_failed)
                                fprintf(stderr, "daemon logs: %s/%s*.log\n", t_work, argv[1]);
                        curl_global_cleanup();
                        return check_finish();
                }
        }
        fprintf(stderr, "unknown case %s\n", argv[1]);
        return 2;
}
