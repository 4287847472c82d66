/* Host path helpers for the image library: joining, the cache directory and default kernel, mkdir
 * -p, and write-to-temporary-then-rename files so no reader ever sees half an image. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "paths.h"

char *path_join_rel(const char *dir, const char *rel)
{
        char *out;

        if (rel[0] == '/')
                return strdup(rel);
        if (asprintf(&out, "%s/%s", dir, rel) < 0)
                return NULL;
        return out;
}

static int env_set(const char *name)
{
        const char *v = getenv(name);
        return v && *v;
}

int sprout_cache_dir(char *buf, size_t len, struct sprout_err *err)
{
        int n;

        if (env_set("SPROUT_CACHE_DIR"))
                n = snprintf(buf, len, "%s", getenv("SPROUT_CACHE_DIR"));
        else if (env_set("XDG_CACHE_HOME") && getenv("XDG_CACHE_HOME")[0] == '/')
                n = snprintf(buf, len, "%s/sprout", getenv("XDG_CACHE_HOME"));
        else if (env_set("HOME"))
                n = snprintf(buf, len, "%s/.cache/sprout", getenv("HOME"));
        else
                return sprout_err_set(
                    err, -ENOENT,
                    "no cache directory: set SPROUT_CACHE_DIR, XDG_CACHE_HOME or HOME");
        if (n < 0 || (size_t)n >= len)
                return sprout_err_set(err, -ENAMETOOLONG, "cache directory path is too long");
        return 0;
}

int sprout_default_kernel_path(char *buf, size_t len, struct sprout_err *err)
{
        char cache[PATH_MAX];
        int n;

        if (env_set("SPROUT_KERNEL")) {
                n = snprintf(buf, len, "%s", getenv("SPROUT_KERNEL"));
        } else {
                int rc = sprout_cache_dir(cache, sizeof(cache), err);
                if (rc < 0)
                        return rc;
                n = snprintf(buf, len, "%s/kernel/default", cache);
        }
        if (n < 0 || (size_t)n >= len)
                return sprout_err_set(err, -ENAMETOOLONG, "default kernel path is too long");
        return 0;
}

int path_mkdirs(const char *dir, struct sprout_err *err)
{
        char buf[PATH_MAX];
        size_t len = strlen(dir);

        if (len == 0 || len >= sizeof(buf))
                return sprout_err_set(err, -ENAMETOOLONG, "%s: bad directory path", dir);
        memcpy(buf, dir, len + 1);
        /* Create each prefix in turn; EEXIST is fine as long as the last one is a directory. */
        for (size_t i = 1; i <= len; i++) {
                if (buf[i] != '/' && buf[i] != '\0')
                        continue;
                char saved = buf[i];
                buf[i] = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return sprout_err_errno(err, -errno, "%s: mkdir", buf);
                buf[i] = saved;
        }
        struct stat st;
        if (stat(dir, &st) < 0)
                return sprout_err_errno(err, -errno, "%s", dir);
        if (!S_ISDIR(st.st_mode))
                return sprout_err_set(err, -ENOTDIR, "%s: not a directory", dir);
        return 0;
}

int atomic_open(const char *dir, const char *name, struct atomic_file *f, struct sprout_err *err)
{
        f->fd = -1;
        f->final = NULL;
        if (asprintf(&f->tmp, "%s/.%s.XXXXXX", dir, name) < 0) {
                f->tmp = NULL;
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        if (asprintf(&f->final, "%s/%s", dir, name) < 0) {
                f->final = NULL;
                free(f->tmp); /* only a template so far: nothing to unlink */
                f->tmp = NULL;
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        f->fd = mkostemp(f->tmp, O_CLOEXEC);
        if (f->fd < 0) {
                int rc = sprout_err_errno(err, -errno, "%s: create", f->tmp);
                free(f->tmp); /* nothing was created under that name */
                f->tmp = NULL;
                atomic_abort(f);
                return rc;
        }
        /* mkstemp makes it 0600; an image is for anyone who may run it. */
        if (fchmod(f->fd, 0644) < 0) {
                int rc = sprout_err_errno(err, -errno, "%s: chmod", f->tmp);
                atomic_abort(f);
                return rc;
        }
        return 0;
}

int atomic_commit(struct atomic_file *f, struct sprout_err *err)
{
        int rc = 0;

        if (fsync(f->fd) < 0)
                rc = sprout_err_errno(err, -errno, "%s: fsync", f->tmp);
        if (close(f->fd) < 0 && rc == 0)
                rc = sprout_err_errno(err, -errno, "%s: close", f->tmp);
        f->fd = -1;
        if (rc == 0 && rename(f->tmp, f->final) < 0)
                rc = sprout_err_errno(err, -errno, "%s: rename to %s", f->tmp, f->final);
        if (rc == 0) {
                free(f->tmp); /* renamed: nothing left to remove */
                f->tmp = NULL;
        }
        atomic_abort(f);
        return rc;
}

void atomic_abort(struct atomic_file *f)
{
        if (f->fd >= 0)
                close(f->fd);
        if (f->tmp) {
                unlink(f->tmp);
                free(f->tmp);
        }
        free(f->final);
        f->fd = -1;
        f->tmp = NULL;
        f->final = NULL;
}

int path_fsync_dir(const char *dir, struct sprout_err *err)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s: open", dir);
        int rc = fsync(fd) < 0 ? sprout_err_errno(err, -errno, "%s: fsync", dir) : 0;
        close(fd);
        return rc;
}
