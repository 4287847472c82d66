/* The one clock helper of all host code: CLOCK_MONOTONIC for durations and deadlines,
 * CLOCK_REALTIME only for wall-clock facts (a snapshot's creation time, a clone's identity). */
#ifndef SPROUT_CLOCK_H
#define SPROUT_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
int64_t sprout_mono_ns(void);
/* Nanoseconds of CLOCK_REALTIME since the epoch. */
int64_t sprout_real_ns(void);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC, so a step of the wall clock can
 * neither stretch nor cut them; pair it with sprout_mono_after_ms. */
void sprout_cond_init_mono(pthread_cond_t *cv);
/* The CLOCK_MONOTONIC instant ms from now, for pthread_cond_timedwait on such a variable. */
struct timespec sprout_mono_after_ms(int64_t ms);

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
