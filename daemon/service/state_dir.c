/* The state directory: created on first run, holding snapshots/ and the lock that keeps a second
 * daemon from serving (and cleaning up) the same snapshots. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service.h"

/* mkdir -p; the last component gets mode, its parents 0755. */
static int make_dirs(const char *path, mode_t mode, struct sprout_err *err)
{
        char p[4096];
        if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
                return sprout_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return sprout_err_errno(err, -errno, "creating %s", p);
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return sprout_err_errno(err, -errno, "creating %s", p);
        return 0;
}

/* The state directory holds snapshots (guest memory) and the lock: it must be ours, a real
 * directory (not a symlink someone planted), and writable by nobody else. */
static int own_private_dir(const char *path, struct sprout_err *err)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return sprout_err_errno(err, -errno, "%s", path);
        if (!S_ISDIR(st.st_mode))
                return sprout_err_set(err, -ENOTDIR, "%s is not a directory (a symlink?)", path);
        if (st.st_uid != geteuid())
                return sprout_err_set(err, -EPERM, "%s belongs to uid %u, not to sproutd's (%u)",
                                      path, (unsigned)st.st_uid, (unsigned)geteuid());
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return sprout_err_set(err, -EPERM,
                                      "%s is writable by others (mode %04o); use chmod go-w", path,
                                      (unsigned)(st.st_mode & 07777));
        return 0;
}

int state_dir_open(struct sproutd *d, struct sprout_err *err)
{
        char lock[4200];
        int r;

        d->lock_fd = -1;
        if ((r = make_dirs(d->cfg.state_dir, 0755, err)) < 0 ||
            (r = own_private_dir(d->cfg.state_dir, err)) < 0)
                return r;
        if (snprintf(d->snap_dir, sizeof(d->snap_dir), "%s/snapshots", d->cfg.state_dir) >=
            (int)sizeof(d->snap_dir))
                return sprout_err_set(err, -ENAMETOOLONG, "state directory path too long");
        /* Snapshots hold guest memory: only the daemon's user reads them. */
        if ((r = make_dirs(d->snap_dir, 0700, err)) < 0 ||
            (r = own_private_dir(d->snap_dir, err)) < 0)
                return r;
        /* Where clients' images may be: by default a directory of the state directory's that the
         * daemon makes (docs/api.md, "Files a request names"). */
        char roots[sizeof(d->cfg.image_roots)];
        if (d->cfg.image_roots[0]) {
                snprintf(roots, sizeof(roots), "%s", d->cfg.image_roots);
        } else {
                if (snprintf(roots, sizeof(roots), "%s/images", d->cfg.state_dir) >=
                    (int)sizeof(roots))
                        return sprout_err_set(err, -ENAMETOOLONG, "state directory path too long");
                if ((r = make_dirs(roots, 0755, err)) < 0)
                        return r;
        }
        if ((r = sprout_image_roots_open(&d->image_roots, roots, err)) < 0)
                return r;
        snprintf(lock, sizeof(lock), "%s/sproutd.lock", d->cfg.state_dir);
        d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->lock_fd < 0)
                return sprout_err_errno(err, -errno, "opening %s", lock);
        if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                close(d->lock_fd);
                d->lock_fd = -1;
                if (r == -EWOULDBLOCK)
                        return sprout_err_set(err, -EBUSY,
                                              "another sproutd is using the state directory %s",
                                              d->cfg.state_dir);
                return sprout_err_errno(err, r, "locking %s", lock);
        }
        return 0;
}

void state_dir_close(struct sproutd *d)
{
        sprout_image_roots_close(&d->image_roots);
        if (d->lock_fd >= 0)
                close(d->lock_fd);
        d->lock_fd = -1;
}
