/* Small helpers shared by the writer and the reader: clocks and the default thread count. */
#include <time.h>
#include <unistd.h>

#include "snapshot_internal.h"

double snap_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

unsigned snap_default_threads(void)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
                return 1;
        return n > SNAP_MAX_THREADS ? SNAP_MAX_THREADS : (unsigned)n;
}
