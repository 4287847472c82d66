/* sprout bench density SNAPSHOT_ID: how many live idle clones one host holds, through the API. It
 * creates clones up to N in batches and, at every step, prints the creation rate of that step, host
 * memory per clone (the drop of MemAvailable, kernel memory included, and the /proc/meminfo parts
 * it went to), the broker's and workers' RSS and descriptors, host CPU while everything is idle
 * (/proc/stat), and the first-invoke latency of a random sample of clones. Must run as root to read
 * the workers' /proc entries. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/bench.h"
#include "client.h"
#include "sprout/clock.h"
#include "sprout/stats.h"

#define BATCH_MAX 256

/* The /proc/meminfo fields that say where a clone's host memory goes (kB). SecPageTables is
 * KVM's own page tables (the TDP/EPT/NPT MMU, Linux 6.0 and later); a field the kernel lacks
 * reads 0. */
enum { MI_AVAIL, MI_ANON, MI_PTAB, MI_SECPTAB, MI_KSTACK, MI_SUNRECL, MI_N };
static const char *const mi_names[MI_N] = {"MemAvailable",  "AnonPages",   "PageTables",
                                           "SecPageTables", "KernelStack", "SUnreclaim"};

static void meminfo_kib(int64_t v[MI_N])
{
        for (int i = 0; i < MI_N; i++)
                v[i] = 0;
        FILE *f = fopen("/proc/meminfo", "r");
        char line[256];
        while (f && fgets(line, sizeof(line), f)) {
                char name[64];
                long long kb;
                if (sscanf(line, "%63[^:]: %lld kB", name, &kb) != 2)
                        continue;
                for (int i = 0; i < MI_N; i++)
                        if (!strcmp(name, mi_names[i]))
                                v[i] = kb;
        }
        if (f)
                fclose(f);
}

/* Busy and total jiffies of all CPUs. */
static void cpu_jiffies(uint64_t *busy, uint64_t *total)
{
        unsigned long long v[8] = {0};
        FILE *f = fopen("/proc/stat", "r");
        if (f) {
                if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                           &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
                        memset(v, 0, sizeof(v));
                fclose(f);
        }
        *total = 0;
        for (int i = 0; i < 8; i++)
                *total += v[i];
        *busy = *total - v[3] - v[4]; /* idle, iowait */
}

#define IDLE_OTHERS     3
#define MAX_SPROUT_PIDS 4096

/* Host CPU over an idle window: all of it, sproutd's and its workers' share, and the largest
 * other users (by name), each in percent of all CPUs. */
struct idle_cpu {
        double all, sprout;
        size_t n_others;
        struct bench_task others[IDLE_OTHERS];
        double others_pct[IDLE_OTHERS];
};

/* Host CPU (/proc/stat) over idle_s seconds in which nothing is asked of the daemon. */
static void idle_cpu_read(double idle_s, pid_t dpid, struct idle_cpu *c)
{
        uint64_t b0, t0j, b1, t1j;
        struct bench_procs p0, p1;
        struct bench_host_cpu h0, h1;
        memset(c, 0, sizeof(*c));
        bench_host_cpu_read(&h0);
        bench_sample_procs(dpid, &p0);
        cpu_jiffies(&b0, &t0j);
        usleep((useconds_t)(idle_s * 1e6));
        cpu_jiffies(&b1, &t1j);
        bench_sample_procs(dpid, &p1);
        bench_host_cpu_read(&h1);
        /* /proc/stat and /proc/PID/stat both count in USER_HZ ticks. */
        double total = t1j > t0j ? (double)(t1j - t0j) : 0;
        if (total > 0) {
                c->all = 100.0 * (double)(b1 - b0) / total;
                if (p1.cpu_ticks >= p0.cpu_ticks)
                        c->sprout = 100.0 * (double)(p1.cpu_ticks - p0.cpu_ticks) / total;
                pid_t *skip = calloc(MAX_SPROUT_PIDS, sizeof(*skip));
                size_t nskip = skip ? bench_proc_pids(dpid, skip, MAX_SPROUT_PIDS - 1) : 0;
                if (skip) /* and this benchmark, reading /proc */
                        skip[nskip++] = getpid();
                c->n_others = bench_host_cpu_top(&h0, &h1, skip, nskip, c->others, IDLE_OTHERS);
                for (size_t i = 0; i < c->n_others; i++)
                        c->others_pct[i] = 100.0 * (double)c->others[i].ticks / total;
                free(skip);
        }
        bench_host_cpu_free(&h0);
        bench_host_cpu_free(&h1);
}

