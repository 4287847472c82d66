/* sproutd's core state and the contracts between its modules: the snapshot registry, the clone
 * table, loaded bases, prewarm jobs, the worker pool and the reaper. Private to daemon/.
 *
 * Locking: one daemon-wide mutex (d->lock) guards the registry, the clone table, every counter and
 * the state fields of entries and clones; it is held only for bookkeeping, never across KVM work or
 * I/O. A clone's run_lock is held while one thread drives its vCPU (invoke). An entry's load_lock
 * serialises loading its base. Order: run_lock or load_lock, then d->lock, then the reaper's lock
 * or a base's pool lock; never the reverse. */
#ifndef SPROUT_SERVICE_H
#define SPROUT_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/floor.h"
#include "sprout/image.h"
#include "sprout/run_as.h"
#include "metrics.h"
#include "config.h"

#define SPROUTD_ID_LEN 37 /* a lowercase UUID and its NUL */

enum dsnap_status { DSNAP_QUEUED, DSNAP_BOOTING, DSNAP_SNAPSHOTTING, DSNAP_READY, DSNAP_FAILED };
const char *dsnap_status_name(enum dsnap_status s);

struct api_server;
struct dbase;
struct dclone;
struct job;

/* One snapshot: a file under the state directory, or a prewarm producing one. Freed (and its base
 * unloaded) by the reaper when the last reference goes. */
struct dsnap {
        struct dsnap *next; /* d->snaps */
        char id[SPROUTD_ID_LEN];
        uint8_t uuid[16];
        char path[4096];
        char image[4096];    /* the image a prewarm was asked for; "" when found on disk */
        char image_name[65]; /* from the manifest the snapshot records */
        uid_t owner;         /* the tenant: the prewarming client's uid (owners.c) */
        enum dsnap_status status;
        char error[512];
        char *console_tail; /* a failed prewarm's last console lines, or NULL */
        uint64_t progress_done, progress_total;
        uint64_t ram_size, file_size, nonzero_bytes;
        int64_t created_ns; /* CLOCK_REALTIME */
        double boot_s, write_s;
        unsigned refs;        /* the registry's, each clone's, each in-flight request's */
        unsigned clones;      /* live clones of any origin, reservations included */
        unsigned api_clones;  /* of those, the ones POST /v1/clones made (they block a delete) */
        bool listed;          /* in d->snaps */
        int64_t last_used_ns; /* CLOCK_MONOTONIC: last clone created or destroyed */
        pthread_mutex_t load_lock;
        struct dbase *base;  /* set under load_lock and d->lock; freed by the reaper */
        struct dclone *idle; /* reusable one-shot clones, a stack through idle_next */
        unsigned nidle;
        bool reaping; /* queued for the reaper's final free */
        struct dsnap *reap_next;
};

enum dclone_state { DC_IDLE, DC_BUSY, DC_DEAD };
enum dclone_origin { DC_API, DC_POOL, DC_ONESHOT };
const char *dclone_state_name(enum dclone_state s);
const char *dclone_origin_name(enum dclone_origin o);

struct wproc;

struct dclone {
        struct dclone *hnext;     /* clone table bucket */
        struct dclone *idle_next; /* entry->idle */
        struct dclone *reap_next; /* reaper queue */
        struct dsnap *snap;       /* holds a reference */
        struct sprout_clone *c;   /* in this process (clones_per_worker 0), else NULL */
        struct wproc *w;          /* else the worker holding it (a reference), and its slot there */
        uint32_t wslot;
        int wsock;                /* with w: the clone's own socket to it (docs/workers.md) */
        bool worker_died;         /* dead because its worker died (502 worker_died) */
        pthread_mutex_t run_lock; /* held by the thread driving the vCPU */
        char id[SPROUTD_ID_LEN];
        enum dclone_state state;
        enum dclone_origin origin;
        bool in_table, in_idle;
        unsigned refs;
        uint64_t invocations;
        int64_t created_real_ns, created_ns, last_used_ns;
        double restore_ms;
        bool pooled_shell;
        char dead_reason[sizeof(((struct sprout_err *)0)->msg)];
};

#define CLONE_BUCKETS 1024

/* A queued request, embedded in the caller's: whose it is, the clone it must have to itself (0:
 * none) and until when it may wait for that clone or its tenant's share (0: no limit). */
struct fq_item {
        struct fq_item *next;
        uint32_t tenant;
        uint64_t key;
        int64_t deadline_ns; /* CLOCK_MONOTONIC */
};

