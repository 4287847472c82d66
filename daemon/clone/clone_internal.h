/* What the clone engine's files share: the base's shell pool and restore (base.c) and its pool of
 * ready clones (ready_pool.c). Private to daemon/clone/. */
#ifndef SPROUT_CLONE_INTERNAL_H
#define SPROUT_CLONE_INTERNAL_H

#include <pthread.h>

#include "sprout/clone.h"

#define POOL_MAX 64

/* Ready clones, each handed out once, and the spent clones given back (sprout_clone_release)
 * that the next fill recycles into it. */
struct ready_pool {
        pthread_mutex_t lock;
        struct sprout_clone *clones[POOL_MAX];
        unsigned n;
        struct sprout_clone *spent[POOL_MAX];
        unsigned nspent;
        unsigned target; /* the last fill's n: spent clones are kept only up to it */
        bool no_recycle; /* sprout_base_set_recycle(false): the old path, for comparisons */
        struct sprout_recycle_stats stats;
        /* Demand, for sprout_base_ready_target: takes (hits and misses) counted per window of
         * about a second, their rate smoothed, and the smoothed time to make one ready clone. */
        int64_t window_start_ns;
        unsigned window_takes;
        double take_rate; /* per second */
        double fill_ms;   /* 0 until the first ready clone is made */
};

void ready_pool_init(struct ready_pool *p);
/* Destroys the clones still pooled. */
void ready_pool_free(struct ready_pool *p);
struct ready_pool *base_ready_pool(struct sprout_base *b);

/* A prepared shell from the pool, or NULL when it is empty. */
struct sprout_vm *base_take_shell(struct sprout_base *b);

/* Restores the base's state into shell (or into a new VM when shell is NULL). The shell is
 * consumed: on failure it has been destroyed. */
int base_restore(struct sprout_base *b, struct sprout_vm *shell, int console_fd,
                 struct sprout_vm **out, struct sprout_err *err);

/* Recycles vm, a clone of b that has run, in place (sprout_vm_reset with b's state). */
int base_reset(struct sprout_base *b, struct sprout_vm *vm, struct sprout_err *err);

/* The clone's base, whether it failed, and its recycle: a new identity on a VM reset in place. */
struct sprout_base *clone_base(const struct sprout_clone *c);
bool clone_is_dead(const struct sprout_clone *c);
int clone_recycle(struct sprout_clone *c, struct sprout_err *err);

struct sprout_vm_capture;
struct sprout_working_set;
/* The working set of the captured VM's clones (working_set_record.c): a trial clone restored from
 * cap, warmed up, and its pages read; *data and *len are the SPROUT_SEC_WORKING_SET section
 * (malloc'd, the caller's), *summary its counts (no runs). */
int prewarm_record_working_set(struct sprout_kvm *kvm, const struct sprout_vm_capture *cap,
                               int64_t timeout_ms, void **data, uint64_t *len,
                               struct sprout_working_set *summary, struct sprout_err *err);

#endif
