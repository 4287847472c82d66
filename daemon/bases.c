/* A loaded snapshot (a base) and its pool thread. Restoring into a prepared VM shell is several
 * times faster than creating the VM on the clone's path, so each base has a thread that keeps
 * pool_shells shells ready and refills the pool whenever a clone takes one. */
#include <errno.h>
#include <stdlib.h>

#include "sprout/log.h"
#include "sproutd.h"

struct dbase {
        struct sprout_base *b;
        char id[SPROUTD_ID_LEN];
        unsigned target;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        bool stop, kicked;
};

static void *pool_main(void *arg)
{
        struct dbase *db = arg;
        pthread_mutex_lock(&db->lock);
        while (!db->stop) {
                db->kicked = false;
                pthread_mutex_unlock(&db->lock);
                struct sprout_err err = {0};
                int r = sprout_base_prepare(db->b, db->target, &err);
                pthread_mutex_lock(&db->lock);
                if (r < 0) {
                        /* Clones still work without shells (slower); try again in a while. */
                        sp_warn("snapshot %s: preparing VM shells: %s", db->id, err.msg);
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_sec += 5;
                        pthread_cond_timedwait(&db->cv, &db->lock, &ts);
                        continue;
                }
                while (!db->stop && !db->kicked)
                        pthread_cond_wait(&db->cv, &db->lock);
        }
        pthread_mutex_unlock(&db->lock);
        return NULL;
}

int dbase_load(struct sproutd *d, struct snap_entry *e, struct dbase **out, struct sprout_err *err)
{
        struct dbase *db = calloc(1, sizeof(*db));
        if (!db)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        snprintf(db->id, sizeof(db->id), "%s", e->id);
        db->target = (unsigned)d->cfg.pool_shells;
        pthread_mutex_init(&db->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&db->cv, &ca);
        pthread_condattr_destroy(&ca);

        int64_t t0 = mono_ns();
        int r = sprout_base_load(d->kvm, e->path, 0, &db->b, err);
        if (r < 0)
                goto fail;
        const struct sprout_base_info *bi = sprout_base_info(db->b);
        sp_info("snapshot %s: base loaded, %llu MiB in %.1f ms (%.0f MiB/s)", e->id,
                (unsigned long long)(bi->ram_size >> 20), (double)(mono_ns() - t0) / 1e6,
                bi->load.mb_per_s);
        atomic_fetch_add(&d->metrics.base_loads, 1);
        if (db->target) {
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
        return sprout_base_pooled(db->b);
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
        sprout_base_free(db->b);
        pthread_mutex_destroy(&db->lock);
        pthread_cond_destroy(&db->cv);
        free(db);
}
