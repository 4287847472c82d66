/* Finding snapshots again after a restart: every complete *.snap file under the state directory is
 * listed under the UUID it records. snap_write only ever renames complete files into place, so a
 * crash leaves at most a temporary .NAME.tmp.XXXXXX file, which is removed here. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/log.h"
#include "service.h"

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && !strcmp(s + n - m, suffix);
}

static void scan_one(struct sproutd *d, const char *name)
{
        static const uint8_t zero[16];
        struct dsnap *e = registry_new(zero);
        struct sprout_err err = {0};
        if (!e)
                return;
        if (snprintf(e->path, sizeof(e->path), "%s/%s", d->snap_dir, name) >=
            (int)sizeof(e->path)) {
                sp_warn("state: skipping %s/%s: path too long", d->snap_dir, name);
                registry_free_entry(d, e);
                return;
        }
        if (registry_read_meta(d, e, &err) < 0) {
                /* Not ours to delete: someone may want to look at it (or import it, when it is
                 * unauthenticated). It is just not listed; the log says why. */
                sp_warn("state: skipping %s: %s", e->path, err.msg);
                registry_free_entry(d, e);
                return;
        }
        e->status = DSNAP_READY;
        e->owner = owners_read(d, e);
        pthread_mutex_lock(&d->lock);
        int r = registry_add_locked(d, e);
        if (r == 0)
                e->refs--; /* the list's reference is the only one */
        pthread_mutex_unlock(&d->lock);
        if (r < 0) {
                sp_warn("state: skipping %s: snapshot %s is already listed from another file",
                        e->path, e->id);
                registry_free_entry(d, e);
                return;
        }
        sp_info("state: snapshot %s (%s, %llu MiB RAM) from %s", e->id,
                e->image_name[0] ? e->image_name : "unnamed",
                (unsigned long long)(e->ram_size >> 20), name);
}

int registry_scan(struct sproutd *d, struct sprout_err *err)
{
        DIR *dir = opendir(d->snap_dir);
        if (!dir)
                return sprout_err_errno(err, -errno, "opening %s", d->snap_dir);
        struct dirent *de;
        while ((de = readdir(dir))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (n[0] == '.' && strstr(n, ".tmp.")) {
                        /* We hold the state directory's lock: no live writer owns this file. */
                        if (unlinkat(dirfd(dir), n, 0) == 0)
                                sp_info("state: removed %s, left by an interrupted snapshot write",
                                        n);
                        else
                                sp_warn("state: cannot remove %s/%s: %m", d->snap_dir, n);
                        continue;
                }
                if (n[0] != '.' && ends_with(n, ".snap"))
                        scan_one(d, n);
        }
        closedir(dir);
        return 0;
}
