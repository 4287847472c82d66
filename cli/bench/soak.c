/* sprout bench soak SNAPSHOT_ID: does sproutd hold steady under hours of mixed load? Client
 * threads loop over a mix of one-shot invocations (fresh and reused clones), named clones created,
 * invoked and deleted, and warm invocations of a clone each thread keeps; every sample the daemon's
 * and workers' RSS, descriptors and threads are read from /proc. It prints one row per sample and,
 * at the end, each figure's median over the second quarter of the run beside its median over the
 * last quarter: a leak shows as a last quarter above the second (the first is warm-up: bases
 * load, pools fill). Must run as root to read the workers' /proc entries. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "client.h"
#include "sprout/clock.h"
#include "sprout/stats.h"

struct soak_thread {
        pthread_t t;
        const char *socket, *id;
        int64_t until_ns;
        unsigned seed;
        atomic_ulong ops, errors;
        char first_error[256];
};

/* One call; counts it, and keeps the first failure's text. */
static bool call(struct soak_thread *st, struct client *cl, const char *method, const char *path,
                 const char *body, long want, struct client_resp *r)
{
        int e = client_call(cl, method, path, body, body ? strlen(body) : 0, 60000, r);
        atomic_fetch_add(&st->ops, 1);
        if (e == 0 && r->status == want)
                return true;
        unsigned long k = atomic_fetch_add(&st->errors, 1);
        if (!k)
                snprintf(st->first_error, sizeof(st->first_error), "%s %s: %ld %.200s", method,
                         path, e < 0 ? (long)e : r->status, r->body ? r->body : cl->errbuf);
        /* As they happen, so a long run shows when and which (the first few per thread). */
        if (k < 5)
                fprintf(stderr, "soak: %s %s: %ld %.300s\n", method, path,
                        e < 0 ? (long)e : r->status, r->body ? r->body : cl->errbuf);
        return false;
}

/* POST /v1/clones of one clone of the snapshot; its id into out ("" on failure). */
static void new_clone(struct soak_thread *st, struct client *cl, char out[40])
{
        struct client_resp r;
        char body[96];
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", st->id);
        out[0] = '\0';
        if (call(st, cl, "POST", "/v1/clones", body, 201, &r)) {
                json_t *c = json_array_get(json_object_get(r.json, "clones"), 0);
                const char *id = json_string_value(json_object_get(c, "id"));
                snprintf(out, 40, "%s", id ? id : "");
        }
        client_resp_free(&r);
}

static bool invoke(struct soak_thread *st, struct client *cl, const char *clone)
{
        struct client_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/v1/clones/%s/invoke", clone);
        bool ok = call(st, cl, "POST", path, "{\"soak\":true}", 200, &r);
        client_resp_free(&r);
        return ok;
}

static void delete_clone(struct soak_thread *st, struct client *cl, const char *clone)
{
        struct client_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/v1/clones/%s", clone);
        call(st, cl, "DELETE", path, NULL, 200, &r);
        client_resp_free(&r);
}

static void *soak_main(void *arg)
{
        struct soak_thread *st = arg;
        struct client cl;
        if (client_open(&cl, st->socket))
                return NULL;
        char kept[40], path[160];
        new_clone(st, &cl, kept);
        while (sprout_mono_ns() < st->until_ns) {
                unsigned pick = (unsigned)rand_r(&st->seed) % 10;
                struct client_resp r;
                if (pick < 4) { /* a fresh one-shot: a ready clone, recycled after */
                        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke", st->id);
                        call(st, &cl, "POST", path, "{\"soak\":true}", 200, &r);
                        client_resp_free(&r);
                } else if (pick < 6) { /* a reused one-shot clone */
                        snprintf(path, sizeof(path), "/v1/snapshots/%s/invoke?reuse=true", st->id);
                        call(st, &cl, "POST", path, "{\"soak\":true}", 200, &r);
                        client_resp_free(&r);
                } else if (pick < 8) { /* a named clone's whole life */
                        char c[40];
                        new_clone(st, &cl, c);
                        /* A clone that failed once is dead (409 clone_dead after): one failure
                         * is counted, not every later call on it. */
                        if (c[0]) {
                                if (invoke(st, &cl, c))
                                        invoke(st, &cl, c);
                                delete_clone(st, &cl, c);
                        }
                } else if (kept[0]) { /* the clone this thread keeps, warm; replaced if it dies */
                        if (!invoke(st, &cl, kept)) {
                                delete_clone(st, &cl, kept);
                                kept[0] = '\0';
                        }
                } else {
                        new_clone(st, &cl, kept);
                }
        }
        if (kept[0])
                delete_clone(st, &cl, kept);
        client_close(&cl);
        return NULL;
}

struct soak_sample {
        double t_s;
        struct bench_procs p;
        unsigned long ops;
};

/* The median of figure f over samples [from, to). */
static double median(const struct soak_sample *s, size_t from, size_t to,
                     double (*f)(const struct soak_sample *))
{
        if (to <= from)
                return 0;
        double *v = malloc((to - from) * sizeof(*v));
        if (!v)
                return 0;
        for (size_t i = from; i < to; i++)
                v[i - from] = f(&s[i]);
        double m = summarize(v, to - from).p50;
        free(v);
        return m;
}

static double rss_mib(const struct soak_sample *s)
{
        return (double)s->p.rss_kib / 1024.0;
}

static double pss_mib(const struct soak_sample *s)
{
        return (double)s->p.pss_kib / 1024.0;
}

static double pss_anon_mib(const struct soak_sample *s)
{
        return (double)s->p.pss_anon_kib / 1024.0;
}

