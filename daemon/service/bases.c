/* A loaded snapshot (a base) and its pool thread. Restoring into a prepared VM shell is several
 * times faster than creating the VM on the clone's path, so each base has a thread that keeps
 * pool_shells shells ready and refills the pool whenever a clone takes one. It also keeps
 * pool_ready ready clones (restored and warmed up, sprout_base_prepare_ready) for fresh one-shot
 * calls. Those count against max_clones: the base holds pool_ready slots of d->clones_total
 * (ready_slots) from its first fill until it is freed, so the clones it holds and the one it is
 * making never exceed what is counted; a clone taken from it gets its own slot like any other.
 * The slots are taken only while the daemon is under half its clone limit. */
#include <errno.h>
#include <stdlib.h>

#include "sprout/log.h"
#include "service.h"

struct dbase {
        struct sproutd *d;
        struct sprout_base *b;
        char id[SPROUTD_ID_LEN];
        unsigned target;
        unsigned ready_target; /* 0: no ready clones (disabled, or the guest cannot warm up) */
        unsigned ready_max;    /* the most the pool grows to with demand (>= ready_target) */
        unsigned ready_slots;  /* of d->clones_total, under d->lock: 0 or ready_max */
        uid_t owner;           /* whose quota the slots count against */
        uint64_t ram_size;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        bool stop, kicked;
};

/* Whether db may keep ready clones now: it holds its slots of the clone limit, taking them while
 * the daemon is under half of it. */
static bool ready_slots(struct dbase *db)
{
        struct sproutd *d = db->d;
        if (!db->ready_target)
                return false;
        pthread_mutex_lock(&d->lock);
        if (!db->ready_slots && !atomic_load(&d->draining) &&
            (uint64_t)d->clones_total + db->ready_max <= (uint64_t)d->cfg.max_clones / 2 &&
            quota_memory_fits_locked(d, db->owner, db->ready_max * db->ram_size)) {
                db->ready_slots = db->ready_max;
                d->clones_total += db->ready_slots;
        }
        bool have = db->ready_slots > 0;
        pthread_mutex_unlock(&d->lock);
        return have; /* near the limit: fresh one-shots restore as before */
}

/* The keeper turned ready clones off (the guest cannot warm up, or failed too often): give the
 * slots back, for good. */
static bool ready_off(struct dbase *db)
{
        struct sproutd *d = db->d;
        pthread_mutex_lock(&d->lock);
        bool off = !sprout_base_ready_count(db->b);
        if (off) {
                d->clones_total -= db->ready_slots;
                db->ready_slots = 0;
                db->ready_target = 0;
                db->ready_max = 0;
        }
        pthread_mutex_unlock(&d->lock);
        return off;
}

static void *pool_main(void *arg)
{
        struct dbase *db = arg;
        struct sprout_pool_keeper keeper = {0};
        pthread_mutex_lock(&db->lock);
        while (!db->stop) {
                db->kicked = false;
                pthread_mutex_unlock(&db->lock);
                struct sprout_err err = {0};
                bool ready = ready_slots(db);
                int64_t retry_ms =
                    sprout_base_keep_pools(db->b, db->target, ready ? db->ready_target : 0,
                                           ready ? db->ready_max : 0, &keeper, &err);
                if (keeper.ready_off && db->ready_target && ready_off(db))
                        sp_info("snapshot %s: no ready clones from now on", db->id);
                pthread_mutex_lock(&db->lock);
                if (retry_ms) {
                        /* Clones still work without shells (slower). Takes do not cut the wait
                         * short: a base that keeps failing is tried less and less often. */
                        sp_warn("snapshot %s: preparing VM shells or ready clones (%u failures in "
                                "a row, next try in %lld s): %s",
                                db->id, keeper.failures, (long long)retry_ms / 1000, err.msg);
                        struct timespec ts = sprout_mono_after_ms(retry_ms);
                        while (!db->stop &&
                               pthread_cond_timedwait(&db->cv, &db->lock, &ts) != ETIMEDOUT)
                                ;
                        continue;
                }
                while (!db->stop && !db->kicked)
                        pthread_cond_wait(&db->cv, &db->lock);
        }
        pthread_mutex_unlock(&db->lock);
        return NULL;
}

