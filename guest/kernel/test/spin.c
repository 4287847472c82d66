/* sprout kernel measurement: a CPU-bound user loop that records every gap > 20 us in its own
 * execution (time the vCPU spent elsewhere: guest timer ticks, host preemption). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double gaps[100000];

int main(int argc, char **argv)
{
        double secs = argc > 1 ? atof(argv[1]) : 5, t0 = now(), prev = t0, t, sum = 0;
        int n = 0;

        while ((t = now()) - t0 < secs) {
                if (t - prev > 20e-6 && n < 100000) {
                        gaps[n++] = t - prev;
                        sum += t - prev;
                }
                prev = t;
        }
        qsort(gaps, n, sizeof(gaps[0]), cmp);
        printf("spin: %.2f s: %d gaps > 20us (%.1f/s), lost %.1f%% of the time, gap median %.2f ms "
               "p90 %.2f ms\n",
               t - t0, n, n / (t - t0), 100 * sum / (t - t0), n ? gaps[n / 2] * 1e3 : 0,
               n ? gaps[n * 9 / 10] * 1e3 : 0);
        {
                int i, m = 0;
                double big = 0;

                for (i = 0; i < n; i++)
                        if (gaps[i] > 0.3e-3) {
                                m++;
                                big += gaps[i];
                        }
                printf("spin: gaps > 0.3 ms: %d (%.1f/s), %.1f%% of the time, mean %.2f ms, median "
                       "%.2f ms\n",
                       m, m / (t - t0), 100 * big / (t - t0), m ? big / m * 1e3 : 0,
                       m ? gaps[n - m + m / 2] * 1e3 : 0);
        }
        return 0;
}
