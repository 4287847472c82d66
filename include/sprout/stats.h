/* Order statistics over a sample of latencies, for the reports of the CLI and the benchmarks. */
#ifndef SPROUT_STATS_H
#define SPROUT_STATS_H

#include <stddef.h>
#include <stdlib.h>

struct latency_summary {
        size_t n;
        double min, p50, p90, p99, max, mean;
        const double *sorted; /* the sample, sorted; valid as long as the summarized array */
};

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* Sorts v in place; nearest-rank percentiles. */
static inline struct latency_summary summarize(double *v, size_t n)
{
        struct latency_summary s = {.n = n};
        if (n == 0)
                return s;
        qsort(v, n, sizeof(*v), cmp_double);
        s.sorted = v;
        double sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += v[i];
        s.min = v[0];
        s.max = v[n - 1];
        s.mean = sum / (double)n;
        s.p50 = v[(n - 1) * 50 / 100];
        s.p90 = v[(n - 1) * 90 / 100];
        s.p99 = v[(n - 1) * 99 / 100];
        return s;
}

/* The nearest-rank value at percentile pct (0..100) of a summarized sample. */
static inline double summary_at(const struct latency_summary *s, double pct)
{
        if (!s->n || !s->sorted)
                return 0;
        size_t i = (size_t)((double)(s->n - 1) * pct / 100.0);
        return s->sorted[i < s->n ? i : s->n - 1];
}

#endif
