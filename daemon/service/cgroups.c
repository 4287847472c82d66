/* Per-tenant cgroups (docs/workers.md, "cgroups"): with --cgroup-root, a cgroup v2 directory the
 * host delegated to sproutd, each tenant's workers go into DIR/tenant-UID, whose memory.max is
 * --tenant-memory-max, so one tenant's clones cannot push the host into reclaim for everyone.
 * Without it, or where the directory is not a usable cgroup v2 one, workers run in sproutd's own
 * cgroup and the start-up log says so. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "sprout/log.h"
#include "service.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* Writes text to DIR/NAME, opened beneath the cgroup directory without following links. */
static int write_at(int dirfd, const char *name, const char *text)
{
        int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, text, strlen(text));
        int r = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
        close(fd);
        return r;
}

int cgroups_init(struct sproutd *d, struct sprout_err *err)
{
        d->cgroup_fd = -1;
        if (!d->cfg.cgroup_root[0]) {
                sp_info("workers run in sproutd's own cgroup (no --cgroup-root): tenants' memory "
                        "is bounded only by --max-clones");
                return 0;
        }
        struct statfs sf;
        int fd = open(d->cfg.cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstatfs(fd, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
                int e = fd < 0 ? errno : ENOTDIR;
                if (fd >= 0)
                        close(fd);
                return sprout_err_set(err, -EINVAL, "--cgroup-root %s: %s", d->cfg.cgroup_root,
                                      e == ENOTDIR ? "not a cgroup v2 directory" : strerror(e));
        }
        /* Children need the memory controller enabled here. */
        int r = write_at(fd, "cgroup.subtree_control", "+memory");
        if (r < 0) {
                close(fd);
                return sprout_err_errno(err, r, "--cgroup-root %s: enabling the memory controller",
                                        d->cfg.cgroup_root);
        }
        d->cgroup_fd = fd;
        sp_info("each tenant's workers go in %s/tenant-UID (memory.max %lld)", d->cfg.cgroup_root,
                (long long)d->cfg.tenant_memory_max);
        return 0;
}

int cgroups_place(struct sproutd *d, uid_t tenant, pid_t pid, struct sprout_err *err)
{
        if (d->cgroup_fd < 0)
                return 0;
        char name[32], text[32];
        snprintf(name, sizeof(name), "tenant-%u", (unsigned)tenant);
        if (mkdirat(d->cgroup_fd, name, 0755) < 0 && errno != EEXIST)
                return sprout_err_errno(err, -errno, "cgroup %s", name);
        int fd = openat(d->cgroup_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "cgroup %s", name);
        int r = 0;
        if (d->cfg.tenant_memory_max > 0) {
                snprintf(text, sizeof(text), "%lld", (long long)d->cfg.tenant_memory_max);
                r = write_at(fd, "memory.max", text);
        }
        if (r == 0) {
                snprintf(text, sizeof(text), "%d", (int)pid);
                r = write_at(fd, "cgroup.procs", text);
        }
        close(fd);
        return r < 0 ? sprout_err_errno(err, r, "putting worker %d in cgroup %s", (int)pid, name)
                     : 0;
}

void cgroups_close(struct sproutd *d)
{
        if (d->cgroup_fd >= 0)
                close(d->cgroup_fd);
        d->cgroup_fd = -1;
}
