/* Prewarming an image into a snapshot, loading a snapshot as a shared base, and the clones made
 * from it. What the CLI's direct mode and the daemon both build on. */
#ifndef SPROUT_CLONE_H
#define SPROUT_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/err.h"
#include "sprout/snapshot.h"
#include "sprout/vmm.h"
#include "sprout/vmstate.h"

/* ---- images as VMs ---- */

struct sprout_manifest;

/* The VM a built image describes: its memory, vCPUs, kernel, initrd and command line, no console.
 * The strings stay the manifest's; a caller overrides fields (an extra command line, a console)
 * on the copy it gets. */
struct sprout_vm_config sprout_manifest_vm_config(const struct sprout_manifest *m);

/* ---- prewarm: image -> snapshot ---- */

enum sprout_prewarm_phase { SPROUT_PW_BOOTING, SPROUT_PW_SNAPSHOTTING, SPROUT_PW_WRITING };

struct sprout_prewarm_opts {
        const char *image; /* image directory or its manifest.json (for messages, with manifest) */
        /* The image, loaded already (its files open): used instead of loading image. May be NULL.
         */
        const struct sprout_manifest *manifest;
        const char *out_path; /* the snapshot file; replaced atomically */
        const char *cmdline;  /* appended to the image's command line; may be NULL */
        int console_fd;       /* guest console echoed here; -1 for none */
        int64_t timeout_ms;   /* how long the boot may take to READY */
        int zstd_level;       /* 0: the default */
        const uint8_t *uuid;  /* 16 bytes: the snapshot's UUID; NULL for a random one */
        /* The snapshot authenticator's key (the daemon's); NULL writes a file without one. */
        const struct snap_key *key;
        /* Called when a phase starts and while writing (done/total bytes); may be NULL. */
        void (*progress)(void *ctx, enum sprout_prewarm_phase phase, uint64_t done, uint64_t total);
        void *progress_ctx;
        /* Leave the working set out (no trial clone at prewarm; clones fault their pages in). */
        bool no_working_set;
};

struct sprout_prewarm_stats {
        double boot_s;     /* VM creation to READY */
        double capture_ms; /* READY to state captured */
        struct snap_write_stats write;
        /* The working set recorded (docs/architecture.md, "The working set"): pages a warmed-up
         * trial clone read and wrote, and the time the trial took; all 0 when none was. */
        uint64_t ws_read_pages, ws_write_pages;
        double ws_ms;
        uint8_t uuid[16];
        char console_tail[4096]; /* the guest's last console lines when the boot failed */
};

int sprout_prewarm(struct sprout_kvm *kvm, const struct sprout_prewarm_opts *o,
                   struct sprout_prewarm_stats *st, struct sprout_err *err);

/* ---- base: a loaded snapshot whose RAM every clone shares ---- */

struct sprout_base;
struct sprout_clone;

struct sprout_base_info {
        uint8_t uuid[16];
        uint64_t ram_size;
        const char *manifest_json; /* the image manifest recorded at prewarm */
        struct snap_load_stats load;
        /* The working set recorded at prewarm (0 and 0: the snapshot has none). */
        uint64_t ws_read_pages, ws_write_pages;
};

/* Opens and validates a snapshot, checks this host can run it, and decompresses its RAM into a
 * sealed memfd. The base holds a reference to kvm, which must outlive it. */
int sprout_base_load(struct sprout_kvm *kvm, const char *path, unsigned threads,
                     struct sprout_base **out, struct sprout_err *err);
/* sprout_base_load, and with a non-NULL key the file must carry a valid authenticator under it
 * (snap_open_keyed): an unauthenticated or edited file is refused before its sections are used,
 * and a chunk whose tag fails stops the load. */
int sprout_base_load_keyed(struct sprout_kvm *kvm, const char *path, const struct snap_key *key,
                           unsigned threads, struct sprout_base **out, struct sprout_err *err);
const struct sprout_base_info *sprout_base_info(const struct sprout_base *b);

/* What another process needs to make clones of a loaded base (the daemon's workers,
 * docs/workers.md): its RAM memfd and its state sections. */
