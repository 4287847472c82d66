/* The guest library: lets a process inside the guest (the agent, or a handler) speak the sprout
 * device protocol of abi.h directly from user mode. After sprout_guest_open() no call here makes a
 * system call, except the few that apply a clone's new identity (see sprout_guest_ready). */
#ifndef SPROUT_GUEST_H
#define SPROUT_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/abi.h"
#include "sprout/err.h"

/* Called once per new identity, after the kernel RNG was re-seeded: re-seed user-space PRNGs from
 * entropy (len bytes, the host's fresh bytes; they are wiped when it returns). */
typedef void (*sprout_guest_identity_fn)(void *ctx, const uint8_t *entropy, size_t len);

struct sprout_guest {
        struct sprout_mailbox_hdr *hdr; /* the mailbox header page; NULL when not open */
        uint8_t *mb;                    /* the whole mailbox mapping (SPROUT_MAILBOX_SIZE bytes) */
        volatile uint32_t *mmio;        /* the MMIO doorbell, or NULL to ring with outl */
        struct sprout_err err;          /* why sprout_guest_open() (or an identity step) failed */

        /* Clone identity (sprout_guest_ready documents the steps). The counters cover identities
         * applied when READY or DONE returned; one the VMM hands at boot is applied by
         * sprout_guest_open and not counted (the base pays it, not the clones). */
        int rnd_fd;           /* /dev/urandom, opened by sprout_guest_open; -1 if not */
        bool kernel_seeds;    /* the kernel re-seeds itself from the seed page (ABI 1.4) */
        uint8_t clone_id[16]; /* this clone's UUID; all zero before the first clone */
        sprout_guest_identity_fn on_identity; /* the runtime's PRNG re-seed hook, or NULL */
        void *on_identity_ctx;
        uint32_t identities;        /* new identities applied */
        uint32_t identity_syscalls; /* system calls the library made applying them, all told */
        int64_t clock_step_ns;      /* the last wall-clock correction made (0: none was needed) */
        uint64_t identity_ns;       /* time spent applying them, hook included (CLOCK_MONOTONIC) */

        /* Warm-ups (SPROUT_MBF_WARMUP, ABI 1.3): see sprout_guest_on_warmup. */
        void (*on_warmup)(void *ctx); /* the runtime's warm-up hook, or NULL */
        void *on_warmup_ctx;
        uint32_t warmups; /* warm-up requests answered */
};

/*
 * Ask for doorbell access (ioperm, else iopl; or the MMIO page when the environment has
 * SPROUT_DOORBELL=mmio), map the mailbox through /dev/mem and check its magic and ABI major.
 * Touches every mailbox page, and reads the MMIO doorbell once, so later accesses never fault.
 * Opens /dev/urandom (kept open for the identity step) and checks the process may add entropy;
 * if the VMM already set SPROUT_MBF_NEW_IDENTITY (entropy for the booting VM), applies it.
 * Returns 0, or a negative errno with g->err set. On an ABI mismatch it rings PANIC
 * (SPROUT_PANIC_ABI) before failing. Needs root (CAP_SYS_RAWIO, CAP_SYS_ADMIN, CAP_SYS_TIME).
 */
int sprout_guest_open(struct sprout_guest *g);

/* Unmap everything; g may then be opened again. Safe on a closed or failed g. */
void sprout_guest_close(struct sprout_guest *g);

/* Ring the doorbell with a command and a 24-bit argument. Returns when the host re-enters the vCPU.
 */
void sprout_guest_ring(struct sprout_guest *g, uint32_t cmd, uint32_t arg);

/*
 * For a caller whose sprout_guest_open() failed: ask for port access and ring the port directly,
 * with no mailbox. Makes system calls. Returns 0, or a negative errno when port access was refused.
 */
int sprout_guest_ring_port(uint32_t cmd, uint32_t arg);