/* The idle window's largest other users: `"idle_others":[{"comm":..,"pct":..},...]` for a JSON
 * row (names are plain characters, bench_task), or "kdamond.0 1.20%, ..." for a human one. */
static void idle_others_text(const struct idle_cpu *c, bool json, char *out, size_t len)
{
        size_t o = 0;
        out[0] = '\0';
        if (json)
                o += (size_t)snprintf(out + o, len - o, "\"idle_others\":[");
        for (size_t i = 0; i < c->n_others && o < len; i++)
                o += (size_t)snprintf(
                    out + o, len - o, json ? "%s{\"comm\":\"%s\",\"pct\":%.2f}" : "%s%s %.2f%%",
                    i ? (json ? "," : ", ") : "", c->others[i].comm, c->others_pct[i]);
        if (o < len)
                snprintf(out + o, len - o, json ? "]" : (c->n_others ? "" : "none"));
}

struct density {
        struct client cl;
        const char *snap;
        char (*ids)[40];
        size_t n;
};

static int create_batch(struct density *ds, unsigned k)
{
        char body[160];
        snprintf(body, sizeof(body), "{\"snapshot\":\"%s\",\"count\":%u}", ds->snap, k);
        struct client_resp r;
        int e = client_call(&ds->cl, "POST", "/v1/clones", body, strlen(body), 600000, &r);
        if (e < 0 || r.status != 201) {
                fprintf(stderr, "sprout bench density: creating clone %zu: %ld %.300s\n", ds->n,
                        e < 0 ? (long)e : r.status, r.body ? r.body : ds->cl.errbuf);
                client_resp_free(&r);
                return -1;
        }
        json_t *arr = json_object_get(r.json, "clones");
        for (size_t i = 0; i < json_array_size(arr); i++)
                snprintf(ds->ids[ds->n++], 40, "%s",
                         json_string_value(json_object_get(json_array_get(arr, i), "id")));
        client_resp_free(&r);
        return 0;
}

/* First invocations of a random sample of clones not invoked before (swapped to the end). A
 * failed one is counted in *failed, and the first is printed: a clone that is gone (reaped idle,
 * its worker died) must not leave the sample smaller without a word. */
static struct latency_summary sample_invokes(struct density *ds, size_t *invoked, size_t k,
                                             size_t *failed)
{
        double *lat = calloc(k ? k : 1, sizeof(*lat));
        size_t got = 0;
        for (size_t i = 0; lat && i < k && *invoked < ds->n; i++) {
                size_t left = ds->n - *invoked;
                size_t j = (size_t)random() % left;
                char tmp[40];
                memcpy(tmp, ds->ids[j], 40);
                memcpy(ds->ids[j], ds->ids[left - 1], 40);
                memcpy(ds->ids[left - 1], tmp, 40);
                (*invoked)++;
                char path[128];
                snprintf(path, sizeof(path), "/v1/clones/%s/invoke", tmp);
                struct client_resp r;
                int64_t t0 = sprout_mono_ns();
                int e = client_call(&ds->cl, "POST", path, "{}", 2, 60000, &r);
                double ms = (double)(sprout_mono_ns() - t0) / 1e6;
                if (e == 0 && r.status == 200) {
                        lat[got++] = ms;
                } else if ((*failed)++ == 0) {
                        fprintf(stderr, "sprout bench density: invoking clone %s: %ld %.300s\n",
                                tmp, e < 0 ? (long)e : r.status, r.body ? r.body : ds->cl.errbuf);
                }
                client_resp_free(&r);
        }
        struct latency_summary s = summarize(lat, got);
        free(lat);
        return s;
}