static double fds(const struct soak_sample *s)
{
        return s->p.fds;
}

static double threads(const struct soak_sample *s)
{
        return s->p.threads;
}

static double workers(const struct soak_sample *s)
{
        return s->p.workers;
}

int bench_soak(const char *socket, const char *id, double minutes, long clients, double sample_s,
               bool json)
{
        struct client cl;
        if (client_open(&cl, socket))
                return 3;
        pid_t dpid = bench_daemon_pid(cl.socket);
        size_t cap = (size_t)(minutes * 60 / sample_s) + 2;
        struct soak_sample *smp = calloc(cap, sizeof(*smp));
        struct soak_thread *th = calloc((size_t)clients, sizeof(*th));
        if (!dpid || !smp || !th) {
                fprintf(stderr, "sprout bench soak: %s\n",
                        !dpid ? "cannot find sproutd's pid on its socket" : "out of memory");
                client_close(&cl);
                free(smp);
                free(th);
                return 1;
        }
        int64_t t0 = sprout_mono_ns(), until = t0 + (int64_t)(minutes * 60e9);
        if (!json)
                printf("sprout bench soak: %ld clients for %.1f min on snapshot %s, sampling every "
                       "%.0f s (sproutd pid %d)\n  %8s %10s %9s %9s %9s %6s %8s %8s %8s\n",
                       clients, minutes, id, sample_s, (int)dpid, "t_s", "ops", "rss_mib",
                       "pss_mib", "anon_mib", "fds", "threads", "workers", "errors");
        for (long i = 0; i < clients; i++) {
                th[i].socket = cl.socket;
                th[i].id = id;
                th[i].until_ns = until;
                th[i].seed = (unsigned)(t0 ^ (i * 7919));
                pthread_create(&th[i].t, NULL, soak_main, &th[i]);
        }
        size_t n = 0;
        unsigned long errors = 0;
        while (n < cap) {
                struct soak_sample *s = &smp[n++];
                s->t_s = (double)(sprout_mono_ns() - t0) / 1e9;
                bench_sample_procs(dpid, &s->p);
                errors = 0;
                for (long i = 0; i < clients; i++) {
                        s->ops += atomic_load(&th[i].ops);
                        errors += atomic_load(&th[i].errors);
                }
                if (json)
                        printf("{\"metric\":\"soak sample\",\"t_s\":%.1f,\"ops\":%lu,"
                               "\"rss_kib\":%llu,\"pss_kib\":%llu,\"pss_anon_kib\":%llu,"
                               "\"fds\":%u,\"threads\":%u,\"workers\":%u,\"errors\":%lu}\n",
                               s->t_s, s->ops, (unsigned long long)s->p.rss_kib,
                               (unsigned long long)s->p.pss_kib,
                               (unsigned long long)s->p.pss_anon_kib, s->p.fds, s->p.threads,
                               s->p.workers, errors);
                else
                        printf("  %8.1f %10lu %9.1f %9.1f %9.1f %6u %8u %8u %8lu\n", s->t_s, s->ops,
                               rss_mib(s), pss_mib(s), pss_anon_mib(s), s->p.fds, s->p.threads,
                               s->p.workers, errors);
                fflush(stdout);
                if (sprout_mono_ns() >= until)
                        break;
                int64_t next = t0 + (int64_t)((double)n * sample_s * 1e9);
                int64_t now = sprout_mono_ns();
                if (next > now)
                        usleep((useconds_t)((next < until ? next - now : until - now) / 1000));
        }
        for (long i = 0; i < clients; i++)
                pthread_join(th[i].t, NULL);
        unsigned long ops = 0;
        errors = 0;
        for (long i = 0; i < clients; i++) {
                ops += atomic_load(&th[i].ops);
                errors += atomic_load(&th[i].errors);
        }
        double secs = (double)(sprout_mono_ns() - t0) / 1e9;
        /* Quarters of the samples: the first is warm-up, the second the reference. */
        size_t q1 = n / 4, q2 = n / 2, q3 = n - n / 4;
        static const struct {
                const char *name;
                double (*f)(const struct soak_sample *);
        } figs[] = {{"rss_mib", rss_mib}, {"pss_mib", pss_mib}, {"anon_mib", pss_anon_mib},
                    {"fds", fds},         {"threads", threads}, {"workers", workers}};
        if (!json)
                printf("%lu calls in %.0f s (%.0f/s), %lu failed\n  %-8s %12s %12s %8s\n", ops,
                       secs, (double)ops / secs, errors, "figure", "2nd quarter", "last quarter",
                       "change");
        for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
                double a = median(smp, q1, q2, figs[i].f), b = median(smp, q3, n, figs[i].f);
                double pct = a > 0 ? (b - a) / a * 100 : 0;
                if (json)
                        printf("{\"metric\":\"soak %s\",\"second_quarter\":%.2f,\"last_quarter\":"
                               "%.2f,\"change_pct\":%.2f,\"samples\":%zu}\n",
                               figs[i].name, a, b, pct, n);
                else
                        printf("  %-8s %12.1f %12.1f %+7.1f%%\n", figs[i].name, a, b, pct);
        }
        if (errors)
                for (long i = 0; i < clients; i++)
                        if (th[i].first_error[0]) {
                                fprintf(stderr, "first failure: %s\n", th[i].first_error);
                                break;
                        }
        if (n < 8)
                fprintf(stderr,
                        "sprout bench soak: only %zu samples: run longer or sample more "
                        "often for the quarters to mean anything\n",
                        n);
        free(smp);
        free(th);
        client_close(&cl);
        return errors ? 1 : 0;
}
