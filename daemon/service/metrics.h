/* sproutd's counters and latency histograms, updated lock-free from any thread; the API renders
 * them for GET /metrics. */
#ifndef SPROUT_SERVICE_METRICS_H
#define SPROUT_SERVICE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HISTO_BUCKETS       17
#define METRICS_ERROR_SLOTS 64

/* Upper bounds of the first HISTO_BUCKETS - 1 buckets, in seconds; the last is +Inf. */
extern const double histo_bounds[HISTO_BUCKETS - 1];

struct histo {
        atomic_uint_fast64_t bucket[HISTO_BUCKETS]; /* not cumulative; the renderer sums */
        atomic_uint_fast64_t count;
        atomic_uint_fast64_t sum_ns;
};

struct metrics {
        struct histo restore; /* VMM restore of a clone (state ioctls, + shell creation unpooled) */
        struct histo clone;   /* a whole clone creation in the daemon, base load included */
        struct histo invoke;  /* one invocation on a clone */
        struct histo oneshot; /* a one-shot call: take a clone, invoke it */
        struct histo request; /* every HTTP request, parse to response queued */
        /* Error responses by the API's code (the API numbers them; the service only counts). */
        atomic_uint_fast64_t errors[METRICS_ERROR_SLOTS];
        atomic_uint_fast64_t requests, invocations, invoke_failures;
        atomic_uint_fast64_t clones_created, clones_destroyed, clones_reaped_idle;
        atomic_uint_fast64_t oneshot_reused, oneshot_fresh;
        atomic_uint_fast64_t ready_taken;    /* fresh clones that were ready clones */
        atomic_uint_fast64_t ready_missed;   /* one-shots that found no ready clone */
        atomic_uint_fast64_t recycled_taken; /* ready clones handed out that were recycled */
        atomic_uint_fast64_t prewarms_ok, prewarms_failed, base_loads;
        atomic_uint_fast64_t workers_died; /* worker processes that died or were killed */
};

void histo_observe(struct histo *h, int64_t ns);

#endif
