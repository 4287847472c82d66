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
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        bool stop, kicked;
};

/* Tops up the ready clones; 0 when there is nothing to do or no room under the clone limit. */
static int fill_ready(struct dbase *db, struct sprout_err *err)
{
        struct sproutd *d = db->d;
        if (!db->ready_target)
                return 0;
        pthread_mutex_lock(&d->lock);
        if (!db->ready_slots && !atomic_load(&d->draining) &&
            (uint64_t)d->clones_total + db->ready_max <= (uint64_t)d->cfg.max_clones / 2) {
                db->ready_slots = db->ready_max;
                d->clones_total += db->ready_slots;
        }
        bool have_slots = db->ready_slots > 0;
        pthread_mutex_unlock(&d->lock);
        if (!have_slots)
                return 0; /* near the limit: fresh one-shots restore as before */
        int r = sprout_base_prepare_ready(
            db->b, sprout_base_ready_target(db->b, db->ready_target, db->ready_max), err);
        if (r == -ENOTSUP) {
                /* The guest cannot warm up (ABI < 1.3): give the slots back, for good. */
                sp_info("snapshot %s: no ready clones: %s", db->id, err->msg);
                pthread_mutex_lock(&d->lock);
                if (!sprout_base_ready_count(db->b)) {
                        d->clones_total -= db->ready_slots;
                        db->ready_slots = 0;
                        db->ready_target = 0;
                        db->ready_max = 0;
                }
                pthread_mutex_unlock(&d->lock);
                return 0;
        }
        return r;
}

static void *pool_main(void *arg)
{
        struct dbase *db = arg;
        pthread_mutex_lock(&db->lock);
        while (!db->stop) {
                db->kicked = false;
                pthread_mutex_unlock(&db->lock);
                struct sprout_err err = {0};
                int r = sprout_base_prepare(db->b, db->target, &err);
                if (r == 0 && db->ready_target) {
                        /* Each ready clone used a shell: top the shells up again after. */
                        r = fill_ready(db, &err);
                        if (r == 0)
                                r = sprout_base_prepare(db->b, db->target, &err);
                }
                pthread_mutex_lock(&db->lock);
                if (r < 0) {
                        /* Clones still work without shells (slower); try again in a while. */
                        sp_warn("snapshot %s: preparing VM shells or ready clones: %s", db->id,
                                err.msg);
                        struct timespec ts = sprout_mono_after_ms(5000);
                        pthread_cond_timedwait(&db->cv, &db->lock, &ts);
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
        unsigned shells, ready;
        if (!db->d->cfg.clones_per_worker)
                return sprout_base_pooled(db->b);
        placement_pools(db->d, db, &shells, &ready);
        return shells;
}

unsigned dbase_ready(struct dbase *db)
{
        unsigned shells, ready;
        if (!db->d->cfg.clones_per_worker)
                return sprout_base_ready_count(db->b);
        placement_pools(db->d, db, &shells, &ready);
        return ready;
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
