/* The temporary file a snapshot is written to, beside its final name so the commit is one rename
 * within a directory: atomic, and durable once the directory is fsynced. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "snapshot_internal.h"

static int random_suffix(char *s, size_t n)
{
        static const char alphabet[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        uint8_t r[16];
        if (n > sizeof(r))
                return -EINVAL;
        if (getrandom(r, n, 0) != (ssize_t)n)
                return -errno;
        for (size_t i = 0; i < n; i++)
                s[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
        return 0;
}

int snap_tmp_create(struct snap_tmp *t, const char *path, struct sprout_err *err)
{
        memset(t, 0, sizeof(*t));
        t->dirfd = -1;
        t->fd = -1;

        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (*base == '\0')
                return sprout_err_set(err, -EISDIR, "snapshot path \"%s\" names a directory", path);
        if (slash)
                t->dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
        else
                t->dir = strdup(".");
        t->base = strdup(base);
        if (!t->dir || !t->base)
                return sprout_err_set(err, -ENOMEM, "out of memory for the snapshot path");
        /* ".NAME.tmp.XXXXXX" must itself be a valid file name. */
        if (strlen(base) + 12 > NAME_MAX)
                return sprout_err_set(
                    err, -ENAMETOOLONG,
                    "snapshot file name \"%s\" is too long to derive a temporary name", base);

        t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->dirfd < 0)
                return sprout_err_errno(err, -errno, "cannot open snapshot directory %s", t->dir);
        for (int attempt = 0; attempt < 100; attempt++) {
                char sfx[7] = {0};
                int rc = random_suffix(sfx, 6);
                if (rc < 0)
                        return sprout_err_errno(err, rc, "getrandom for a temporary name");
                snprintf(t->tmp, sizeof(t->tmp), ".%s.tmp.%s", base, sfx);
                /* 0600: the file holds guest memory, which may hold secrets. */
                t->fd = openat(t->dirfd, t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (t->fd >= 0) {
                        t->linked = true;
                        return 0;
                }
                if (errno != EEXIST)
                        return sprout_err_errno(err, -errno, "cannot create temporary file %s/%s",
                                                t->dir, t->tmp);
        }
        return sprout_err_set(err, -EEXIST, "no free temporary name for %s in %s after 100 tries",
                              base, t->dir);
}

int snap_tmp_commit(struct snap_tmp *t, struct sprout_err *err)
{
        if (renameat(t->dirfd, t->tmp, t->dirfd, t->base) < 0)
                return sprout_err_errno(err, -errno, "cannot rename %s/%s to %s", t->dir, t->tmp,
                                        t->base);
        t->linked = false;
        if (fsync(t->dirfd) < 0) {
                int rc = -errno;
                /* Failure must mean no snapshot under the final name; we cannot vouch for this one.
                 */
                unlinkat(t->dirfd, t->base, 0);
                return sprout_err_errno(err, rc, "fsync of directory %s after renaming %s", t->dir,
                                        t->base);
        }
        return 0;
}

void snap_tmp_release(struct snap_tmp *t)
{
        if (t->fd >= 0)
                close(t->fd);
        if (t->linked)
                unlinkat(t->dirfd, t->tmp, 0);
        if (t->dirfd >= 0)
                close(t->dirfd);
        free(t->dir);
        free(t->base);
        t->fd = -1;
        t->dirfd = -1;
        t->linked = false;
        t->dir = NULL;
        t->base = NULL;
}