int dbase_load(struct sproutd *d, struct dsnap *e, struct dbase **out, struct sprout_err *err)
{
        struct dbase *db = calloc(1, sizeof(*db));
        if (!db)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        snprintf(db->id, sizeof(db->id), "%s", e->id);
        db->d = d;
        db->owner = e->owner;
        db->ram_size = e->ram_size;
        db->target = (unsigned)d->cfg.pool_shells;
        db->ready_target = (unsigned)d->cfg.pool_ready;
        db->ready_max = db->ready_target ? config_ready_cap(&d->cfg) : 0;
        pthread_mutex_init(&db->lock, NULL);
        sprout_cond_init_mono(&db->cv);

        int64_t t0 = sprout_mono_ns();
        int r = d->kvm ? sprout_base_load_keyed(d->kvm, e->path, &d->snap_key, 0, &db->b, err)
                       : sprout_err_set(err, -ENODEV, "%s", d->kvm_error);
        if (r < 0)
                goto fail;
        const struct sprout_base_info *bi = sprout_base_info(db->b);
        sp_info("snapshot %s: base loaded, %llu MiB in %.1f ms (%.0f MiB/s)", e->id,
                (unsigned long long)(bi->ram_size >> 20), (double)(sprout_mono_ns() - t0) / 1e6,
                bi->load.mb_per_s);
        atomic_fetch_add(&d->metrics.base_loads, 1);
        sprout_base_set_recycle(db->b, d->cfg.recycle != 0);
        if (d->cfg.prefault_shells)
                sprout_base_set_prefault(db->b, SPROUT_PREFAULT_SHELL);
        /* With workers, each worker keeps its own shells and ready clones of the base. */
        if (!d->cfg.clones_per_worker && (db->target || db->ready_target)) {
                r = pthread_create(&db->thread, NULL, pool_main, db);
                if (r) {
                        r = sprout_err_errno(err, -r, "starting the shell pool thread");
                        goto fail;
                }
                db->thread_started = true;
        }
        *out = db;
        return 0;
fail:
        dbase_free(db);
        return r;
}

struct sprout_base *dbase_base(struct dbase *db)
{
        return db->b;
}

void dbase_kick(struct dbase *db)
{
        pthread_mutex_lock(&db->lock);
        db->kicked = true;
        pthread_cond_signal(&db->cv);
        pthread_mutex_unlock(&db->lock);
}

unsigned dbase_pooled(struct dbase *db)
{
        if (!db->d->cfg.clones_per_worker)
                return sprout_base_pooled(db->b);
        struct placement_pools pp;
        placement_pools(db->d, db, &pp);
        return pp.shells;
}

unsigned dbase_ready_slots_locked(const struct dbase *db)
{
        if (!db->d->cfg.clones_per_worker)
                return db->ready_slots;
        /* With workers, the worker that keeps the ready clones holds the slots (placement.c). */
        struct placement_pools pp;
        placement_pools(db->d, db, &pp);
        return pp.ready_slots;
}

unsigned dbase_ready(struct dbase *db)
{
        if (!db->d->cfg.clones_per_worker)
                return sprout_base_ready_count(db->b);
        struct placement_pools pp;
        placement_pools(db->d, db, &pp);
        return pp.ready;
}

void dbase_free(struct dbase *db)
{
        if (!db)
                return;
        if (db->thread_started) {
                pthread_mutex_lock(&db->lock);
                db->stop = true;
                pthread_cond_signal(&db->cv);
                pthread_mutex_unlock(&db->lock);
                pthread_join(db->thread, NULL);
        }
        if (db->d->cfg.clones_per_worker)
                placement_forget_base(db->d, db);
        sprout_base_free(db->b); /* destroys the ready clones still pooled */
        if (db->ready_slots) {
                pthread_mutex_lock(&db->d->lock);
                db->d->clones_total -= db->ready_slots;
                pthread_mutex_unlock(&db->d->lock);
        }
        pthread_mutex_destroy(&db->lock);
        pthread_cond_destroy(&db->cv);
        free(db);
}
