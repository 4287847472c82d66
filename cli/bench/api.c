/* sprout bench api SNAPSHOT_ID: what the HTTP API costs: one-shot invocations per second at 1, 2
 * and 8 clients, and the latency HTTP adds over the same invocation in-process (p50, p99). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "client.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/stats.h"

struct load_thread {
        pthread_t t;
        const char *socket, *path, *req;
        int64_t until_ns;
        double *lat;
        size_t n, cap;
        size_t errors;
        long first_status;
        char first_error[256];
};

static void *load_main(void *arg)
{
        struct load_thread *lt = arg;
        struct client cl;
        if (client_open(&cl, lt->socket))
                return NULL;
        while (sprout_mono_ns() < lt->until_ns) {
                struct client_resp r;
                int64_t t0 = sprout_mono_ns();
                int e = client_call(&cl, "POST", lt->path, lt->req, strlen(lt->req), 60000, &r);
                double ms = (double)(sprout_mono_ns() - t0) / 1e6;
                if (e < 0 || r.status != 200) {
                        if (!lt->errors++) {
                                lt->first_status = e < 0 ? e : r.status;
                                snprintf(lt->first_error, sizeof(lt->first_error), "%.200s",
                                         r.body ? r.body : cl.errbuf);
                        }
                } else {
                        if (lt->n == lt->cap) {
                                size_t cap = lt->cap ? lt->cap * 2 : 4096;
                                double *nl = realloc(lt->lat, cap * sizeof(double));
                                if (!nl) {
                                        client_resp_free(&r);
                                        break;
                                }
                                lt->lat = nl;
                                lt->cap = cap;
                        }
                        lt->lat[lt->n++] = ms;
                }
                client_resp_free(&r);
        }
        client_close(&cl);
        return NULL;
}

/* The daemon's ready-pool counters (docs/api.md, /metrics): what a fresh one-shot found. */
struct pool_counts {
        double taken, recycled, missed;
};

static double counter(const char *body, const char *name)
{
        char key[96];
        snprintf(key, sizeof(key), "\n%s ", name);
        const char *p = body ? strstr(body, key) : NULL;
        return p ? strtod(p + strlen(key), NULL) : 0;
}

static void read_pool_counts(const char *socket, struct pool_counts *pc)
{
        struct client cl;
        struct client_resp r;
        *pc = (struct pool_counts){0};
        if (client_open(&cl, socket))
                return;
        if (client_call(&cl, "GET", "/metrics", NULL, 0, 10000, &r) == 0 && r.status == 200) {
                pc->taken = counter(r.body, "sprout_ready_clones_taken_total");
                pc->recycled = counter(r.body, "sprout_recycled_clones_taken_total");
                pc->missed = counter(r.body, "sprout_ready_pool_misses_total");
        }
        client_resp_free(&r);
        client_close(&cl);
}

/* clients threads call path for seconds; prints throughput and latency, and for fresh one-shots
 * how many found a ready clone, and how many of those had been recycled. */
static void run_load(const char *socket, const char *path, const char *req, int clients,
                     double seconds, const char *label, bool json)
{
        struct load_thread *lt = calloc((size_t)clients, sizeof(*lt));
        if (!lt)
                return;
        struct pool_counts before, after;
        read_pool_counts(socket, &before);
        int64_t t0 = sprout_mono_ns();
        for (int i = 0; i < clients; i++) {
                lt[i] = (struct load_thread){.socket = socket,
                                             .path = path,
                                             .req = req,
                                             .until_ns = t0 + (int64_t)(seconds * 1e9)};
                pthread_create(&lt[i].t, NULL, load_main, &lt[i]);
        }
        size_t total = 0, errors = 0;
        for (int i = 0; i < clients; i++) {
                pthread_join(lt[i].t, NULL);
                total += lt[i].n;
                errors += lt[i].errors;
        }
        double elapsed = (double)(sprout_mono_ns() - t0) / 1e9;
        read_pool_counts(socket, &after);
        double hits = after.taken - before.taken, recycled = after.recycled - before.recycled,
               missed = after.missed - before.missed;
        double *all = malloc((total ? total : 1) * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < clients && all; i++) {
                memcpy(all + k, lt[i].lat, lt[i].n * sizeof(double));
                k += lt[i].n;
        }
        struct latency_summary s = all ? summarize(all, total) : (struct latency_summary){0};
        if (json)
                printf(
                    "{\"bench\":\"api\",\"mode\":\"%s\",\"clients\":%d,\"ok\":%zu,\"errors\":%zu,"
                    "\"per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"pool_hits\":%.0f,"
                    "\"pool_recycled\":%.0f,\"pool_misses\":%.0f}\n",
                    label, clients, total, errors, (double)total / elapsed, s.p50, s.p99, hits,
                    recycled, missed);
        else
                printf("one-shot %-6s %2d client%s  %8.1f /s  p50 %7.3f ms  p99 %7.3f ms  (%zu ok, "
                       "%zu errors; pool: %.0f hits, %.0f recycled, %.0f misses)\n",
                       label, clients, clients == 1 ? " " : "s", (double)total / elapsed, s.p50,
                       s.p99, total, errors, hits, recycled, missed);
        for (int i = 0; i < clients; i++) {
                if (lt[i].errors)
                        fprintf(stderr, "  first error of client %d: %ld %s\n", i,
                                lt[i].first_status, lt[i].first_error);
                free(lt[i].lat);
        }
        free(all);
        free(lt);
}