/* One tenant's waiting requests, and how many of its requests are running. */
struct fq_tenant {
        uint32_t uid;
        unsigned queued, running;
        struct fq_item *head, *tail;
};

/* Per-tenant FIFOs served round-robin (fair_queue.c); the caller serializes calls. */
struct fair_queue {
        unsigned cap, n;                    /* requests waiting, in all */
        unsigned tenant_queue;              /* requests one tenant may have waiting */
        unsigned tenant_running;            /* requests of one tenant running at once */
        struct fq_tenant *tenants;          /* [0, ntenants) have something waiting or running */
        unsigned ntenants, max_tenants, rr; /* rr: the tenant the next pop looks at first */
        uint64_t *keys;                     /* the keys of running requests */
        unsigned nkeys, max_keys;
};

/* The fair queue of requests and the threads that run them. */
struct workers {
        pthread_mutex_t lock;
        pthread_cond_t cv;
        struct fair_queue q;
        unsigned nthreads, busy;
        pthread_t *threads;
        bool stop, started;
        /* expired: the item waited past its deadline and is only to be answered. */
        void (*run)(void *ctx, struct fq_item *item, bool expired);
        void *ctx;
};

/* Teardown threads: clones to destroy, entries to free, and a periodic sweep. */
struct reaper {
        pthread_mutex_t lock;
        pthread_cond_t cv;
        struct dclone *clones;
        struct dsnap *snaps;
        unsigned nthreads;
        pthread_t *threads;
        bool stop;
        atomic_uint queued;
};

/* The worker processes (placement.c). Lock order: base_lock, d->lock, lock. */
struct placement {
        pthread_mutex_t lock;      /* the list, each worker's refs, clone slots and base table */
        pthread_mutex_t base_lock; /* held while a worker's base table is being changed */
        struct wproc *workers;
        unsigned nworkers;
        uint8_t *uid_used; /* worker_uids entries */
        unsigned next_index;
};

struct sproutd {
        struct sproutd_config cfg;
        struct sprout_kvm *kvm; /* NULL when the host has no usable KVM: kvm_error says why */
        char kvm_error[sizeof(((struct sprout_err *)0)->msg)];
        /* What this host's settings cost every VM, found once at start (sprout_host_advice). */
        struct sprout_host_advice advice[4];
        size_t nadvice;
        char snap_dir[4096];
        int lock_fd;
        struct snap_key snap_key; /* STATE_DIR/snapshot.key: what we write with and require */
        int64_t started_ns;

        pthread_mutex_t lock;
        struct dsnap *snaps;
        struct dclone *table[CLONE_BUCKETS];
        unsigned nclones_table;
        unsigned clones_total; /* reserved + live + dying: what max_clones bounds */
        unsigned clones_dying;
        unsigned bases_loaded;
        unsigned jobs_pending, jobs_running;
        unsigned builds_running; /* function directories being built (source_build.c) */
        pthread_cond_t jobs_cv;
        struct job *jobs;
        atomic_bool draining; /* SIGTERM came: new requests get 503 */

        struct sprout_image_roots image_roots; /* where clients' images may be (config) */
        struct workers workers;
        struct placement placement;
        struct reaper reaper;
        struct metrics metrics;
        struct api_server *api; /* the API layer's own state (daemon/api/api.h): opaque here */
        gid_t admin_gid;        /* --admin-group: its members see every tenant's */
        int cgroup_fd;          /* --cgroup-root, or -1 */
        bool admin_gid_set;
};

/* ---- registry.c: snapshot entries ---- */

/* The entry with this id, with a reference the caller must put, or NULL. */
struct dsnap *registry_get(struct sproutd *d, const char *id);
void registry_ref_locked(struct dsnap *e);
/* Drops a reference; the last one hands the entry to the reaper. */
void registry_put(struct sproutd *d, struct dsnap *e);
void registry_put_locked(struct sproutd *d, struct dsnap *e);
/* A new entry (one reference, the caller's), not yet listed. */
struct dsnap *registry_new(const uint8_t uuid[16]);
/* Lists e (taking a reference for the list); -EEXIST if the id is taken. Under d->lock. */
int registry_add_locked(struct sproutd *d, struct dsnap *e);
void registry_unlist_locked(struct sproutd *d, struct dsnap *e);
/* Reads size, RAM, creation time and image name from the snapshot file at e->path, which must carry
 * d's authenticator (its header, sections and index tags are checked; chunks at base load). */
int registry_read_meta(struct sproutd *d, struct dsnap *e, struct sprout_err *err);
/* Frees an entry whose last reference is gone (the reaper calls this). */
void registry_free_entry(struct sproutd *d, struct dsnap *e);

