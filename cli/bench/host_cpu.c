/* Where the host's CPU went over a window, beyond sproutd and its workers: every process's user +
 * system ticks from /proc/PID/stat, read before and after, summed by command name. The density
 * benchmark names what its idle CPU is (the host's page-aging threads, its monitoring agents), so
 * a figure above the goal says whose it is. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

/* comm and utime + stime of one process; false if it is gone. The name is the text between the
 * first "(" and the last ")" (it may hold either), cut to what a log or JSON can carry. */
static bool read_task(pid_t pid, struct bench_task *t)
{
        char path[64], st[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        size_t got = fread(st, 1, sizeof(st) - 1, f);
        fclose(f);
        st[got] = '\0';
        char *open = strchr(st, '('), *close = strrchr(st, ')');
        unsigned long long ut, sy;
        if (!open || !close || close < open ||
            sscanf(close + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &sy) !=
                2)
                return false;
        size_t len = (size_t)(close - open - 1);
        if (len >= sizeof(t->comm))
                len = sizeof(t->comm) - 1;
        for (size_t i = 0; i < len; i++) {
                char c = open[1 + i];
                t->comm[i] = isalnum((unsigned char)c) || strchr("._:/-+", c) ? c : '?';
        }
        t->comm[len] = '\0';
        /* A kernel worker's name carries the queue it last ran ("kworker/0:2-events"): all of
         * them are one pool. */
        if (!strncmp(t->comm, "kworker/", 8))
                snprintf(t->comm, sizeof(t->comm), "kworkers");
        t->pid = pid;
        t->ticks = ut + sy;
        return true;
}

int bench_host_cpu_read(struct bench_host_cpu *h)
{
        h->n = 0;
        size_t cap = 0;
        h->t = NULL;
        DIR *d = opendir("/proc");
        if (!d)
                return -1;
        for (struct dirent *e; (e = readdir(d));) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                if (h->n == cap) {
                        size_t nc = cap ? cap * 2 : 256;
                        struct bench_task *nt = realloc(h->t, nc * sizeof(*nt));
                        if (!nt) {
                                closedir(d);
                                return -1;
                        }
                        h->t = nt;
                        cap = nc;
                }
                if (read_task((pid_t)pid, &h->t[h->n]))
                        h->n++;
        }
        closedir(d);
        return 0;
}

void bench_host_cpu_free(struct bench_host_cpu *h)
{
        free(h->t);
        h->t = NULL;
        h->n = 0;
}

static bool is_excluded(pid_t pid, const pid_t *skip, size_t nskip)
{
        for (size_t i = 0; i < nskip; i++)
                if (skip[i] == pid)
                        return true;
        return false;
}

size_t bench_host_cpu_top(const struct bench_host_cpu *a, const struct bench_host_cpu *b,
                          const pid_t *skip, size_t nskip, struct bench_task *top, size_t max)
{
        /* By name: a pool of kernel workers or a service's processes count as one. A pid is
         * matched with its earlier self whatever its name now; processes that started inside the
         * window count from zero, ones that ended are not seen. */
        struct bench_task *sum = calloc(b->n ? b->n : 1, sizeof(*sum));
        size_t ns = 0;
        if (!sum)
                return 0;
        for (size_t i = 0; i < b->n; i++) {
                const struct bench_task *t = &b->t[i];
                if (is_excluded(t->pid, skip, nskip))
                        continue;
                uint64_t before = 0;
                for (size_t j = 0; j < a->n; j++)
                        if (a->t[j].pid == t->pid) {
                                before = a->t[j].ticks;
                                break;
                        }
                if (t->ticks <= before)
                        continue;
                size_t k = 0;
                while (k < ns && strcmp(sum[k].comm, t->comm))
                        k++;
                if (k == ns)
                        sum[ns++] = (struct bench_task){.pid = t->pid};
                memcpy(sum[k].comm, t->comm, sizeof(sum[k].comm));
                sum[k].ticks += t->ticks - before;
        }
        size_t out = 0;
        for (; out < max; out++) {
                size_t best = ns;
                for (size_t k = 0; k < ns; k++)
                        if (sum[k].ticks && (best == ns || sum[k].ticks > sum[best].ticks))
                                best = k;
                if (best == ns)
                        break;
                top[out] = sum[best];
                sum[best].ticks = 0;
        }
        free(sum);
        return out;
}