/* What sproutd found this host's settings cost every clone (GET /v1/health, "host_advice"):
 * the run's figures depend on them. An array, empty when the daemon says nothing. */
static json_t *host_advice(struct client *cl)
{
        struct client_resp r;
        json_t *a = NULL;
        if (client_call(cl, "GET", "/v1/health", NULL, 0, 10000, &r) == 0 && r.status == 200)
                a = json_incref(json_object_get(r.json, "host_advice"));
        client_resp_free(&r);
        if (!json_is_array(a)) {
                json_decref(a);
                a = json_array();
        }
        for (size_t i = 0; i < json_array_size(a); i++)
                if (!json_is_string(json_array_get(a, i)))
                        json_array_set_new(a, i, json_string("?"));
        return a;
}

int bench_density(const char *socket, const char *id, long n, long step, long batch, long sample,
                  double idle_s, bool json)
{
        struct density ds = {.snap = id};
        if (client_open(&ds.cl, socket))
                return 3;
        pid_t dpid = bench_daemon_pid(ds.cl.socket);
        ds.ids = calloc((size_t)n, sizeof(*ds.ids));
        if (!ds.ids || !dpid) {
                fprintf(stderr, "sprout bench density: %s\n",
                        ds.ids ? "cannot find sproutd's pid on its socket" : "out of memory");
                client_close(&ds.cl);
                free(ds.ids);
                return 1;
        }
        srandom(1);
        int64_t mi0[MI_N];
        meminfo_kib(mi0);
        struct bench_procs p0;
        bench_sample_procs(dpid, &p0);
        /* What the host spends with no clone at all (its own services, sproutd idle): the idle
         * figures below are read against it. */
        struct idle_cpu base;
        idle_cpu_read(idle_s, dpid, &base);
        double base_cpu = base.all;
        char base_others[256];
        idle_others_text(&base, json, base_others, sizeof(base_others));
        json_t *advice = host_advice(&ds.cl);
        if (json) {
                char *a = json_dumps(advice, JSON_COMPACT);
                printf("{\"bench\":\"density\",\"clones\":0,\"idle_cpu_pct\":%.2f,%s,"
                       "\"host_advice\":%s}\n",
                       base_cpu, base_others, a ? a : "[]");
                free(a);
        } else {
                printf("host CPU with no clones: %.2f%% (over %.0f s; %s)\n", base_cpu, idle_s,
                       base_others);
                for (size_t i = 0; i < json_array_size(advice); i++)
                        printf("host: %s\n", json_string_value(json_array_get(advice, i)));
        }
        json_decref(advice);
        if (!json)
                printf("%7s %9s %12s %11s %9s %7s %8s %8s %10s %10s %10s\n", "clones", "create/s",
                       "host KiB/cl", "RSS MiB", "workers", "fds", "threads", "idle CPU",
                       "of sprout", "inv p50 ms", "inv p99 ms");
        size_t invoked = 0;
        int rc = 0;
        while (ds.n < (size_t)n && rc == 0) {
                size_t target = ds.n + (size_t)step > (size_t)n ? (size_t)n : ds.n + (size_t)step;
                size_t from = ds.n;
                int64_t t0 = sprout_mono_ns();
                while (ds.n < target && rc == 0) {
                        size_t k = target - ds.n < (size_t)batch ? target - ds.n : (size_t)batch;
                        rc = create_batch(&ds, (unsigned)k);
                }
                double secs = (double)(sprout_mono_ns() - t0) / 1e9;
                if (rc)
                        break;
                double rate = (double)(ds.n - from) / secs;
                struct idle_cpu ic;
                idle_cpu_read(idle_s, dpid, &ic);
                double idle_cpu = ic.all, sprout_cpu = ic.sprout;
                int64_t mi[MI_N];
                meminfo_kib(mi);
                /* Per clone: the drop of what is available, then the rise of each part of it. */
                double pc[MI_N];
                for (int i = 0; i < MI_N; i++)
                        pc[i] = (double)(i == MI_AVAIL ? mi0[i] - mi[i] : mi[i] - mi0[i]) /
                                (double)ds.n;
                double per_clone = pc[MI_AVAIL];
                struct bench_procs pr;
                bench_sample_procs(dpid, &pr);
                size_t failed = 0;
                struct latency_summary s = sample_invokes(&ds, &invoked, (size_t)sample, &failed);
                if (failed)
                        rc = 1; /* printed with the step's row below, then the run stops */
                char others[256];
                idle_others_text(&ic, json, others, sizeof(others));
                if (json)
                        printf("{\"bench\":\"density\",\"clones\":%zu,\"create_per_s\":%.1f,"
                               "\"host_kib_per_clone\":%.1f,\"rss_kib\":%llu,\"workers\":%u,"
                               "\"fds\":%u,\"threads\":%u,\"idle_cpu_pct\":%.2f,"
                               "\"idle_cpu_added_pct\":%.2f,\"idle_sprout_cpu_pct\":%.2f,"
                               "\"invoke_n\":%zu,\"invoke_failed\":%zu,\"invoke_p50_ms\":%.3f,"
                               "\"invoke_p99_ms\":%.3f,%s,\"kib_per_clone\":{\"anon\":%.1f,"
                               "\"page_tables\":%.1f,\"kvm_page_tables\":%.1f,"
                               "\"kernel_stacks\":%.1f,\"slab_unreclaimable\":%.1f}}\n",
                               ds.n, rate, per_clone, (unsigned long long)pr.rss_kib, pr.workers,
                               pr.fds, pr.threads, idle_cpu, idle_cpu - base_cpu, sprout_cpu, s.n,
                               failed, s.p50, s.p99, others, pc[MI_ANON], pc[MI_PTAB],
                               pc[MI_SECPTAB], pc[MI_KSTACK], pc[MI_SUNRECL]);
                else
                        printf("%7zu %9.1f %12.1f %11.1f %9u %7u %8u %7.2f%% %9.2f%% %10.3f "
                               "%10.3f\n%7s   of it, KiB per clone: anonymous %.1f, page tables "
                               "%.1f, KVM's page tables %.1f, kernel stacks %.1f, unreclaimable "
                               "slab %.1f\n%7s   idle CPU elsewhere: %s\n",
                               ds.n, rate, per_clone, (double)pr.rss_kib / 1024.0, pr.workers,
                               pr.fds, pr.threads, idle_cpu, sprout_cpu, s.p50, s.p99, "",
                               pc[MI_ANON], pc[MI_PTAB], pc[MI_SECPTAB], pc[MI_KSTACK],
                               pc[MI_SUNRECL], "", others);
                if (failed)
                        fprintf(stderr,
                                "sprout bench density: %zu of %zu sampled clones failed at %zu "
                                "live: stopping (a clone idle past sproutd's --idle-timeout-s "
                                "is reaped: raise it for a slow run)\n",
                                failed, failed + s.n, ds.n);
                fflush(stdout);
        }
        /* Leave the daemon as it was. */
        for (size_t i = 0; i < ds.n; i++) {
                char path[128];
                snprintf(path, sizeof(path), "/v1/clones/%s", ds.ids[i]);
                struct client_resp r;
                if (client_call(&ds.cl, "DELETE", path, NULL, 0, 60000, &r) == 0)
                        client_resp_free(&r);
        }
        client_close(&ds.cl);
        free(ds.ids);
        return rc ? 1 : 0;
}
