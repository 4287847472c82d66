/* Putting busybox in the initramfs: the binary at /bin/busybox and one symlink per applet, at the
 * paths `busybox --list-full` gives. Its output is checked like any untrusted input. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fill.h"

#define LIST_MAX (256 * 1024)

static int run_list(const char *busybox, char *buf, size_t cap, size_t *len, struct sprout_err *err)
{
        int pfd[2];
        posix_spawn_file_actions_t fa;
        pid_t pid;
        char *const argv[] = {(char *)busybox, "--list-full", NULL};
        char *const envp[] = {NULL};

        if (pipe2(pfd, O_CLOEXEC) < 0)
                return sprout_err_errno(err, -errno, "pipe");
        int rc = posix_spawn_file_actions_init(&fa);
        if (rc == 0)
                rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        if (rc == 0)
                rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (rc == 0)
                rc = posix_spawn(&pid, busybox, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[1]);
        if (rc != 0) {
                close(pfd[0]);
                return sprout_err_set(err, -rc, "%s --list-full: %s", busybox, strerror(rc));
        }
        size_t n = 0;
        int err_rc = 0;
        for (;;) {
                ssize_t r = read(pfd[0], buf + n, cap - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        err_rc = sprout_err_errno(err, -errno, "%s --list-full: read", busybox);
                if (r <= 0)
                        break;
                n += (size_t)r;
                if (n == cap) {
                        err_rc = sprout_err_set(err, -EFBIG, "%s --list-full: more than %zu bytes",
                                                busybox, cap);
                        break;
                }
        }
        close(pfd[0]); /* a child still writing gets EPIPE and ends */
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (err_rc < 0)
                return err_rc;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return sprout_err_set(err, -EIO, "%s --list-full failed (status 0x%x)", busybox,
                                      st);
        *len = n;
        return 0;
}

/* A relative applet path of safe characters, with a directory part and no "." or ".." parts. */
static int applet_ok(const char *p)
{
        if (!p[0] || p[0] == '/' || !strchr(p, '/') || strstr(p, "//") || p[strlen(p) - 1] == '/')
                return 0;
        for (const char *c = p; *c; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || strchr("._+-/[]", *c)))
                        return 0;
        }
        return !strstr(p, "/./") && !strstr(p, "/../") && strncmp(p, "./", 2) != 0 &&
               strncmp(p, "../", 3) != 0;
}

static int add_applets(struct tree *t, const char *busybox, char *list, struct sprout_err *err)
{
        for (char *line = list, *next; *line; line = next) {
                next = strchrnul(line, '\n');
                if (*next)
                        *next++ = '\0';
                /* Root-level entries (linuxrc) are an init's job, and ours is /init. */
                if (!*line || !strchr(line, '/') || strcmp(line, "bin/busybox") == 0)
                        continue;
                if (!applet_ok(line))
                        return sprout_err_set(err, -EINVAL,
                                              "%s --list-full: bad applet path \"%.64s\"", busybox,
                                              line);
                struct tnode_spec s = {.path = line,
                                       .type = TN_SYMLINK,
                                       .prio = PRIO_BUSYBOX,
                                       .mode = 0777,
                                       .data = "/bin/busybox"};
                int rc = tree_add(t, &s, err);
                if (rc < 0)
                        return rc;
        }
        return 0;
}

int fill_busybox(struct tree *t, const char *busybox, struct sprout_err *err)
{
        size_t len = 0;
        int rc = fill_check_static_elf(busybox, "busybox", err);
        if (rc < 0)
                return rc;
        rc = fill_file(t, "/bin/busybox", busybox, PRIO_BUSYBOX, err);
        if (rc < 0)
                return rc;
        char *buf = malloc(LIST_MAX + 1);
        if (!buf)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        rc = run_list(busybox, buf, LIST_MAX, &len, err);
        if (rc == 0) {
                buf[len] = '\0';
                if (strlen(buf) != len)
                        rc = sprout_err_set(err, -EINVAL, "%s --list-full: NUL byte in output",
                                            busybox);
                else
                        rc = add_applets(t, busybox, buf, err);
        }
        free(buf);
        return rc;
}