/* ---- owners.c: tenants. A client sees and acts on its own snapshots and their clones only;
 * root and members of --admin-group see all. ---- */
/* Resolves --admin-group. */
int owners_init(struct sproutd *d, struct sprout_err *err);
uid_t owners_read(const struct sproutd *d, const struct dsnap *e); /* 0 when none is recorded */
int owners_write(const struct sproutd *d, const struct dsnap *e, uid_t uid, struct sprout_err *err);
void owners_remove(const struct sproutd *d, const struct dsnap *e);
bool owners_is_admin(const struct sproutd *d, const struct sprout_creds *who);
bool owners_may_see(const struct sproutd *d, const struct sprout_creds *who, const struct dsnap *e);

/* registry_scan.c: finds the snapshots under d->snap_dir and removes half-written temp files. */
int registry_scan(struct sproutd *d, struct sprout_err *err);

/* ---- bases.c: a loaded snapshot, and the thread that keeps its shells and ready clones full */

int dbase_load(struct sproutd *d, struct dsnap *e, struct dbase **out, struct sprout_err *err);
struct sprout_base *dbase_base(struct dbase *b);
/* A shell was taken: the pool thread refills. */
void dbase_kick(struct dbase *b);
unsigned dbase_pooled(struct dbase *b);
/* Ready clones (restored and warmed up) waiting for a fresh one-shot call. */
unsigned dbase_ready(struct dbase *b);
/* The clone slots its ready pool holds (under d->lock): each counts as a clone of its owner. */
unsigned dbase_ready_slots_locked(const struct dbase *b);
/* Stops the pool thread and frees the base. Every clone of it must be destroyed. */
void dbase_free(struct dbase *b);

/* ---- clones.c: the clone table ---- */

/* Makes n clones of e, all or none (the first error wins). API and pool clones go in the table;
 * one-shot clones stay private to the caller. Each returned clone carries one reference, the
 * caller's; a table clone has another, the table's. Errors: -EAGAIN over max_clones, -ENOENT e was
 * deleted, -EBUSY e is not ready, -ESHUTDOWN draining, -ENOTSUP this host cannot run it, -EUCLEAN
 * the snapshot would not load, else the restore failure. */
int clones_create(struct sproutd *d, struct dsnap *e, unsigned n, enum dclone_origin origin,
                  struct dclone **out, struct sprout_err *err);
/* The table's clone with this id, with a reference, or NULL. */
struct dclone *clones_get(struct sproutd *d, const char *id);
void clones_ref_locked(struct dclone *c);
/* Drops a reference; the last one queues the clone for the reaper. */
void clones_put(struct sproutd *d, struct dclone *c);
void clones_put_locked(struct sproutd *d, struct dclone *c);
/* Takes the clone out of the table and the idle pool (dropping their references). Under d->lock. */
void clones_remove_locked(struct sproutd *d, struct dclone *c);
/* Removes every clone of e; returns how many. Under d->lock. */
unsigned clones_remove_snapshot_locked(struct sproutd *d, struct dsnap *e);
/* Runs one request on the clone (waiting up to timeout_ms for another request on it to finish).
 * *resp is a malloc'd copy. Errors: -EBUSY still busy, -EPIPE dead before, -EMSGSIZE too big,
 * -ETIMEDOUT no answer, -EPROTO/-ESHUTDOWN/-EIO the guest failed (the clone is now dead). */
struct invoke_log {
        char *text; /* what the guest logged during the call, escaped, NUL-terminated; malloc'd */
        size_t len;
        bool lost; /* some of it is not in text: the newest WIRE_INVOKE_LOG_MAX bytes are */
};
/* With log (NULL: not wanted), also what the call wrote to the clone's log (docs/api.md). */
int clones_invoke(struct sproutd *d, struct dclone *c, const void *req, size_t len,
                  int64_t timeout_ms, char **resp, size_t *resp_len, struct invoke_log *log,
                  struct sprout_err *err);
/* The clone's log: what its guest wrote to the console and through LOG rings (a handler's output),
 * oldest first, escaped, bounded by the console ring; *text is malloc'd. Waits up to timeout_ms for
 * a request on the clone to finish (-EBUSY). */
int clones_log(struct sproutd *d, struct dclone *c, int64_t timeout_ms, char **text, size_t *len,
               struct sprout_err *err);
