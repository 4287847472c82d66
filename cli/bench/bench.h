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
/* The daemon and its children (the workers), from every thread's children list. */
void bench_sample_procs(pid_t daemon, struct bench_procs *p);
/* Context switches so far of every thread of the daemon and its workers: the thread hand-offs a
 * request costs, a count that holds on any host (an emulated one too). Threads that ended are
 * not counted, so compare over a window in which none does. */
uint64_t bench_ctx_switches(pid_t daemon);

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
