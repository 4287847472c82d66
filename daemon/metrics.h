/* sproutd's counters and latency histograms, updated lock-free from any thread and rendered in the
 * Prometheus text format for GET /metrics. */
#ifndef SPROUTD_METRICS_H
#define SPROUTD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api_errors.h"

#define HISTO_BUCKETS 17

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
        atomic_uint_fast64_t errors[API_E_COUNT];
        atomic_uint_fast64_t requests, invocations, invoke_failures;
        atomic_uint_fast64_t clones_created, clones_destroyed, clones_reaped_idle;
        atomic_uint_fast64_t oneshot_reused, oneshot_fresh;
        atomic_uint_fast64_t ready_taken; /* fresh clones that were ready clones */
        atomic_uint_fast64_t prewarms_ok, prewarms_failed, base_loads;
};

void histo_observe(struct histo *h, int64_t ns);

struct sproutd;
/* The whole exposition, malloc'd; NULL when out of memory. */
char *metrics_render(struct sproutd *d, size_t *len);

#endif