/*
 * Report the ABI version and ring READY. Call it once, after all initialization and priming: when
 * it returns (in a clone, or after a prewarm host resumes the VM) the first request is in place.
 * Returns 0, or -EBADF if g is not open.
 *
 * When this or sprout_guest_done() returns with SPROUT_MBF_NEW_IDENTITY set in the header (the
 * VMM made this VM a clone), the library applies the identity before returning:
 *   1. mixes hdr->entropy into the kernel RNG, credited (RNDADDENTROPY), and forces a reseed
 *      (RNDRESEEDCRNG), so the next getrandom() differs from every other clone's;
 *   2. sets CLOCK_REALTIME to hdr->wallclock_ns only if the clock is more than 50 ms behind it;
 *   3. copies the UUID (sprout_guest_clone_id), clears the flag, wipes the entropy, and calls the
 *      sprout_guest_on_identity() hook.
 * Two or three system calls (g->identity_syscalls counts them). If the RNG step fails the library
 * rings PANIC (SPROUT_PANIC_IDENTITY) and, should the host resume it anyway, returns the negative
 * errno: a clone never serves with its parent's randomness.
 */
int sprout_guest_ready(struct sprout_guest *g);

/* The clone's UUID: 16 bytes, all zero until a new identity has been applied. */
const uint8_t *sprout_guest_clone_id(const struct sprout_guest *g);

/*
 * Have fn(ctx, entropy, len) called on every new identity, after the kernel RNG step, to re-seed
 * user-space PRNGs. It runs on the first request's path: it should make no system call (its own
 * are not in identity_syscalls). fn NULL removes the hook.
 */
void sprout_guest_on_identity(struct sprout_guest *g, sprout_guest_identity_fn fn, void *ctx);

/*
 * Have fn(ctx) called for every warm-up request (SPROUT_MBF_WARMUP, ABI 1.3): a request the VMM
 * sends to a fresh clone before any real one, off the request path, so the clone pays its first
 * touches of the runtime's pages and its identity step then. When READY or DONE returns with the
 * flag set, the library applies a pending identity (as above), calls fn (if any), clears the flag,
 * answers DONE with resp_len 0 itself and waits for the next request: the runtime's request loop
 * never sees a warm-up. fn should run the runtime's request path on a sample, with its output and
 * any request counters discarded: a warmed clone's first real request must look like its first.
 * fn NULL removes the hook (warm-ups are then answered with no work but the identity step).
 */
void sprout_guest_on_warmup(struct sprout_guest *g, void (*fn)(void *ctx), void *ctx);

/* System calls the library has made applying identities (the same as g->identity_syscalls). */
uint32_t sprout_guest_identity_syscalls(const struct sprout_guest *g);
/* Whether the guest kernel re-seeds its CRNG from the VMM's seed page itself (sprout's kernel
 * patch): then applying an identity makes no RNG system calls. */
bool sprout_guest_kernel_seeds(const struct sprout_guest *g);

/* Put up to SPROUT_MB_LOG_SIZE bytes of text in the log area and ring LOG. */
void sprout_guest_log(struct sprout_guest *g, const char *text, size_t len);

/* Put text (truncated to the log area) there and ring PANIC with code (enum sprout_panic). The host
 * is not expected to resume the guest; if it does, this returns. */
void sprout_guest_panic(struct sprout_guest *g, uint32_t code, const char *text);

/*
 * The current request: *buf points into the mailbox request area, *len is the host's req_len
 * clamped to SPROUT_MB_REQ_SIZE. Valid until the next DONE.
 */
void sprout_guest_request(struct sprout_guest *g, const void **buf, uint32_t *len);

/* The response area, to build a response in place; *cap receives its size (SPROUT_MB_RESP_SIZE). */
void *sprout_guest_response_buf(struct sprout_guest *g, uint32_t *cap);

/*
 * Publish len bytes already in the response area and ring DONE. When it returns, the next request
 * is in place (and a new identity applied, as for sprout_guest_ready). Returns 0, -EMSGSIZE
 * (without ringing) if len exceeds the response area, or the errno of a failed identity step.
 */
int sprout_guest_done(struct sprout_guest *g, uint32_t len);

/* Copy buf into the response area (unless it already is the response area) and call
 * sprout_guest_done. */
int sprout_guest_respond(struct sprout_guest *g, const void *buf, uint32_t len);

/*
 * Write to `bytes` of stack below the caller, one store per page, so a deeper call path taken later
 * (after a snapshot restore) finds its stack pages already present. Call it while priming.
 */
void sprout_guest_touch_stack(size_t bytes);

#endif
