/* sprout_run_as: the work runs with the given user's credentials and no capabilities, the rest of
 * the process keeps its own, and a function that hangs is abandoned to its thread, which then owns
 * its argument. Needs root (it becomes uid 65534). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sprout/run_as.h"

/* The "Uid:" and "CapEff:" lines of a status file, as the kernel reports them. */
static void status_of(const char *path, char *uid, char *cap, size_t len)
{
        char line[200];
        uid[0] = cap[0] = '\0';
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "Uid:", 4))
                        snprintf(uid, len, "%s", line + 4);
                if (!strncmp(line, "CapEff:", 7))
                        snprintf(cap, len, "%s", line + 7);
        }
        fclose(f);
}

struct probe {
        char uid[256], cap[256];
        int fd; /* an open of a root-only file */
};

static int probe_fn(void *arg)
{
        struct probe *p = arg;
        status_of("/proc/thread-self/status", p->uid, p->cap, sizeof(p->uid));
        p->fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
        return p->fd < 0 ? -errno : 0;
}

static atomic_int abandoned_calls;

static int slow_fn(void *arg)
{
        (void)arg;
        usleep(300 * 1000);
        return 7;
}

static void abandon_fn(void *arg, int result)
{
        free(arg);
        atomic_store(&abandoned_calls, result);
}

int main(void)
{
        struct sprout_creds nobody = {.uid = 65534, .gid = 65534, .ngroups = 0};
        struct probe p = {.fd = -1};
        int r = sprout_run_as(&nobody, 5000, probe_fn, NULL, &p);
        CHECK(r == -EACCES, "nobody opened /etc/shadow: r=%d", r);
        CHECK(!strncmp(p.uid, "\t65534\t65534\t65534\t65534", 24), "the thread's Uid: '%s'", p.uid);
        CHECK(!strcmp(p.cap, "\t0000000000000000\n"), "the thread kept capabilities: '%s'", p.cap);
        if (p.fd >= 0)
                close(p.fd);

        /* The caller's thread and the process are still root. */
        char uid[256], cap[256];
        status_of("/proc/thread-self/status", uid, cap, sizeof(uid));
        CHECK(getuid() == 0 && geteuid() == 0 && !strncmp(uid, "\t0\t0\t0\t0", 8),
              "the caller's credentials changed: '%s'", uid);
        int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "root can no longer open /etc/shadow: %s", strerror(errno));
        if (fd >= 0)
                close(fd);

        /* Root as the client: the thread keeps root (confinement is the loader's job). */
        struct sprout_creds root = {.uid = 0, .gid = 0};
        struct probe q = {.fd = -1};
        r = sprout_run_as(&root, 5000, probe_fn, NULL, &q);
        CHECK(r == 0 && q.fd >= 0, "root as the client could not open /etc/shadow: r=%d", r);
        if (q.fd >= 0)
                close(q.fd);

        /* A function that outlives its deadline: -ETIMEDOUT now, abandon() with its result later.
         */
        void *arg = malloc(64);
        r = sprout_run_as(&nobody, 50, slow_fn, abandon_fn, arg);
        CHECK(r == -ETIMEDOUT, "a 300 ms function with a 50 ms deadline: r=%d", r);
        for (int i = 0; i < 200 && !atomic_load(&abandoned_calls); i++)
                usleep(10 * 1000);
        CHECK(atomic_load(&abandoned_calls) == 7, "abandon() was not called with the result (%d)",
              atomic_load(&abandoned_calls));

        struct sprout_creds many = {
            .uid = 65534, .gid = 65534, .ngroups = SPROUT_CREDS_MAX_GROUPS + 1};
        CHECK(sprout_run_as(&many, 100, probe_fn, NULL, &p) == -EINVAL, "too many groups");
        return check_finish();
}