/* A reusable idle clone of e (with a reference), or NULL. */
struct dclone *clones_take_idle(struct sproutd *d, struct dsnap *e);
/* After a one-shot: back to e's idle pool when reusable, else destroyed. Consumes a reference. */
void clones_release_oneshot(struct sproutd *d, struct dclone *c, bool reusable);
/* Private bytes of each clone: one pass over each holding process's smaps (vmhost.c). */
void clones_private_bytes(struct sproutd *d, struct dclone **cs, size_t n, uint64_t *out);
/* Clones idle longer than the timeout are removed. Under d->lock. */
void clones_reap_idle_locked(struct sproutd *d, int64_t now);

/* ---- vmhost.c: where a clone's VM lives, in this process or in a worker (docs/workers.md) ---- */

/* Restores a clone of e into c (c->c, or c->w and c->wslot) and sets c->id; a one-shot may get a
 * ready clone (*ready). */
int vmhost_create(struct sproutd *d, struct dsnap *e, struct dbase *db, enum dclone_origin origin,
                  struct dclone *c, struct sprout_clone_timing *t, bool *ready,
                  struct sprout_err *err);
/* Errors as clones_invoke's, and -ECONNRESET: the worker died (every clone of it is dead). */
int vmhost_invoke(struct sproutd *d, struct dclone *c, const void *req, size_t len,
                  int64_t timeout_ms, char **resp, size_t *resp_len, struct invoke_log *log,
                  struct sprout_err *err);
int vmhost_log(struct sproutd *d, struct dclone *c, char **text, size_t *len,
               struct sprout_err *err);
void vmhost_destroy(struct sproutd *d, struct dclone *c);

/* ---- placement.c: the worker processes ---- */
int placement_init(struct sproutd *d, struct sprout_err *err);
/* A slot for a new clone of db in one of tenant's workers (a new one if none has room), the
 * worker holding db; *w carries a reference that placement_release gives back. */
int placement_take(struct sproutd *d, uid_t tenant, struct dbase *db, bool want_ready,
                   struct wproc **w, uint32_t *slot, uint32_t *bslot, struct sprout_err *err);
void placement_release(struct sproutd *d, struct wproc *w, uint32_t slot);
/* The worker's reader thread, when the worker is gone (stopped: on purpose). */
void placement_worker_died(struct sproutd *d, struct wproc *w, bool stopped);
/* Every worker drops db (its last clone is gone; the broker frees it next). */
void placement_forget_base(struct sproutd *d, struct dbase *db);
void placement_note_pools(struct sproutd *d, struct wproc *w, uint32_t bslot, unsigned shells,
                          unsigned ready);
/* What the workers keep for db: shells and ready clones (as they last said), and the clone-limit
 * slots held for those ready clones, which count against the tenant's quotas (quota.c). Takes the
 * placement lock, so it may be called under d->lock (never the other way round). */
struct placement_pools {
        unsigned shells, ready, ready_slots;
};
void placement_pools(struct sproutd *d, const struct dbase *db, struct placement_pools *out);
unsigned placement_workers(struct sproutd *d);
/* Stops workers that have had no clone for base_keep_s. */
void placement_sweep(struct sproutd *d, int64_t now);
/* Stops every worker; their clones must be gone. */
void placement_stop(struct sproutd *d);

/* ---- cgroups.c: a cgroup per tenant for its workers, where the host delegated one ---- */
int cgroups_init(struct sproutd *d, struct sprout_err *err);
/* Moves a new worker into its tenant's cgroup (made on first use, with --tenant-memory-max). */
int cgroups_place(struct sproutd *d, uid_t tenant, pid_t pid, struct sprout_err *err);
void cgroups_close(struct sproutd *d);

/* ---- jobs.c: prewarms ---- */

struct prewarm_params {
        char image[4096];
        char cmdline[1024];
        int64_t timeout_s;
        int zstd_level;
        uid_t owner; /* the client that asked: the snapshot's tenant */
};

/* ---- quota.c: what one tenant may hold (uid 0 is not limited) ---- */
struct tenant_use {
        unsigned snapshots; /* listed, prewarms in flight included */
        unsigned prewarms;  /* queued, booting or snapshotting */
        unsigned clones;    /* live clones of its snapshots, reservations included */
        /* Guest memory its clones may commit: each clone (and each ready-clone slot) its whole
         * RAM, each loaded base its snapshot's non-zero pages. */
        uint64_t memory;
        uint64_t disk; /* its snapshot files' bytes */
};
void quota_use_locked(const struct sproutd *d, uid_t uid, struct tenant_use *u);
/* 0, or -EDQUOT with the quota named, when n more clones of e would take its owner past a quota
 * (of clones, or of guest memory, counting e's base if it is not loaded yet). */
int quota_clones_locked(const struct sproutd *d, const struct dsnap *e, unsigned n,
                        struct sprout_err *err);