struct sprout_base_export {
        uint8_t uuid[16];
        uint64_t ram_size;
        uint32_t host_kind; /* recorded in the snapshot */
        int memfd;
        struct sprout_vm_section sections[SPROUT_VM_MAX_SECTIONS];
        unsigned nsections;
};
/* Fills x from b; the memfd and section data stay b's. */
void sprout_base_export(const struct sprout_base *b, struct sprout_base_export *x);
/* A base from another process's export: the sections are copied and checked against this host
 * (sprout_vm_check_compat) and every record again at each restore; x->memfd becomes the base's on
 * success (the caller keeps it on failure). */
int sprout_base_adopt(struct sprout_kvm *kvm, const struct sprout_base_export *x,
                      struct sprout_base **out, struct sprout_err *err);

/* Prepares up to n VM shells (VM fd, memslots over the base, irqchip, vCPU) so clones skip that
 * work. Thread-safe; meant to run off the clone path (a background thread in the daemon). */
int sprout_base_prepare(struct sprout_base *b, unsigned n, struct sprout_err *err);
unsigned sprout_base_pooled(struct sprout_base *b);

/*
 * Keeps up to n ready clones (at most 64): each made with sprout_clone_create (its own identity)
 * and warmed up with sprout_clone_warmup, so its identity step and its first touches of the
 * runtime's pages are paid here, off the request path. Thread-safe, like sprout_base_prepare.
 * -ENOTSUP (nothing pooled) when the snapshot's guest does not support warm-ups (ABI < 1.3).
 */
int sprout_base_prepare_ready(struct sprout_base *b, unsigned n, struct sprout_err *err);
unsigned sprout_base_ready_count(struct sprout_base *b);

/* Takes a ready clone out of the pool into *out (the caller now owns it; no clone is handed out
 * twice); -ENOENT when the pool is empty. */
int sprout_clone_take_ready(struct sprout_base *b, struct sprout_clone **out);

/*
 * Recycling (docs/architecture.md, "Recycling"). A clone its user is done with goes back to its
 * base with sprout_clone_release: while the ready pool is short of its last
 * sprout_base_prepare_ready target (counting those already given back), the next fill resets it in
 * place (sprout_vm_reset, a new identity, a warm-up) into a ready clone, which costs no
 * KVM_CREATE_VM and no VM teardown; otherwise, or when it died, it is destroyed at once. A clone
 * that fails its recycle is destroyed and a new one made instead.
 */
void sprout_clone_release(struct sprout_clone *c);
/* Whether released clones are recycled (the default) or destroyed (the path before recycling,
 * kept for comparisons: sprout bench, sproutd --no-recycle). */
void sprout_base_set_recycle(struct sprout_base *b, bool on);
/* How many ready clones b should keep now, from its observed demand: takes per second (hits and
 * misses, smoothed over seconds, halving per idle second) times the time one ready clone takes to
 * make (smoothed), twice over, plus one; never below floor nor above cap (the memory the pool may
 * hold). Pass it to sprout_base_prepare_ready. */
unsigned sprout_base_ready_target(struct sprout_base *b, unsigned floor, unsigned cap);
/* The two figures behind it, for metrics. */
void sprout_base_ready_demand(struct sprout_base *b, double *rate_per_s, double *fill_ms);

/*
 * Keeping the pools (docs/architecture.md "Ready clones"): what a pool thread calls each time it
 * wakes. A keeper remembers how the last tries went, so a base whose shells or warm-ups keep
 * failing is retried less and less often instead of every few seconds for ever, and a guest whose
 * warm-up fails SPROUT_KEEP_READY_GIVE_UP times in a row gets no more ready clones (fresh
 * one-shots then restore on the request path, as without a pool).
 */
