/* Early guest setup done by sprout-agent: the pseudo filesystems and the console. Every call here
 * is a guest system call (~0.5 ms under PVM), so there are as few as the job allows. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent.h"

struct fs_mount {
        const char *source, *target, *type;
        unsigned long flags;
        const char *data;
};

/* devtmpfs first: /dev/mem and /dev/console live there. The directories are in the initramfs. */
static const struct fs_mount mounts[] = {
    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"},
    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
    {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
    {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"},
};

int agent_setup_fs(struct sprout_err *err)
{
        for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
                const struct fs_mount *m = &mounts[i];
                /* EBUSY: the kernel mounted it already (CONFIG_DEVTMPFS_MOUNT); that is what we
                 * want. */
                if (mount(m->source, m->target, m->type, m->flags, m->data) < 0 && errno != EBUSY)
                        return sprout_err_errno(err, -errno, "mount %s on %s", m->type, m->target);
        }
        return 0;
}

int agent_setup_console(struct sprout_err *err)
{
        /* The kernel opens /dev/console as fds 0-2 for init when the initramfs has the node, which
         * the builder puts there; only if that did not happen do we open it ourselves. */
        if (fcntl(1, F_GETFD) >= 0)
                return 0;
        int fd = open("/dev/console", O_RDWR | O_NOCTTY);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "/dev/console: open");
        for (int t = 0; t <= 2; t++) {
                if (fd != t && dup2(fd, t) < 0) {
                        int rc = -errno;
                        close(fd);
                        return sprout_err_errno(err, rc, "/dev/console: dup2 to fd %d", t);
                }
        }
        if (fd > 2)
                close(fd);
        return 0;
}
