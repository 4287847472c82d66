/* The clock helper behind include/sprout/clock.h. */
#include <time.h>

#include "sprout/clock.h"

static int64_t clock_ns(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t sprout_mono_ns(void)
{
        return clock_ns(CLOCK_MONOTONIC);
}

int64_t sprout_real_ns(void)
{
        return clock_ns(CLOCK_REALTIME);
}

void sprout_cond_init_mono(pthread_cond_t *cv)
{
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(cv, &ca);
        pthread_condattr_destroy(&ca);
}

struct timespec sprout_mono_after_ms(int64_t ms)
{
        int64_t t = sprout_mono_ns() + ms * 1000000LL;
        return (struct timespec){.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
}
