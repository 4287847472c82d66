/* The worker's jail (docs/workers.md, "The jail"): the broker started us in new mount, pid, ipc,
 * net and uts namespaces; here, with /dev/kvm open, we move into an empty read-only root holding
 * only /proc (our own pid namespace's: smaps for memory accounting), become the uid and gid the
 * broker chose for us (which drops every capability), set no_new_privs and bound what we may
 * hold. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

static int new_root(struct sprout_err *err)
{
        const char *dir = "/tmp"; /* any directory: the mount over it is ours alone */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return sprout_err_errno(err, -errno, "making the mounts private");
        if (mount("sprout-worker", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=64k,mode=0755") < 0)
                return sprout_err_errno(err, -errno, "mounting the worker's root");
        if (mkdir("/tmp/proc", 0555) < 0)
                return sprout_err_errno(err, -errno, "making /proc in the worker's root");
        if (mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return sprout_err_errno(err, -errno, "mounting /proc in the worker's root");
        /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
         * nothing of the host's file system reachable. */
        if (chdir(dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
                return sprout_err_errno(err, -errno, "pivot_root into the worker's root");
        if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                return sprout_err_errno(err, -errno, "detaching the host's root");
        if (mount(NULL, "/", NULL,
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return sprout_err_errno(err, -errno, "making the worker's root read-only");
        return 0;
}

static int limit(int res, rlim_t v)
{
        struct rlimit rl;
        /* Without privilege a hard limit can only come down. */
        if (geteuid() != 0 && getrlimit(res, &rl) == 0 && rl.rlim_max < v)
                v = rl.rlim_max;
        rl = (struct rlimit){.rlim_cur = v, .rlim_max = v};
        return setrlimit(res, &rl) < 0 ? -errno : 0;
}

int worker_jail(struct worker *w, struct sprout_err *err)
{
        int r;
        if (w->o.new_root) {
                if ((r = new_root(err)) < 0)
                        return r;
                w->jailed |= 1;
        }
        /* Each clone holds a VM, a vCPU and its socket's descriptor (and KVM a few more); threads:
         * one per clone, one pool thread per base, and the control thread. No core files: they
         * would hold guest memory. */
        rlim_t fds = (rlim_t)w->o.max_clones * 4 + 4096; /* + pooled shells and ready clones */
        if ((r = limit(RLIMIT_NOFILE, fds)) < 0 || (r = limit(RLIMIT_CORE, 0)) < 0 ||
            (w->o.uid != (uid_t)-1 &&
             (r = limit(RLIMIT_NPROC, (rlim_t)w->o.max_clones + WORKER_MAX_BASES + 16)) < 0))
                return sprout_err_errno(err, r, "setting the worker's limits");
        /* After the limits: an unprivileged process may not raise a hard limit. */
        if (w->o.uid != (uid_t)-1) {
                if (setgroups(0, NULL) < 0 || setresgid(w->o.gid, w->o.gid, w->o.gid) < 0 ||
                    setresuid(w->o.uid, w->o.uid, w->o.uid) < 0)
                        return sprout_err_errno(err, -errno, "becoming uid %u gid %u",
                                                (unsigned)w->o.uid, (unsigned)w->o.gid);
                w->jailed |= 2;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
                return sprout_err_errno(err, -errno, "setting no_new_privs");
        return 0;
}
