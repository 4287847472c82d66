/* Opening and closing the sprout device from the guest: doorbell access, the /dev/mem mappings of
 * the mailbox and the MMIO doorbell page, the magic/ABI check, and /dev/urandom for the identity
 * step. With identity.c, the only part of the library that makes system calls. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sprout/guest.h"
#include "doorbell.h"
#include "identity.h"

#define PAGE 4096u

/*
 * Map size bytes of guest-physical memory at gpa. The mailbox is RAM on the host side, so it is
 * mapped without O_SYNC (write-back; under shadow paging an uncached mapping would make every
 * request and response byte an uncached access); the doorbell page is mapped O_SYNC (uncached), as
 * device memory.
 */
static int map_phys(uint64_t gpa, size_t size, int extra_flags, void **out, struct sprout_err *err)
{
        int fd = open("/dev/mem", O_RDWR | O_CLOEXEC | extra_flags);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "/dev/mem: open");
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)gpa);
        int rc = p == MAP_FAILED ? -errno : 0;
        close(fd); /* the mapping keeps what it needs */
        if (rc < 0)
                return sprout_err_errno(err, rc, "/dev/mem: mmap of %zu bytes at 0x%llx", size,
                                        (unsigned long long)gpa);
        *out = p;
        return 0;
}

static int pick_mode(int *use_mmio, struct sprout_err *err)
{
        const char *mode = getenv("SPROUT_DOORBELL");

        *use_mmio = 0;
        if (!mode || !*mode || strcmp(mode, "port") == 0)
                return 0;
        if (strcmp(mode, "mmio") == 0) {
                *use_mmio = 1;
                return 0;
        }
        return sprout_err_set(err, -EINVAL,
                              "SPROUT_DOORBELL=\"%.32s\": expected \"port\" or \"mmio\"", mode);
}

static int check_abi(struct sprout_guest *g)
{
        uint32_t magic = g->hdr->magic, host = g->hdr->host_abi;

        if (magic != SPROUT_MB_MAGIC)
                return sprout_err_set(
                    &g->err, -EPROTO,
                    "mailbox at 0x%llx: magic 0x%08x, expected 0x%08x (no sprout device?)",
                    (unsigned long long)SPROUT_MAILBOX_GPA, magic, SPROUT_MB_MAGIC);
        if ((host >> 16) != SPROUT_ABI_MAJOR)
                return sprout_err_set(
                    &g->err, -EPROTO, "mailbox: host speaks ABI %u.%u, this library speaks %u.%u",
                    host >> 16, host & 0xffffu, SPROUT_ABI_MAJOR, SPROUT_ABI_MINOR);
        return 0;
}

/*
 * Open /dev/urandom now and keep it: in a clone the identity step must not pay for an open (a path
 * walk and a file allocation) on its first request. Adding zero bytes is the permission check
 * (RNDADDENTROPY wants CAP_SYS_ADMIN): a handler that could not re-seed its clones' RNG fails here,
 * at build time, not in every clone.
 */
static int open_rng(struct sprout_guest *g)
{
        struct rand_pool_info none = {.entropy_count = 0, .buf_size = 0};
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return sprout_err_errno(&g->err, -errno, "/dev/urandom: open");
        if (ioctl(fd, RNDADDENTROPY, &none) < 0) {
                int rc = -errno;
                close(fd);
                return sprout_err_errno(&g->err, rc,
                                        "/dev/urandom: RNDADDENTROPY (clones could not re-seed "
                                        "their RNG; the handler needs CAP_SYS_ADMIN)");
        }
        g->rnd_fd = fd;
        return 0;
}

/* Close what open made so far, keeping the reason. */
static void fail_close(struct sprout_guest *g)
{
        struct sprout_err keep = g->err;
        sprout_guest_close(g);
        g->err = keep;
}

int sprout_guest_open(struct sprout_guest *g)
{
        int use_mmio, rc;

        memset(g, 0, sizeof(*g));
        g->rnd_fd = -1;
        rc = pick_mode(&use_mmio, &g->err);
        if (rc < 0)
                return rc;
        if (!use_mmio) {
                rc = db_port_access();
                if (rc < 0)
                        return sprout_err_errno(&g->err, rc, "doorbell port 0x%x: ioperm and iopl",
                                                SPROUT_DOORBELL_PORT);
        }

        void *mb, *db;
        rc = map_phys(SPROUT_MAILBOX_GPA, SPROUT_MAILBOX_SIZE, 0, &mb, &g->err);
        if (rc < 0)
                return rc;
        if (use_mmio) {
                rc = map_phys(SPROUT_DOORBELL_MMIO_GPA, SPROUT_DOORBELL_MMIO_SIZE, O_SYNC, &db,
                              &g->err);
                if (rc < 0) {
                        munmap(mb, SPROUT_MAILBOX_SIZE);
                        return rc;
                }
                g->mmio = db;
        }
        g->mb = mb;
        g->hdr = mb;

        /* Touch every page now: after a snapshot restore a first touch costs a guest fault. */
        for (size_t off = 0; off < SPROUT_MAILBOX_SIZE; off += PAGE)
                (void)*(volatile uint8_t *)(g->mb + off);
        /* And the doorbell page, with a read (the VMM answers its ABI version; a read rings
         * nothing), so READY, the first store, is not also the page's first access. */
        if (g->mmio)
                (void)*g->mmio;

        rc = check_abi(g);
        if (rc < 0) {
                /* A mailbox laid out differently cannot carry the reason; the code does. */
                sprout_guest_ring(g, SPROUT_CMD_PANIC, SPROUT_PANIC_ABI);
                fail_close(g);
                return rc;
        }
        /* sprout's kernel took the seed page at boot (guest/kernel/patches/0005): it re-keys its
         * CRNG from every new seed itself, so the library needs no RNG system calls, no fd and no
         * CAP_SYS_ADMIN. A kernel without the patch never writes the word. */
        g->kernel_seeds = g->hdr->seed.kernel_abi == SPROUT_SEED_KERNEL_ABI;
        rc = g->kernel_seeds ? 0 : open_rng(g);
        /* A VMM may hand the booting VM entropy the same way, flag set before the guest first ran.
         * Applying it now makes the kernel CRNG ready in the base VM, so no clone pays for that
         * one-time transition (~10 ms and ~80 KiB of dirtied pages under PVM). */
        /* Only the identity: a warm-up flag seen here is one the runtime never answered (it died
         * in its hook, and the agent is opening the device to report that), and answering it
         * would tell the VMM the warm-up went well. */
        if (rc == 0 && (g->hdr->flags & SPROUT_MBF_NEW_IDENTITY))
                rc = guest_apply_identity(g);
        if (rc < 0) {
                fail_close(g);
                return rc;
        }
        /* The counters are for what a clone pays; this was paid once, at boot. */
        g->identities = 0;
        g->identity_syscalls = 0;
        g->identity_ns = 0;
        g->clock_step_ns = 0;
        return 0;
}

void sprout_guest_close(struct sprout_guest *g)
{
        /* A g that sprout_guest_open never touched is all zero: fd 0 is not ours then. */
        if (g->mb && g->rnd_fd >= 0)
                close(g->rnd_fd);
        g->rnd_fd = -1;
        if (g->mmio)
                munmap((void *)g->mmio, SPROUT_DOORBELL_MMIO_SIZE);
        if (g->mb)
                munmap(g->mb, SPROUT_MAILBOX_SIZE);
        g->mmio = NULL;
        g->mb = NULL;
        g->hdr = NULL;
}
