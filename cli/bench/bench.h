/* The benchmarks behind `sprout bench`: each prints numbers (medians and tails over many runs),
 * never pass/fail, and returns the process exit code. */
#ifndef SPROUT_CLI_BENCH_H
#define SPROUT_CLI_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "sprout/stats.h"

/* Restore, invoke, memory and base-load figures of n clones of the snapshot file, beside the KVM
 * floor and (qemu) QEMU restoring the same guest. */
/* old_rng_path: the same image prewarmed with `--append sprout.seed=off`, for the identity rows;
 * may be NULL. */
int bench_clone(const char *path, const char *old_rng_path, long n, long pool, const char *req,
                bool qemu, bool json);

/* n cold boots of the image to READY, interleaved with QEMU booting the same kernel + initrd. */
int bench_boot(const char *image, long n, bool qemu, bool json);

/* sproutd's API: one-shot throughput for `seconds` at 1, 2 and 8 clients, and n sequential warm
 * invocations through the socket and in-process. */
int bench_api(const char *socket, const char *id, long seconds, long n, const char *req, bool json);

/* Live idle clones through the API: every `step` clones up to n, the creation rate, host memory
 * per clone, RSS, descriptors, idle host CPU (over idle_s seconds) and first-invoke latency of
 * `sample` clones. */
int bench_density(const char *socket, const char *id, long n, long step, long batch, long sample,
                  double idle_s, bool json);

/* Mixed load through the API for minutes (one-shots, named clones created, invoked and deleted,
 * warm invokes), sampling the daemon's and workers' RSS, descriptors and threads every sample_s
 * seconds: a leak shows as a slope. */
int bench_soak(const char *socket, const char *id, double minutes, long clients, double sample_s,
               bool json);

/* ---- procs.c: sproutd and its workers, as /proc shows them ---- */
struct bench_procs {
        uint64_t rss_kib; /* broker + workers */
        /* Their proportional set (smaps_rollup): a page mapped by k of them counts 1/k in each,
         * so the base pages every worker's shells map count once, where RSS counts them in each;
         * and of it the anonymous part, what clones and the processes themselves wrote. */
        uint64_t pss_kib, pss_anon_kib;
        unsigned fds, workers, threads;
        uint64_t cpu_ticks; /* user + system, every thread of theirs */
};
/* The daemon's pid: the peer of a connection to its socket (0 if none answers). */
pid_t bench_daemon_pid(const char *socket);
/* The daemon and its children (the workers), found by their parent in /proc. */
void bench_sample_procs(pid_t daemon, struct bench_procs *p);
/* Context switches so far of every thread of the daemon and its workers: the thread hand-offs a
 * request costs, a count that holds on any host (an emulated one too). Threads that ended are
 * not counted, so compare over a window in which none does. */
uint64_t bench_ctx_switches(pid_t daemon);
/* The daemon's pid and its children's (the workers), up to max; returns how many. */
size_t bench_proc_pids(pid_t daemon, pid_t *out, size_t max);

/* ---- host_cpu.c: every process's CPU over a window, for where idle CPU goes ---- */
struct bench_task {
        pid_t pid;
        char comm[32];  /* letters, digits and ._:/-+ only; anything else is '?' */
        uint64_t ticks; /* user + system, USER_HZ */
};
struct bench_host_cpu {
        size_t n;
        struct bench_task *t;
};
/* Every process /proc lists now; 0, or -1 out of memory (h is then empty). */
int bench_host_cpu_read(struct bench_host_cpu *h);
void bench_host_cpu_free(struct bench_host_cpu *h);
/* The max largest users of CPU from a to b by command name, the pids in skip left out; returns
 * how many are in top. */
size_t bench_host_cpu_top(const struct bench_host_cpu *a, const struct bench_host_cpu *b,
                          const pid_t *skip, size_t nskip, struct bench_task *top, size_t max);

/* A JSON row's "cdf":[[percentile,value],...] member, for the CDF plots (scripts/bench-plots.sh).
 */
static inline void bench_print_cdf(const struct latency_summary *s)
{
        static const double cdf[] = {0,  1,  2,  5,  10, 20, 30,   40,   50, 60,
                                     70, 80, 90, 95, 98, 99, 99.5, 99.9, 100};
        printf(",\"cdf\":[");
        for (size_t i = 0; s->sorted && i < sizeof(cdf) / sizeof(cdf[0]); i++)
                printf("%s[%g,%.4f]", i ? "," : "", cdf[i], summary_at(s, cdf[i]));
        printf("]");
}

/* One result row: a human line, or with json one JSON object. */
static inline void bench_row(const char *what, struct latency_summary s, const char *unit,
                             bool json)
{
        if (json) {
                printf("{\"metric\":\"%s\",\"unit\":\"%s\",\"n\":%zu,\"min\":%.4f,\"p50\":%.4f,"
                       "\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f",
                       what, unit, s.n, s.min, s.p50, s.p90, s.p99, s.max);
                bench_print_cdf(&s);
                printf("}\n");
        } else
                printf("  %-34s n=%-5zu p50 %9.3f  p90 %9.3f  p99 %9.3f  max %9.3f %s\n", what, s.n,
                       s.p50, s.p90, s.p99, s.max, unit);
}

/* A peer that could not be measured: a visible "PEER: FAILED: why" row, not a missing one. */
static inline void bench_failed_row(const char *peer, const char *why, bool json)
{
        if (json) {
                json_t *o = json_pack("{s:s, s:s}", "metric", peer, "failed", why);
                char *s = json_dumps(o, JSON_COMPACT);
                printf("%s\n", s);
                free(s);
                json_decref(o);
        } else {
                printf("  %s: FAILED: %s\n", peer, why);
        }
}

#endif
