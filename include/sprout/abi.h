/* The guest ABI of the sprout device: shared, byte for byte, by the VMM and the code inside the
 * guest. Freestanding on purpose (only <stdint.h>) so a static guest binary and the VMM include the
 * same file. */
#ifndef SPROUT_ABI_H
#define SPROUT_ABI_H

#include <stdint.h>

/* Bump MAJOR for any incompatible change; MINOR for additions an older VMM may ignore.
 * 1.1: the guest applies NEW_IDENTITY and clears it; PANIC_IDENTITY
 * 1.2: guest_realtime_ns at READY
 * 1.3: SPROUT_MBF_WARMUP (sent only to a guest at >= 1.3)
 * 1.4: guest_features at READY; the kernel seed page (struct sprout_seed_page) */
#define SPROUT_ABI_MAJOR   1
#define SPROUT_ABI_MINOR   4
#define SPROUT_ABI_VERSION ((SPROUT_ABI_MAJOR << 16) | SPROUT_ABI_MINOR)

/*
 * Guest-physical layout. The mailbox is its own KVM memslot, outside RAM and outside the e820 map,
 * so the guest reaches it only through /dev/mem and a clone's RAM never aliases it. RAM is limited
 * to below SPROUT_RAM_MAX so the mailbox, doorbell page, IOAPIC and LAPIC never overlap it.
 */
#define SPROUT_RAM_MAX            0xc0000000ULL /* 3 GiB */
#define SPROUT_MAILBOX_GPA        0xd0000000ULL
#define SPROUT_MAILBOX_SIZE       0x00100000ULL /* 1 MiB */
#define SPROUT_DOORBELL_MMIO_GPA  0xd0100000ULL /* one unbacked page: a 4-byte write rings */
#define SPROUT_DOORBELL_MMIO_SIZE 0x1000ULL
#define SPROUT_DOORBELL_PORT      0x05f0 /* a 32-bit outl rings */

/*
 * Doorbell value: bits 0..7 the command, bits 8..31 a command argument. Everything else a command
 * needs is in the mailbox header, and the VMM treats every field there as hostile.
 */
#define SPROUT_DB_CMD(v)    ((uint32_t)(v)&0xffu)
#define SPROUT_DB_ARG(v)    ((uint32_t)(v) >> 8)
#define SPROUT_DB(cmd, arg) ((uint32_t)(cmd) | ((uint32_t)(arg) << 8))

enum sprout_cmd {
        SPROUT_CMD_READY = 1, /* runtime initialized; header.abi_version says which ABI it speaks */
        SPROUT_CMD_DONE = 2,  /* a response of header.resp_len bytes is in the response area */
        SPROUT_CMD_LOG = 3,   /* header.log_len bytes of text in the log area */
        SPROUT_CMD_PANIC =
            4, /* the guest cannot go on; arg = a sprout_panic code, log area has why */
        SPROUT_CMD_POWEROFF = 5, /* the guest asks to be stopped (an orderly shutdown) */
};

enum sprout_panic {
        SPROUT_PANIC_AGENT = 1,        /* the agent could not set the guest up */
        SPROUT_PANIC_HANDLER_EXIT = 2, /* the handler process exited before READY */
        SPROUT_PANIC_HANDLER_EXEC = 3, /* the handler could not be started */
        SPROUT_PANIC_ABI = 4,      /* the guest library found a mailbox it does not understand */
        SPROUT_PANIC_IDENTITY = 5, /* a clone could not re-seed its RNG from the new identity */
};

/* Mailbox areas, as offsets from SPROUT_MAILBOX_GPA. */
#define SPROUT_MB_HDR_OFF   0x0
#define SPROUT_MB_HDR_SIZE  0x1000
#define SPROUT_MB_LOG_OFF   0x1000
#define SPROUT_MB_LOG_SIZE  0x1000
#define SPROUT_MB_REQ_OFF   0x2000
#define SPROUT_MB_REQ_SIZE  0x7f000 /* 508 KiB */
#define SPROUT_MB_RESP_OFF  0x81000
#define SPROUT_MB_RESP_SIZE 0x7f000 /* 508 KiB */

#define SPROUT_MB_MAGIC 0x54555053u /* "SPUT" little-endian: written by the VMM */

/*
 * The kernel seed page (ABI 1.4): the last 64 bytes of the header page, read by sprout's guest
 * kernel patch (guest/kernel/patches/0005) through `sprout.seed=<its guest-physical address>` on
 * the command line. Before the CRNG produces output, a kernel that sees a generation other than the
 * last one it took mixes the seed into its key: a clone's kernel randomness differs from its
 * siblings' with no system call (docs/guest-protocol.md, "A clone's identity").
 */