/* Whether uid may commit bytes more guest memory (ready-clone slots taken by a pool). */
bool quota_memory_fits_locked(const struct sproutd *d, uid_t uid, uint64_t bytes);
/* 0, or -EDQUOT when e, just written, takes its owner past its disk quota. */
int quota_disk_locked(const struct sproutd *d, const struct dsnap *e, struct sprout_err *err);
/* 0, or -EDQUOT, for one more prewarm (and so one more snapshot) of uid. */
int quota_prewarm_locked(const struct sproutd *d, uid_t uid, struct sprout_err *err);

/* ---- source_build.c: a function directory named by a prewarm, built first ---- */
#define SOURCE_BUILDS_MAX 2
/* When image is a function directory (handler.py) beneath an image root that who may read, builds
 * it into its .sprout-image as who and puts that path in out: 1. Anything else: 0, with image in
 * out. -EAGAIN when SOURCE_BUILDS_MAX builds run; a failed build's error names what failed (a
 * module that is not found, say). */
int source_build(struct sproutd *d, const struct sprout_creds *who, const char *image, char *out,
                 size_t outlen, struct sprout_err *err);

/* Lists a new entry (status queued) and starts its prewarm thread, which boots the image m (opened
 * already, with the client's rights: nothing is reopened by path); *out carries a reference. m is
 * consumed whatever the outcome. -EAGAIN over max_prewarm_jobs. */
int jobs_start_prewarm(struct sproutd *d, const struct prewarm_params *p, struct sprout_manifest *m,
                       struct dsnap **out, struct sprout_err *err);
/* Joins finished prewarm threads; with wait, waits until deadline (monotonic ns) for running ones.
 * Returns how many are still running. */
unsigned jobs_join(struct sproutd *d, bool wait, int64_t deadline_ns);

/* ---- workers.c ---- */

/* ---- fair_queue.c ---- */

/* tenant_queue / tenant_running: what one tenant may have waiting / running (0 counts as 1). */
int fq_init(struct fair_queue *q, unsigned cap, unsigned tenant_queue, unsigned tenant_running,
            unsigned nthreads);
void fq_free(struct fair_queue *q);
/* 0; -EAGAIN when cap requests are waiting; -EDQUOT when the item's tenant has its share. */
int fq_push(struct fair_queue *q, struct fq_item *it);
/* The next item to run, taken round-robin across tenants: its tenant below its running share and
 * its key not held by a running item; it counts as running until fq_done. Or an item that waited
 * past its deadline (*expired: answer it, no fq_done). NULL: nothing may run now. */
struct fq_item *fq_pop(struct fair_queue *q, int64_t now_ns, bool *expired);
void fq_done(struct fair_queue *q, struct fq_item *it);
/* The earliest deadline of a waiting item, INT64_MAX if none. */
int64_t fq_next_deadline(const struct fair_queue *q);
unsigned fq_tenant_queued(const struct fair_queue *q, uint32_t uid);

/* ---- workers.c ---- */

/* cap: requests waiting in all; tenant_queue and tenant_running as for fq_init. */
int workers_start(struct workers *w, unsigned nthreads, unsigned cap, unsigned tenant_queue,
                  unsigned tenant_running,
                  void (*run)(void *ctx, struct fq_item *item, bool expired), void *ctx,
                  struct sprout_err *err);
/* Queues an item; -EAGAIN when the queue is full or stopping, -EDQUOT when the item's tenant
 * has its share of it waiting. */
int workers_submit(struct workers *w, struct fq_item *item);
void workers_counts(struct workers *w, unsigned *queued, unsigned *busy);
/* Runs what is queued, then joins the threads. */
void workers_stop(struct workers *w);

/* ---- reaper.c ---- */

int reaper_start(struct sproutd *d, unsigned nthreads, struct sprout_err *err);
void reaper_queue_clone(struct sproutd *d, struct dclone *c);
void reaper_queue_snap(struct sproutd *d, struct dsnap *e);
/* Destroys what is queued, then joins the threads. */
void reaper_stop(struct sproutd *d);

/* ---- sproutd_state.c: the state directory, one daemon per directory ---- */
int state_dir_open(struct sproutd *d, struct sprout_err *err);
void state_dir_close(struct sproutd *d);

/* snapshot_key.c: loads d->snap_key from STATE_DIR/snapshot.key, creating it on first start. After
 * state_dir_open (it relies on the directory's checks). */
int snapshot_key_open(struct sproutd *d, struct sprout_err *err);
void snapshot_key_close(struct sproutd *d);

#endif