static void report(const char *what, double *v, size_t n, bool json)
{
        struct latency_summary s = summarize(v, n);
        if (json) {
                printf("{\"bench\":\"api\",\"metric\":\"%s\",\"n\":%zu,\"p50_ms\":%.4f,"
                       "\"p99_ms\":%.4f",
                       what, n, s.p50, s.p99);
                bench_print_cdf(&s);
                printf("}\n");
        } else
                printf("%-34s n=%-5zu p50 %8.4f ms  p99 %8.4f ms\n", what, n, s.p50, s.p99);
}

/* The same warm invocation in this process, no HTTP: the floor the API is compared with. */
static int direct_invokes(const char *snap_path, const char *req, size_t n, double *warm,
                          double *fresh)
{
        struct sprout_err err = {0};
        struct sprout_kvm *kvm = NULL;
        struct sprout_base *b = NULL;
        struct sprout_clone *c = NULL;
        const void *resp;
        size_t len;
        int r = sprout_kvm_open(&kvm, &err);
        if (r == 0)
                r = sprout_base_load(kvm, snap_path, 0, &b, &err);
        if (r == 0)
                r = sprout_clone_create(b, -1, &c, NULL, &err);
        if (r == 0)
                r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
        for (size_t i = 0; r == 0 && i < n; i++) {
                int64_t t0 = sprout_mono_ns();
                r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
                warm[i] = (double)(sprout_mono_ns() - t0) / 1e6;
        }
        sprout_clone_destroy(c);
        /* Fresh: restore from a pooled shell, then the first invocation (teardown not timed, as
         * the daemon does it off the request path). */
        for (size_t i = 0; r == 0 && i < n / 4; i++) {
                r = sprout_base_prepare(b, 1, &err);
                int64_t t0 = sprout_mono_ns();
                if (r == 0)
                        r = sprout_clone_create(b, -1, &c, NULL, &err);
                if (r == 0)
                        r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
                fresh[i] = (double)(sprout_mono_ns() - t0) / 1e6;
                if (c)
                        sprout_clone_destroy(c);
                c = NULL;
        }
        if (r < 0)
                fprintf(stderr, "sprout bench api: direct mode: %s\n", err.msg);
        sprout_base_free(b);
        sprout_kvm_close(kvm);
        return r;
}

/* Sequential calls through the socket; latency as the client sees it. */
static int api_sequential(struct client *cl, const char *path, const char *req, size_t n,
                          double *out, double *inside)
{
        for (size_t i = 0; i < n; i++) {
                struct client_resp r;
                int64_t t0 = sprout_mono_ns();
                int e = client_call(cl, "POST", path, req, strlen(req), 60000, &r);
                out[i] = (double)(sprout_mono_ns() - t0) / 1e6;
                if (inside)
                        inside[i] = r.invoke_ms;
                if (e < 0 || r.status != 200) {
                        int rc = client_fail("bench api", cl, e, &r);
                        client_resp_free(&r);
                        return rc;
                }
                client_resp_free(&r);
        }
        return 0;
}

/* The sequential figures in ms: warm invocations through the API (as the client sees them and
 * inside sproutd) and in-process, and fresh clones both ways (n / 4 of those). */
struct seq_lat {
        double *api, *inside, *direct, *dfresh, *afresh;
        double switches; /* sproutd's and its workers' context switches per warm call; < 0: none */
};

