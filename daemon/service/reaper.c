/* The reaper: KVM teardown of a clone takes milliseconds, so it never happens on a request's path.
 * Clones whose last reference went, and snapshot entries likewise (with their loaded base), are
 * queued here; the first thread also sweeps once a second for idle clones, idle bases and finished
 * prewarm threads. */
#include <errno.h>
#include <stdlib.h>

#include "sprout/log.h"
#include "service.h"

struct reaper_arg {
        struct sproutd *d;
        unsigned index;
};

static void destroy_clone(struct sproutd *d, struct dclone *c)
{
        vmhost_destroy(d, c);
        pthread_mutex_destroy(&c->run_lock);
        atomic_fetch_add(&d->metrics.clones_destroyed, 1);
        pthread_mutex_lock(&d->lock);
        d->clones_total--;
        d->clones_dying--;
        c->snap->clones--;
        c->snap->last_used_ns = sprout_mono_ns();
        registry_put_locked(d, c->snap);
        pthread_mutex_unlock(&d->lock);
        sp_debug("clone %s destroyed", c->id);
        free(c);
}

/* Unloads bases that have had no clone for base_keep_s; the load itself is the slow part of a
 * first clone, so a base is kept a while in case another comes. */
static void sweep_bases_locked(struct sproutd *d, int64_t now, struct dbase **out, size_t *n,
                               size_t cap)
{
        int64_t keep = d->cfg.base_keep_s * 1000000000LL;
        for (struct dsnap *e = d->snaps; e && *n < cap; e = e->next) {
                if (e->base && e->clones == 0 && now - e->last_used_ns >= keep) {
                        out[(*n)++] = e->base;
                        e->base = NULL;
                        d->bases_loaded--;
                        sp_info("snapshot %s: base unloaded after %lld s without clones", e->id,
                                (long long)d->cfg.base_keep_s);
                }
        }
}

static void sweep(struct sproutd *d)
{
        struct dbase *bases[16];
        size_t nb = 0;
        int64_t now = sprout_mono_ns();
        pthread_mutex_lock(&d->lock);
        clones_reap_idle_locked(d, now);
        sweep_bases_locked(d, now, bases, &nb, 16);
        pthread_mutex_unlock(&d->lock);
        for (size_t i = 0; i < nb; i++)
                dbase_free(bases[i]);
        if (d->cfg.clones_per_worker)
                placement_sweep(d, now);
        jobs_join(d, false, 0);
}

static void *reaper_main(void *arg)
{
        struct reaper_arg *ra = arg;
        struct sproutd *d = ra->d;
        struct reaper *rp = &d->reaper;
        int64_t next_sweep = sprout_mono_ns() + 1000000000LL;

        pthread_mutex_lock(&rp->lock);
        for (;;) {
                if (rp->clones) {
                        struct dclone *c = rp->clones;
                        rp->clones = c->reap_next;
                        pthread_mutex_unlock(&rp->lock);
                        destroy_clone(d, c);
                        atomic_fetch_sub(&rp->queued, 1);
                        pthread_mutex_lock(&rp->lock);
                        continue;
                }
                /* Entries after clones: a clone's destroy drops its entry's reference. */
                if (rp->snaps) {
                        struct dsnap *e = rp->snaps;
                        rp->snaps = e->reap_next;
                        pthread_mutex_unlock(&rp->lock);
                        registry_free_entry(d, e);
                        atomic_fetch_sub(&rp->queued, 1);
                        pthread_mutex_lock(&rp->lock);
                        continue;
                }
                if (rp->stop)
                        break;
                if (ra->index == 0 && sprout_mono_ns() >= next_sweep) {
                        pthread_mutex_unlock(&rp->lock);
                        sweep(d);
                        next_sweep = sprout_mono_ns() + 1000000000LL;
                        pthread_mutex_lock(&rp->lock);
                        continue;
                }
                struct timespec ts = sprout_mono_after_ms(250);
                pthread_cond_timedwait(&rp->cv, &rp->lock, &ts);
        }
        pthread_mutex_unlock(&rp->lock);
        free(ra);
        return NULL;
}

int reaper_start(struct sproutd *d, unsigned nthreads, struct sprout_err *err)
{
        struct reaper *rp = &d->reaper;
        pthread_mutex_init(&rp->lock, NULL);
        sprout_cond_init_mono(&rp->cv);
        rp->threads = calloc(nthreads, sizeof(*rp->threads));
        if (!rp->threads)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        for (unsigned i = 0; i < nthreads; i++) {
                struct reaper_arg *ra = malloc(sizeof(*ra));
                if (ra)
                        *ra = (struct reaper_arg){.d = d, .index = i};
                int r = ra ? pthread_create(&rp->threads[i], NULL, reaper_main, ra) : ENOMEM;
                if (r) {
                        free(ra);
                        reaper_stop(d);
                        return sprout_err_errno(err, -r, "starting reaper %u", i);
                }
                rp->nthreads++;
        }
        return 0;
}

void reaper_queue_clone(struct sproutd *d, struct dclone *c)
{
        struct reaper *rp = &d->reaper;
        pthread_mutex_lock(&rp->lock);
        c->reap_next = rp->clones;
        rp->clones = c;
        atomic_fetch_add(&rp->queued, 1);
        pthread_cond_signal(&rp->cv);
        pthread_mutex_unlock(&rp->lock);
}

void reaper_queue_snap(struct sproutd *d, struct dsnap *e)
{
        struct reaper *rp = &d->reaper;
        pthread_mutex_lock(&rp->lock);
        e->reap_next = rp->snaps;
        rp->snaps = e;
        atomic_fetch_add(&rp->queued, 1);
        pthread_cond_signal(&rp->cv);
        pthread_mutex_unlock(&rp->lock);
}

void reaper_stop(struct sproutd *d)
{
        struct reaper *rp = &d->reaper;
        pthread_mutex_lock(&rp->lock);
        rp->stop = true;
        pthread_cond_broadcast(&rp->cv);
        pthread_mutex_unlock(&rp->lock);
        for (unsigned i = 0; i < rp->nthreads; i++)
                pthread_join(rp->threads[i], NULL);
        free(rp->threads);
        rp->threads = NULL;
        rp->nthreads = 0;
}