#define SPROUT_KEEP_RETRY_MIN_MS  1000
#define SPROUT_KEEP_RETRY_MAX_MS  300000
#define SPROUT_KEEP_READY_GIVE_UP 5
struct sprout_pool_keeper {
        unsigned failures;       /* tries in a row that failed */
        unsigned ready_failures; /* of those, ready clones that could not be made */
        bool ready_off;          /* no more ready clones: the guest cannot warm up, or gave up */
        int64_t retry_ms;        /* the wait after the last failure */
};
/* Tops b's shells up to shells, its ready clones up to sprout_base_ready_target(b, ready_floor,
 * ready_cap) (none when ready_cap is 0 or k->ready_off), then the shells they used. Returns 0 when
 * the pools are full (wait for the next take), or the milliseconds to wait before the next try
 * after a failure, doubling from SPROUT_KEEP_RETRY_MIN_MS to SPROUT_KEEP_RETRY_MAX_MS, with err
 * saying what failed. */
int64_t sprout_base_keep_pools(struct sprout_base *b, unsigned shells, unsigned ready_floor,
                               unsigned ready_cap, struct sprout_pool_keeper *k,
                               struct sprout_err *err);
/* When b's clones get the snapshot's working set pre-faulted (no effect on a snapshot without
 * one; docs/architecture.md, "The working set"): before their first run (the default: a clone
 * that waits unused costs no copy of it), into every shell as it is made (the old path, faster
 * for a first request that arrives at a shell, at ~300 KiB per waiting clone for hello), or never.
 * For benchmarks and tests. Set it before the base's shells and clones are made, or from the
 * thread that makes them. */
enum sprout_prefault { SPROUT_PREFAULT_FIRST_RUN, SPROUT_PREFAULT_SHELL, SPROUT_PREFAULT_OFF };
void sprout_base_set_prefault(struct sprout_base *b, enum sprout_prefault when);
struct sprout_recycle_stats {
        uint64_t recycled;  /* released clones made ready again */
        uint64_t failed;    /* recycles that failed (the clone was destroyed and replaced) */
        uint64_t destroyed; /* released clones not kept: dead, pool full, or recycling off */
        unsigned waiting;   /* released clones waiting for the next fill */
};
void sprout_base_recycle_stats(struct sprout_base *b, struct sprout_recycle_stats *out);

/* Frees the base and the ready clones still pooled; every clone taken from it must be destroyed
 * first. */
void sprout_base_free(struct sprout_base *b);

/* ---- clones ---- */

struct sprout_clone;

struct sprout_clone_timing {
        /* Call to vCPU runnable: the state ioctls, plus shell creation when none was pooled. */
        double restore_ms;
        bool pooled; /* a prepared shell was used */
        /* Set by the daemon for a ready clone it handed out: how often it had been recycled. */
        unsigned generation;
};

/* Restores a clone of the base with a new identity (UUID, entropy, wall clock). It runs when first
 * invoked. console_fd: guest console echo, -1 for none. */
int sprout_clone_create(struct sprout_base *b, int console_fd, struct sprout_clone **out,
                        struct sprout_clone_timing *t, struct sprout_err *err);

/* Sends one request and waits for the response (valid until the next invoke). A guest that panics,
 * stops or does not answer within timeout_ms gives an error naming which; the clone is then
 * unusable (-EPROTO, -ESHUTDOWN, -ETIMEDOUT) but other clones are unaffected. */
int sprout_clone_invoke(struct sprout_clone *c, const void *req, size_t len, int64_t timeout_ms,
                        const void **resp, size_t *resp_len, struct sprout_err *err);

/*
 * Sends a warm-up (ABI 1.3, sprout_vm_warmup): the clone applies its identity and runs the
 * runtime's warm-up hook, so its first real request does not pay for either. -ENOTSUP (the clone
 * is still fine) when the guest does not support warm-ups; other errors as for invoke.
 */
int sprout_clone_warmup(struct sprout_clone *c, int64_t timeout_ms, struct sprout_err *err);

const char *sprout_clone_id(const struct sprout_clone *c); /* the clone UUID, as text */
/* How many times the clone was recycled: 0 for one restored afresh. */
unsigned sprout_clone_generation(const struct sprout_clone *c);
uint64_t sprout_clone_private_bytes(struct sprout_clone *c);
struct sprout_vm *sprout_clone_vm(struct sprout_clone *c);
void sprout_clone_destroy(struct sprout_clone *c);

#endif