/* Warm invocations of one clone made for this, through the API: the same guest work as direct. */
static int api_warm_invokes(struct client *cl, const char *id, const char *req, size_t n,
                            struct seq_lat *l)
{
        char body[128], clone[64], path[256];
        struct client_resp r;
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", id);
        int e = client_call(cl, "POST", "/v1/clones", body, strlen(body), 60000, &r);
        if (e < 0 || r.status != 201) {
                int rc = client_fail("bench api", cl, e, &r);
                client_resp_free(&r);
                return rc;
        }
        snprintf(clone, sizeof(clone), "%s",
                 json_string_value(
                     json_object_get(json_array_get(json_object_get(r.json, "clones"), 0), "id")));
        client_resp_free(&r);
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", clone);
        double warmup;
        int rc = api_sequential(cl, path, req, 1, &warmup, NULL);
        pid_t dpid = bench_daemon_pid(cl->socket);
        uint64_t cs0 = dpid > 0 ? bench_ctx_switches(dpid) : 0;
        if (!rc)
                rc = api_sequential(cl, path, req, n, l->api, l->inside);
        l->switches = dpid > 0 && n ? (double)(bench_ctx_switches(dpid) - cs0) / (double)n : -1;
        snprintf(path, sizeof(path), "/v1/clones/%s", clone);
        if (client_call(cl, "DELETE", path, NULL, 0, 60000, &r) == 0)
                client_resp_free(&r);
        return rc;
}

static void print_sequential(struct seq_lat *l, size_t n, bool json)
{
        struct latency_summary sa = summarize(l->api, n), sd = summarize(l->direct, n);
        report("warm invoke, direct (in-process)", l->direct, n, json);
        report("warm invoke, inside sproutd", l->inside, n, json);
        report("warm invoke, through the API", l->api, n, json);
        report("fresh clone + invoke, direct", l->dfresh, n / 4, json);
        report("one-shot fresh, through the API", l->afresh, n / 4, json);
        if (json && l->switches >= 0)
                printf("{\"bench\":\"api\",\"metric\":\"warm_context_switches\",\"per_call\":%.2f}"
                       "\n",
                       l->switches);
        else if (l->switches >= 0)
                printf("warm invoke, context switches of sproutd + workers per call %8.2f\n",
                       l->switches);
        if (json)
                printf("{\"bench\":\"api\",\"metric\":\"http_added\",\"p50_ms\":%.4f,\"p99_ms\":%."
                       "4f}\n",
                       sa.p50 - sd.p50, sa.p99 - sd.p99);
        else
                printf("HTTP layer adds (warm invoke)      p50 %8.4f ms  p99 %8.4f ms\n",
                       sa.p50 - sd.p50, sa.p99 - sd.p99);
}

/* n sequential invocations through the API and in this process: what the HTTP layer adds. */
static int sequential(struct client *cl, const char *id, const char *snap_path, const char *req,
                      size_t n, bool json)
{
        struct seq_lat l = {
            .api = calloc(n, sizeof(double)),
            .inside = calloc(n, sizeof(double)),
            .direct = calloc(n, sizeof(double)),
            .dfresh = calloc(n, sizeof(double)),
            .afresh = calloc(n, sizeof(double)),
            .switches = -1,
        };
        char path[256];
        int rc = CLI_EXIT_FAIL;
        if (!l.api || !l.inside || !l.direct || !l.dfresh || !l.afresh)
                goto out;
        rc = api_warm_invokes(cl, id, req, n, &l);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        if (!rc)
                rc = api_sequential(cl, path, req, n / 4, l.afresh, NULL);
        if (!rc && direct_invokes(snap_path, req, n, l.direct, l.dfresh) < 0)
                rc = CLI_EXIT_FAIL;
        if (!rc)
                print_sequential(&l, n, json);
out:
        free(l.api);
        free(l.inside);
        free(l.direct);
        free(l.dfresh);
        free(l.afresh);
        return rc;
}

int bench_api(const char *socket, const char *id, long seconds, long n, const char *req, bool json)
{
        struct client cl;
        struct client_resp r;
        char path[256], snap_path[4096];
        int rc = client_open(&cl, socket);
        if (rc)
                return rc;
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        if ((rc = client_get_json(&cl, "bench api", path, &r)))
                goto out;
        snprintf(snap_path, sizeof(snap_path), "%s",
                 json_string_value(json_object_get(r.json, "path")));
        client_resp_free(&r);

        static const int levels[] = {1, 2, 8};
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke?reuse=true", id);
        for (size_t i = 0; i < 3; i++)
                run_load(cl.socket, path, req, levels[i], (double)seconds, "reuse", json);
        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", id);
        for (size_t i = 0; i < 3; i++)
                run_load(cl.socket, path, req, levels[i], (double)seconds, "fresh", json);
        rc = sequential(&cl, id, snap_path, req, (size_t)n, json);
out:
        client_close(&cl);
        return rc;
}
