/* The worker's seccomp allow-lists, built with libseccomp (docs/workers.md, "System calls", says
 * why each is there). Anything else kills the whole worker (SCMP_ACT_KILL_PROCESS): its clones fail
 * with worker_died and the broker logs the signal, which is how a missing entry shows itself. */
#include <errno.h>
#include <seccomp.h>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "worker.h"

/* KVM's ioctls all have type KVMIO (0xAE, linux/kvm.h); only those pass, on any descriptor. */
#define KVMIO_TYPE 0xAEu

/* What a clone's thread needs to run the guest and answer: KVM_RUN and the other vCPU/VM ioctls,
 * the deadline timer and its signal, memory for the VMM's buffers, its requests and their
 * replies on the clone's own socket, the log on stderr, and teardown (close, munmap) at the end.
 * The time calls are the vDSO's fallbacks (a host whose clocksource the vDSO cannot read);
 * getuid/getppid feed libuuid's random ids. The set was taken from strace -f of the daemon tests
 * with the filters off. */
static const int vcpu_calls[] = {
    SCMP_SYS(read),          SCMP_SYS(write),         SCMP_SYS(writev),
    SCMP_SYS(sendmsg),       SCMP_SYS(recvmsg),       SCMP_SYS(close),
    SCMP_SYS(mmap),          SCMP_SYS(munmap),        SCMP_SYS(mprotect),
    SCMP_SYS(madvise),       SCMP_SYS(mremap),        SCMP_SYS(brk),
    SCMP_SYS(futex),         SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(timer_create),  SCMP_SYS(timer_settime), SCMP_SYS(timer_delete),
    SCMP_SYS(clock_gettime), SCMP_SYS(gettid),        SCMP_SYS(getpid),
    SCMP_SYS(tgkill),        SCMP_SYS(exit),          SCMP_SYS(exit_group),
    SCMP_SYS(sched_yield),   SCMP_SYS(getrandom),     SCMP_SYS(gettimeofday),
    SCMP_SYS(clock_getres),  SCMP_SYS(getuid),        SCMP_SYS(getppid),
    SCMP_SYS(sigaltstack),
};

/* And what the control and pool threads need besides (their requests, base memfds and clone
 * sockets come by recvmsg, above): starting clone threads, reading our own /proc/self/smaps, and
 * the descriptors that VM creation makes (memslots over the base, KVM_CREATE_VM/VCPU). */
static const int control_calls[] = {
    SCMP_SYS(openat),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    SCMP_SYS(fcntl),
    SCMP_SYS(clone),
    SCMP_SYS(clone3),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(prlimit64),
    SCMP_SYS(eventfd2),
    SCMP_SYS(dup),
    SCMP_SYS(seccomp), /* a clone thread adding the vCPU filter: a filter can only narrow */
};

static int add_all(scmp_filter_ctx f, const int *calls, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int r = seccomp_rule_add(f, SCMP_ACT_ALLOW, calls[i], 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load(bool control, struct sprout_err *err)
{
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
        if (!f)
                return sprout_err_set(err, -ENOMEM, "seccomp_init failed");
        /* no_new_privs is already set (jail.c); libseccomp would set it again with a prctl that
         * the process filter, loaded first, does not allow. */
        int r = seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 0);
        if (r == 0)
                r = add_all(f, vcpu_calls, sizeof(vcpu_calls) / sizeof(vcpu_calls[0]));
        if (r == 0 && control)
                r = add_all(f, control_calls, sizeof(control_calls) / sizeof(control_calls[0]));
        if (r == 0)
                r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00u, KVMIO_TYPE << 8));
        /* Read-only opens: glibc reads the CPU count from /sys on some clone threads' paths
         * (seen as SIGSYS under load, not pinned down further). The root is empty and read-only
         * but for our own pid namespace's /proc, so a read-only open reaches nothing else; no
         * flag that creates or writes passes. */
        if (r == 0 && !control)
                r = seccomp_rule_add(
                    f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                    SCMP_A2(SCMP_CMP_MASKED_EQ,
                            (scmp_datum_t)(O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE),
                            O_RDONLY));
        if (r == 0)
                r = seccomp_load(f);
        seccomp_release(f);
        return r < 0 ? sprout_err_errno(err, r, "loading the %s seccomp filter",
                                        control ? "worker" : "vCPU")
                     : 0;
}

int worker_seccomp_process(struct sprout_err *err)
{
        return load(true, err);
}

int worker_seccomp_vcpu(struct sprout_err *err)
{
        return load(false, err);
}
