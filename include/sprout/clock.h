/* The one clock helper of all host code: CLOCK_MONOTONIC for durations and deadlines,
 * CLOCK_REALTIME only for wall-clock facts (a snapshot's creation time, a clone's identity). */
#ifndef SPROUT_CLOCK_H
#define SPROUT_CLOCK_H

#include <stdint.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
int64_t sprout_mono_ns(void);
/* Nanoseconds of CLOCK_REALTIME since the epoch. */
int64_t sprout_real_ns(void);

/* CLOCK_MONOTONIC in milliseconds and seconds, for latency reports. */
static inline double sprout_mono_ms(void)
{
        return (double)sprout_mono_ns() / 1e6;
}

static inline double sprout_mono_s(void)
{
        return (double)sprout_mono_ns() / 1e9;
}

#endif
