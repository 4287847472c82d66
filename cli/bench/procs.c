/* What the benchmarks read of sproutd and its workers from /proc: the daemon found through its
 * socket, then RSS, descriptors, threads, CPU time and context switches of it and its children
 * (the workers). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/bench.h"

/* The daemon's pid: the peer of a connection to its socket. */
pid_t bench_daemon_pid(const char *path)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct ucred cr = {0};
        socklen_t len = sizeof(cr);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
                cr.pid = 0;
        if (s >= 0)
                close(s);
        return cr.pid;
}

static void add_proc(pid_t pid, struct bench_procs *p)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
                unsigned long long kb;
                unsigned t;
                if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
                        p->rss_kib += kb;
                if (sscanf(line, "Threads: %u", &t) == 1)
                        p->threads += t;
        }
        if (f)
                fclose(f);
        /* utime and stime are fields 14 and 15, after the ")" that ends the command name. */
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        char st[1024];
        size_t got = f ? fread(st, 1, sizeof(st) - 1, f) : 0;
        st[got] = '\0';
        char *paren = strrchr(st, ')');
        unsigned long long ut, sy;
        if (paren && sscanf(paren + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &ut, &sy) == 2)
                p->cpu_ticks += ut + sy;
        if (f)
                fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
        f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
                unsigned long long kb;
                if (sscanf(line, "Pss: %llu kB", &kb) == 1)
                        p->pss_kib += kb;
                if (sscanf(line, "Pss_Anon: %llu kB", &kb) == 1)
                        p->pss_anon_kib += kb;
        }
        if (f)
                fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));)
                p->fds += e->d_name[0] != '.';
        if (d)
                closedir(d);
}

/* The parent of pid, from /proc/PID/stat (after the ")" that ends the command name); -1 if it
 * is gone. */
static pid_t parent_of(pid_t pid)
{
        char path[64], st[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(st, 1, sizeof(st) - 1, f) : 0;
        if (f)
                fclose(f);
        st[got] = '\0';
        char *paren = strrchr(st, ')');
        int ppid;
        return paren && sscanf(paren + 1, " %*c %d", &ppid) == 1 ? (pid_t)ppid : -1;
}

/* Calls fn for the daemon and each of its children (the workers); returns how many children.
 * Children are found by their parent in /proc: a thread's children list may miss one while
 * others come and go (proc(5), /proc/pid/task/tid/children). */
static unsigned each_proc(pid_t daemon, void (*fn)(pid_t, void *), void *arg)
{
        fn(daemon, arg);
        unsigned n = 0;
        DIR *d = opendir("/proc");
        for (struct dirent *e; d && (e = readdir(d));) {
                pid_t pid = (pid_t)atoi(e->d_name);
                if (pid > 0 && pid != daemon && parent_of(pid) == daemon) {
                        fn(pid, arg);
                        n++;
                }
        }
        if (d)
                closedir(d);
        return n;
}

static void sample_one(pid_t pid, void *arg)
{
        add_proc(pid, arg);
}

void bench_sample_procs(pid_t daemon, struct bench_procs *p)
{
        memset(p, 0, sizeof(*p));
        p->workers = each_proc(daemon, sample_one, p);
}

/* Every thread's context switches, voluntary or not (each thread's own status file: the
 * process's counts only its first thread's). */
static void add_switches(pid_t pid, void *arg)
{
        uint64_t *sum = arg;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));) {
                if (e->d_name[0] == '.')
                        continue;
                char sp[320], line[128];
                snprintf(sp, sizeof(sp), "/proc/%d/task/%s/status", (int)pid, e->d_name);
                FILE *f = fopen(sp, "r");
                unsigned long long n;
                while (f && fgets(line, sizeof(line), f))
                        if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1 ||
                            sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
                                *sum += n;
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
}

uint64_t bench_ctx_switches(pid_t daemon)
{
        uint64_t sum = 0;
        (void)each_proc(daemon, add_switches, &sum);
        return sum;
}

struct pid_list {
        pid_t *out;
        size_t n, max;
};

static void add_pid(pid_t pid, void *arg)
{
        struct pid_list *l = arg;
        if (l->n < l->max)
                l->out[l->n++] = pid;
}

size_t bench_proc_pids(pid_t daemon, pid_t *out, size_t max)
{
        struct pid_list l = {.out = out, .max = max};
        (void)each_proc(daemon, add_pid, &l);
        return l.n;
}
