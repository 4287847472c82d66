/* Applying a clone's new identity (SPROUT_MBF_NEW_IDENTITY): the only system calls the library
 * makes after sprout_guest_open(), and only on the first ring that returns in a new clone. The
 * steps and their cost are in docs/guest-protocol.md ("A clone's identity"). */
#include <errno.h>
#include <stdio.h>
#include <linux/random.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "sprout/guest.h"
#include "identity.h"

/* A guest clock within this of the host's is left alone: clock_settime costs a system call (~0.5 ms
 * under PVM), and the VMM already moved kvmclock on by the time the snapshot spent on disk. */
#define CLOCK_SLACK_NS 50000000LL

#define ENTROPY_BYTES sizeof(((struct sprout_mailbox_hdr *)0)->entropy)

/* A clock through the vDSO (no system call while the clocksource allows it: kvm-clock with a
 * stable TSC, or the TSC). */
static int64_t clock_ns(clockid_t id)
{
        struct timespec ts;
        if (clock_gettime(id, &ts) != 0)
                return 0;
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Mix the host's bytes into the input pool, credited, then make the CRNG take a new key from it:
 * crediting alone re-keys only a CRNG that was not ready yet, and every clone's CRNG was ready
 * (and identical) when the snapshot was taken. */
static int reseed_kernel_rng(struct sprout_guest *g, const uint8_t *entropy, size_t n)
{
        /* A union may hold the struct with its flexible array; the words give the array room. */
        union {
                struct rand_pool_info info;
                uint32_t words[2 + ENTROPY_BYTES / 4];
        } pool;
        int rc = 0;

        pool.info.entropy_count = (int)(n * 8); /* bits: the host's getrandom bytes are uniform */
        pool.info.buf_size = (int)n;
        memcpy(pool.info.buf, entropy, n);
        g->identity_syscalls++;
        if (ioctl(g->rnd_fd, RNDADDENTROPY, &pool.info) < 0)
                rc = sprout_err_errno(&g->err, -errno, "new identity: RNDADDENTROPY on fd %d",
                                      g->rnd_fd);
        explicit_bzero(&pool, sizeof(pool));
        if (rc < 0)
                return rc;
        g->identity_syscalls++;
        if (ioctl(g->rnd_fd, RNDRESEEDCRNG) < 0)
                return sprout_err_errno(&g->err, -errno, "new identity: RNDRESEEDCRNG");
        return 0;
}

/* The host's wall clock was read when it wrote the identity, which may be well before this clone
 * first runs: it is a lower bound on the true time. So only a guest clock behind it is known to be
 * wrong; one ahead of it is most likely right, and the clock is never moved back. */
static void fix_clock(struct sprout_guest *g, uint64_t host_ns)
{
        if (host_ns == 0 || host_ns > (uint64_t)INT64_MAX)
                return; /* the VMM gave no clock */
        int64_t want = (int64_t)host_ns, now = clock_ns(CLOCK_REALTIME);
        if (now >= want - CLOCK_SLACK_NS)
                return;
        struct timespec ts = {.tv_sec = want / 1000000000LL, .tv_nsec = want % 1000000000LL};
        g->identity_syscalls++;
        if (clock_settime(CLOCK_REALTIME, &ts) == 0) {
                g->clock_step_ns = want - now;
                return;
        }
        /* Not fatal (randomness is what must differ), but say so: the clone's clock is wrong. */
        char msg[128];
        int n = snprintf(msg, sizeof(msg),
                         "sprout guest: the clone's clock is %lld ms behind the host's and "
                         "clock_settime failed (errno %d)",
                         (long long)((want - now) / 1000000), errno);
        sprout_guest_log(g, msg, n > 0 ? (size_t)n : 0);
}

int guest_apply_identity(struct sprout_guest *g)
{
        struct sprout_mailbox_hdr *h = g->hdr;
        uint8_t entropy[ENTROPY_BYTES];
        uint8_t uuid[sizeof(h->clone_uuid)];
        uint64_t wall = h->wallclock_ns;
        int64_t t0 = clock_ns(CLOCK_MONOTONIC);

        /* The vCPU runs only while the host is not writing the header: plain copies are stable. */
        memcpy(entropy, h->entropy, sizeof(entropy));
        memcpy(uuid, h->clone_uuid, sizeof(uuid));

        /* A kernel that takes the seed page mixes the VMM's seed in before its next output; this
         * is the path for one without the patch. */
        int rc = g->kernel_seeds ? 0 : reseed_kernel_rng(g, entropy, sizeof(entropy));
        if (rc < 0) {
                explicit_bzero(entropy, sizeof(entropy));
                /* Fail closed: the flag stays set, so if the host resumes us anyway every later
                 * ring tries again and the caller gets the error instead of a request. */
                sprout_guest_panic(g, SPROUT_PANIC_IDENTITY, g->err.msg);
                g->identity_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
                return rc;
        }
        fix_clock(g, wall);
        memcpy(g->clone_id, uuid, sizeof(uuid));
        g->identities++;
        /* The bytes are in the kernel pool now; keep no copy where a later snapshot would. */
        explicit_bzero(h->entropy, sizeof(h->entropy));
        h->flags &= ~SPROUT_MBF_NEW_IDENTITY;
        if (g->on_identity)
                g->on_identity(g->on_identity_ctx, entropy, sizeof(entropy));
        explicit_bzero(entropy, sizeof(entropy));
        g->identity_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
        return 0;
}

const uint8_t *sprout_guest_clone_id(const struct sprout_guest *g)
{
        return g->clone_id;
}

void sprout_guest_on_identity(struct sprout_guest *g, sprout_guest_identity_fn fn, void *ctx)
{
        g->on_identity = fn;
        g->on_identity_ctx = ctx;
}

bool sprout_guest_kernel_seeds(const struct sprout_guest *g)
{
        return g->kernel_seeds;
}

uint32_t sprout_guest_identity_syscalls(const struct sprout_guest *g)
{
        return g->identity_syscalls;
}