#define SPROUT_MB_SEED_OFF 0xfc0
/* SPROUT_MAILBOX_GPA + SPROUT_MB_SEED_OFF, as a literal for the command line. */
#define SPROUT_SEED_GPA        0xd0000fc0
#define SPROUT_SEED_MAGIC      0x44454553u /* "SEED": written by the VMM */
#define SPROUT_SEED_KERNEL_ABI 1u          /* what a patched kernel writes into kernel_abi */

struct sprout_seed_page {
        uint32_t magic;         /* [host] SPROUT_SEED_MAGIC */
        uint32_t kernel_abi;    /* [guest kernel] SPROUT_SEED_KERNEL_ABI once it took the page */
        uint64_t generation;    /* [host] new for every seed; never 0 */
        uint8_t seed[32];       /* [host] from the host's getrandom; the kernel wipes it */
        uint64_t applied;       /* [guest kernel] the generation it last mixed in */
        uint64_t applied_count; /* [guest kernel] seeds mixed in since boot */
};

/* guest_features bits (ABI 1.4), reported at READY. */
#define SPROUT_GF_KERNEL_SEED                                                                      \
        0x1u /* the guest kernel takes the seed page: the library makes no RNG system calls */

/*
 * The header page. Fields marked [host] are written only by the VMM before it enters the vCPU;
 * [guest] only by the guest before it rings. A field the guest writes is read once by the VMM into
 * a local and checked before use.
 */
struct sprout_mailbox_hdr {
        uint32_t magic;       /* [host] SPROUT_MB_MAGIC */
        uint32_t host_abi;    /* [host] SPROUT_ABI_VERSION of the VMM */
        uint32_t abi_version; /* [guest] the guest library's SPROUT_ABI_VERSION, for READY */
        uint32_t seq;         /* [host] request sequence number, bumped per request */
        uint32_t req_len;     /* [host] bytes in the request area */
        uint32_t resp_len;    /* [guest] bytes in the response area, for DONE */
        uint32_t log_len;     /* [guest] bytes in the log area, for LOG and PANIC */
        uint32_t flags;       /* [host] SPROUT_MBF_*; the guest clears NEW_IDENTITY once applied */
        uint8_t clone_uuid[16]; /* [host] identity of this clone (zero before cloning) */
        uint64_t wallclock_ns; /* [host] CLOCK_REALTIME at resume, for the guest to set its clock */
        uint8_t entropy[64];   /* [host] fresh random bytes for the guest RNG, new per clone */
        uint64_t guest_realtime_ns; /* [guest] its CLOCK_REALTIME just before ringing READY: lets
                                     * the VMM correct a clone's clock with no guest work */
        uint32_t guest_features;    /* [guest] SPROUT_GF_*, for READY (ABI 1.4) */
        uint32_t reserved0;
        uint8_t reserved[3896];
        struct sprout_seed_page seed; /* at SPROUT_MB_SEED_OFF */
};

#define SPROUT_MBF_NEW_IDENTITY                                                                    \
        0x1u /* clone_uuid/entropy/wallclock are new: re-seed before serving.                      \
              * Set by the VMM, cleared by the guest library when applied. */
#define SPROUT_MBF_WARMUP                                                                          \
        0x4u /* ABI 1.3: this request is a warm-up, not the runtime's: the guest library applies a \
              * pending identity, calls the runtime's warm-up hook, clears the flag and answers    \
              * DONE with resp_len 0 itself. The VMM sends it only to a guest whose READY said     \
              * ABI >= 1.3. */

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct sprout_mailbox_hdr) == SPROUT_MB_HDR_SIZE, "header is one page");
_Static_assert(sizeof(struct sprout_seed_page) == 64, "the kernel patch's layout");
_Static_assert(SPROUT_SEED_GPA == SPROUT_MAILBOX_GPA + SPROUT_MB_SEED_OFF, "seed address");
_Static_assert(__builtin_offsetof(struct sprout_mailbox_hdr, seed) == SPROUT_MB_SEED_OFF,
               "the seed page is where the command line says");
_Static_assert(SPROUT_MB_RESP_OFF + SPROUT_MB_RESP_SIZE == SPROUT_MAILBOX_SIZE,
               "areas fill mailbox");
_Static_assert(SPROUT_MB_REQ_OFF + SPROUT_MB_REQ_SIZE == SPROUT_MB_RESP_OFF,
               "areas are contiguous");
_Static_assert(SPROUT_MAILBOX_GPA >= SPROUT_RAM_MAX, "mailbox is above RAM");
#endif

#endif
