/* Who owns a snapshot: the client (socket peer uid) whose prewarm made it, kept beside the file as
 * snapshots/ID.owner (a decimal uid) so a restart knows it; a file with none is root's, which only
 * admins see (docs/api.md, "Tenants"). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/fileio.h"
#include "service.h"

static void owner_path(const struct sproutd *d, const struct dsnap *e, char *p, size_t len)
{
        snprintf(p, len, "%s/%s.owner", d->snap_dir, e->id);
}

uid_t owners_read(const struct sproutd *d, const struct dsnap *e)
{
        char p[4200], *text = NULL;
        size_t len = 0;
        owner_path(d, e, p, sizeof(p));
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return 0;
        int r = sprout_read_capped(fd, 32, &text, &len);
        close(fd);
        if (r < 0)
                return 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(text, &end, 10);
        bool ok = !errno && end != text && (*end == '\n' || !*end) && v < (uid_t)-1;
        free(text);
        return ok ? (uid_t)v : 0;
}

int owners_write(const struct sproutd *d, const struct dsnap *e, uid_t uid, struct sprout_err *err)
{
        char p[4200], tmp[4300], text[32];
        owner_path(d, e, p, sizeof(p));
        /* A temporary name the scan sweeps (".NAME.tmp."), renamed into place. */
        snprintf(tmp, sizeof(tmp), "%s/.%s.owner.tmp.%d", d->snap_dir, e->id, (int)getpid());
        int n = snprintf(text, sizeof(text), "%u\n", (unsigned)uid);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "writing %s", tmp);
        int r = sprout_write_exact(fd, text, (size_t)n);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && rename(tmp, p) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return sprout_err_errno(err, r, "writing %s", p);
        }
        return 0;
}

void owners_remove(const struct sproutd *d, const struct dsnap *e)
{
        char p[4200];
        owner_path(d, e, p, sizeof(p));
        unlink(p);
}

bool owners_is_admin(const struct sproutd *d, const struct sprout_creds *who)
{
        if (who->uid == 0)
                return true;
        if (!d->admin_gid_set)
                return false;
        if (who->gid == d->admin_gid)
                return true;
        for (size_t i = 0; i < who->ngroups; i++)
                if (who->groups[i] == d->admin_gid)
                        return true;
        return false;
}

bool owners_may_see(const struct sproutd *d, const struct sprout_creds *who, const struct dsnap *e)
{
        return who->uid == e->owner || owners_is_admin(d, who);
}

int owners_init(struct sproutd *d, struct sprout_err *err)
{
        d->admin_gid_set = false;
        if (!d->cfg.admin_group[0])
                return 0;
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(d->cfg.admin_group, &gr, buf, sizeof(buf), &res) || !res)
                return sprout_err_set(err, -ENOENT, "--admin-group: no group '%s'",
                                      d->cfg.admin_group);
        d->admin_gid = gr.gr_gid;
        d->admin_gid_set = true;
        return 0;
}
