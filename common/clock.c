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
