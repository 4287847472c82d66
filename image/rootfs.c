/* Copying a host directory tree into the initramfs tree. The directory is the image author's, but
 * depth, names and file types are still bounded and checked; symlinks are kept, never followed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fill.h"

#define ROOTFS_MAX_DEPTH 64

struct walk {
        struct tree *t;
        char host[PATH_MAX];  /* host path of the current entry */
        char guest[PATH_MAX]; /* its guest path */
        struct sprout_err *err;
};

static int add_entry(struct walk *w, int dirfd, const char *name, const struct stat *st, int depth);

static int walk_dir(struct walk *w, int fd, int depth)
{
        DIR *d = fdopendir(fd);
        if (!d) {
                int rc = sprout_err_errno(w->err, -errno, "rootfs: %s: opendir", w->host);
                close(fd);
                return rc;
        }
        size_t hlen = strlen(w->host), glen = strlen(w->guest);
        int rc = 0;
        for (;;) {
                errno = 0;
                struct dirent *e = readdir(d);
                if (!e) {
                        if (errno)
                                rc = sprout_err_errno(w->err, -errno, "rootfs: %s: readdir",
                                                      w->host);
                        break;
                }
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                size_t n = strlen(e->d_name);
                if (hlen + 1 + n >= sizeof(w->host) || glen + 1 + n >= sizeof(w->guest)) {
                        rc = sprout_err_set(w->err, -ENAMETOOLONG,
                                            "rootfs: %s/%.64s: path too long", w->host, e->d_name);
                        break;
                }
                snprintf(w->host + hlen, sizeof(w->host) - hlen, "/%s", e->d_name);
                snprintf(w->guest + glen, sizeof(w->guest) - glen, "/%s", e->d_name);
                struct stat st;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        rc = sprout_err_errno(w->err, -errno, "rootfs: %s: stat", w->host);
                else
                        rc = add_entry(w, dirfd(d), e->d_name, &st, depth);
                w->host[hlen] = '\0';
                w->guest[glen] = '\0';
                if (rc < 0)
                        break;
        }
        closedir(d); /* closes fd */
        return rc;
}

static int add_symlink(struct walk *w, int dirfd, const char *name, const struct stat *st)
{
        char target[PATH_MAX];
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target));
        if (n < 0)
                return sprout_err_errno(w->err, -errno, "rootfs: %s: readlink", w->host);
        if ((size_t)n >= sizeof(target) || n == 0)
                return sprout_err_set(w->err, -ENAMETOOLONG, "rootfs: %s: bad symlink target",
                                      w->host);
        target[n] = '\0';
        struct tnode_spec s = {.path = w->guest,
                               .type = TN_SYMLINK,
                               .prio = PRIO_ROOTFS,
                               .mode = 0777,
                               .mtime = st->st_mtime,
                               .data = target};
        return tree_add(w->t, &s, w->err);
}

static int add_entry(struct walk *w, int dirfd, const char *name, const struct stat *st, int depth)
{
        struct tnode_spec s = {.path = w->guest,
                               .prio = PRIO_ROOTFS,
                               .mode = st->st_mode & 07777,
                               .mtime = st->st_mtime};

        switch (st->st_mode & S_IFMT) {
        case S_IFDIR: {
                if (depth >= ROOTFS_MAX_DEPTH)
                        return sprout_err_set(w->err, -ELOOP, "rootfs: %s: deeper than %d levels",
                                              w->host, ROOTFS_MAX_DEPTH);
                s.type = TN_DIR;
                int rc = tree_add(w->t, &s, w->err);
                if (rc < 0)
                        return rc;
                int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return sprout_err_errno(w->err, -errno, "rootfs: %s: open", w->host);
                return walk_dir(w, fd, depth + 1);
        }
        case S_IFREG:
                s.type = TN_FILE;
                s.src = w->host;
                s.size = (uint64_t)st->st_size;
                s.mode &= 0777; /* no set-id bits from a build directory */
                return tree_add(w->t, &s, w->err);
        case S_IFLNK:
                return add_symlink(w, dirfd, name, st);
        case S_IFCHR:
        case S_IFBLK:
                s.type = S_ISCHR(st->st_mode) ? TN_CHR : TN_BLK;
                s.rmajor = major(st->st_rdev);
                s.rminor = minor(st->st_rdev);
                return tree_add(w->t, &s, w->err);
        case S_IFIFO:
                s.type = TN_FIFO;
                return tree_add(w->t, &s, w->err);
        default:
                return sprout_err_set(w->err, -EINVAL, "rootfs: %s: sockets cannot go in an image",
                                      w->host);
        }
}

int fill_rootfs(struct tree *t, const char *dir, struct sprout_err *err)
{
        struct walk *w = calloc(1, sizeof(*w));
        if (!w)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        w->t = t;
        w->err = err;
        int rc = 0;
        if (strlen(dir) >= sizeof(w->host))
                rc = sprout_err_set(err, -ENAMETOOLONG, "rootfs: %.128s: path too long", dir);
        int fd = rc < 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rc == 0 && fd < 0)
                rc = sprout_err_errno(err, -errno, "rootfs: %s: open", dir);
        if (rc == 0) {
                snprintf(w->host, sizeof(w->host), "%s", dir);
                rc = walk_dir(w, fd, 0); /* takes fd */
        }
        free(w);
        return rc;
}
