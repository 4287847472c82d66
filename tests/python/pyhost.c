/* Running the Python example on the host the way the guest runs it (same interpreter, flags and
 * environment), for reference answers and reference timings; and small JSON readers. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyhost.h"
#include "sprout/clock.h"

/* Spawns argv with the guest's environment, collects stdout; returns the exit status or -1. */
static int run(const struct pyhost *h, char *const argv[], char **out, long long *ns)
{
        char pypath[4200];
        snprintf(pypath, sizeof(pypath), "PYTHONPATH=%s", h->shim_dir);
        char *envp[] = {"PATH=/usr/bin:/bin", "HOME=/", "PYTHONDONTWRITEBYTECODE=1", pypath, NULL};
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        /* The guest's working directory: with -c, sys.path[0] is it. */
        posix_spawn_file_actions_addchdir_np(&fa, "/");
        pid_t pid;
        long long t0 = sprout_mono_ns();
        int rc = posix_spawn(&pid, h->python, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (rc != 0) {
                close(p[0]);
                fprintf(stderr, "spawning %s: %s\n", h->python, strerror(rc));
                return -1;
        }
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        ssize_t n;
        while (buf && (n = read(p[0], buf + len, cap - len - 1)) > 0) {
                len += (size_t)n;
                if (cap - len < 1024) {
                        char *nb = realloc(buf, cap * 2);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                                break;
                        }
                        buf = nb;
                        cap *= 2;
                }
        }
        close(p[0]);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (ns)
                *ns = sprout_mono_ns() - t0;
        if (!buf)
                return -1;
        while (len && buf[len - 1] == '\n')
                len--;
        buf[len] = '\0';
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *pyhost_once(const struct pyhost *h, const char *event, long long *ns)
{
        char *argv[] = {(char *)h->python,
                        "-s",
                        "-S",
                        "-B",
                        "-c",
                        "import sprout_shim; sprout_shim.main()",
                        (char *)h->handler,
                        "--once",
                        (char *)event,
                        NULL};
        char *out = NULL;
        int st = run(h, argv, &out, ns);
        if (st != 0) {
                fprintf(stderr, "host python --once %s: exit %d\n", event, st);
                free(out);
                return NULL;
        }
        return out;
}

long long pyhost_bare(const struct pyhost *h)
{
        char *argv[] = {(char *)h->python, "-s", "-S", "-B", "-c", "pass", NULL};
        long long ns;
        return run(h, argv, NULL, &ns) == 0 ? ns : -1;
}

json_t *pyhost_parse(const char *what, const void *resp, size_t len)
{
        json_error_t e;
        json_t *j = json_loadb(resp, len, 0, &e);
        if (!j || !json_is_object(j)) {
                fprintf(stderr, "%s: not a JSON object (%s): %.*s\n", what, j ? "" : e.text,
                        (int)(len > 300 ? 300 : len), (const char *)resp);
                json_decref(j);
                return NULL;
        }
        return j;
}

static json_t *at(json_t *root, const char *path)
{
        char key[128];
        json_t *cur = root;
        while (cur && *path) {
                const char *dot = strchr(path, '.');
                size_t n = dot ? (size_t)(dot - path) : strlen(path);
                if (n >= sizeof(key))
                        return NULL;
                memcpy(key, path, n);
                key[n] = '\0';
                cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
                path += n + (dot ? 1 : 0);
        }
        return cur;
}

const char *pyhost_str(json_t *root, const char *path)
{
        json_t *v = at(root, path);
        return json_is_string(v) ? json_string_value(v) : "";
}

long long pyhost_int(json_t *root, const char *path)
{
        json_t *v = at(root, path);
        return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}
