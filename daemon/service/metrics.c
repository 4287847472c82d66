/* The service's metrics: lock-free histograms and counters any thread updates. The API layer
 * renders them (api_metrics.c). */
#include "service.h"

const double histo_bounds[HISTO_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                1,      2.5,     5,      10};

void histo_observe(struct histo *h, int64_t ns)
{
        double s = (double)ns / 1e9;
        unsigned i = 0;
        while (i < HISTO_BUCKETS - 1 && s > histo_bounds[i])
                i++;
        atomic_fetch_add(&h->bucket[i], 1);
        atomic_fetch_add(&h->count, 1);
        atomic_fetch_add(&h->sum_ns, ns > 0 ? (uint64_t)ns : 0);
}
