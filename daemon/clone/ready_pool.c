/* A base's ready clones: restored, given their identity and warmed up off the request path, so a
 * fresh one-shot's critical path is only its invoke. Each is handed out once. A clone its user is
 * done with comes back here and is recycled in place into a ready one (docs/architecture.md,
 * "Recycling"): no VM is created or closed while the pool only turns over. */
#include <errno.h>
#include <pthread.h>

#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/log.h"
#include "clone_internal.h"

/* How long a pooled clone's warm-up may take. */
#define READY_WARMUP_TIMEOUT_MS 10000

void ready_pool_init(struct ready_pool *p)
{
        pthread_mutex_init(&p->lock, NULL);
        p->n = 0;
        p->nspent = 0;
        p->target = 0;
        p->no_recycle = false;
        p->stats = (struct sprout_recycle_stats){0};
        p->window_start_ns = sprout_mono_ns();
        p->window_takes = 0;
        p->take_rate = 0;
        p->fill_ms = 0;
}

/* Closes the demand window if a second has passed: each closed window halves the old rate and
 * adds half its own, so an idle base's rate decays by half a second. Under p->lock. */
static void roll_window(struct ready_pool *p, int64_t now)
{
        int64_t el = now - p->window_start_ns;
        if (el < 1000000000LL)
                return;
        double inst = (double)p->window_takes * 1e9 / (double)el;
        int64_t idle = el / 1000000000LL - 1; /* whole windows with no call at all */
        double old = idle > 60 ? 0 : p->take_rate;
        for (int64_t i = 0; i < idle && old > 0; i++)
                old *= 0.5;
        p->take_rate = 0.5 * old + 0.5 * inst;
        p->window_start_ns = now;
        p->window_takes = 0;
}

unsigned sprout_base_ready_target(struct sprout_base *b, unsigned floor, unsigned cap)
{
        struct ready_pool *p = base_ready_pool(b);
        if (cap > POOL_MAX)
                cap = POOL_MAX;
        if (floor > cap)
                floor = cap;
        pthread_mutex_lock(&p->lock);
        roll_window(p, sprout_mono_ns());
        /* Clones taken while one refill runs, twice over, and one more: a pool that size empties
         * only if demand doubles within a refill. The refill is one clone at a time. */
        double need = p->take_rate * p->fill_ms / 1000.0 * 2.0 + 1.0;
        pthread_mutex_unlock(&p->lock);
        unsigned t = need >= (double)cap ? cap : (unsigned)need + (need > (unsigned)need);
        return t < floor ? floor : t;
}

void sprout_base_ready_demand(struct sprout_base *b, double *rate_per_s, double *fill_ms)
{
        struct ready_pool *p = base_ready_pool(b);
        pthread_mutex_lock(&p->lock);
        roll_window(p, sprout_mono_ns());
        *rate_per_s = p->take_rate;
        *fill_ms = p->fill_ms;
        pthread_mutex_unlock(&p->lock);
}

void ready_pool_free(struct ready_pool *p)
{
        for (unsigned i = 0; i < p->n; i++)
                sprout_clone_destroy(p->clones[i]);
        for (unsigned i = 0; i < p->nspent; i++)
                sprout_clone_destroy(p->spent[i]);
        p->n = p->nspent = 0;
        pthread_mutex_destroy(&p->lock);
}

/* A ready clone of b: a spent one recycled when there is one, else a new one. */
static int make_ready(struct sprout_base *b, struct ready_pool *p, struct sprout_clone **out,
                      struct sprout_err *err)
{
        struct sprout_clone *c = NULL;
        pthread_mutex_lock(&p->lock);
        if (p->nspent)
                c = p->spent[--p->nspent];
        pthread_mutex_unlock(&p->lock);
        if (c) {
                int r = clone_recycle(c, err);
                if (r == 0)
                        r = sprout_clone_warmup(c, READY_WARMUP_TIMEOUT_MS, err);
                pthread_mutex_lock(&p->lock);
                if (r == 0)
                        p->stats.recycled++;
                else
                        p->stats.failed++;
                pthread_mutex_unlock(&p->lock);
                if (r == 0) {
                        *out = c;
                        return 0;
                }
                sp_warn("recycling clone %s: %s; a new clone replaces it", sprout_clone_id(c),
                        err->msg);
                *err = (struct sprout_err){0};
                /* Torn down for real; a new clone takes its place. */
                sprout_clone_destroy(c);
        }
        int r = sprout_clone_create(b, -1, &c, NULL, err);
        if (r < 0)
                return r;
        r = sprout_clone_warmup(c, READY_WARMUP_TIMEOUT_MS, err);
        if (r < 0) {
                sprout_clone_destroy(c);
                return r;
        }
        *out = c;
        return 0;
}

int sprout_base_prepare_ready(struct sprout_base *b, unsigned n, struct sprout_err *err)
{
        struct ready_pool *p = base_ready_pool(b);
        if (n > POOL_MAX)
                n = POOL_MAX;
        /* A smaller target tears down the spent clones it no longer keeps. */
        struct sprout_clone *drop[POOL_MAX];
        unsigned ndrop = 0;
        pthread_mutex_lock(&p->lock);
        p->target = n;
        while (p->nspent > n) {
                drop[ndrop++] = p->spent[--p->nspent];
                p->stats.destroyed++;
        }
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < ndrop; i++)
                sprout_clone_destroy(drop[i]);
        for (;;) {
                pthread_mutex_lock(&p->lock);
                unsigned have = p->n;
                pthread_mutex_unlock(&p->lock);
                if (have >= n)
                        return 0;
                struct sprout_clone *c;
                int64_t t0 = sprout_mono_ns();
                int r = make_ready(b, p, &c, err);
                if (r < 0)
                        return r;
                double ms = (double)(sprout_mono_ns() - t0) / 1e6;
                pthread_mutex_lock(&p->lock);
                p->fill_ms = p->fill_ms > 0 ? 0.8 * p->fill_ms + 0.2 * ms : ms;
                if (p->n < POOL_MAX) {
                        p->clones[p->n++] = c;
                        c = NULL;
                }
                pthread_mutex_unlock(&p->lock);
                sprout_clone_destroy(c);
        }
}

void sprout_clone_release(struct sprout_clone *c)
{
        if (!c)
                return;
        struct ready_pool *p = base_ready_pool(clone_base(c));
        pthread_mutex_lock(&p->lock);
        /* Up to the pool's target of spent clones is kept, even when the pool is full: a
         * one-shot's clone comes back after the refill that its take started has already
         * replaced it, and it is the next take's refill that recycles it. Beyond, or for a pool
         * of 0, it is torn down. Until then it holds the private pages it wrote. */
        bool keep = !p->no_recycle && !clone_is_dead(c) && p->nspent < p->target;
        if (keep)
                p->spent[p->nspent++] = c;
        else
                p->stats.destroyed++;
        pthread_mutex_unlock(&p->lock);
        if (!keep)
                sprout_clone_destroy(c);
}

void sprout_base_set_recycle(struct sprout_base *b, bool on)
{
        struct ready_pool *p = base_ready_pool(b);
        pthread_mutex_lock(&p->lock);
        p->no_recycle = !on;
        pthread_mutex_unlock(&p->lock);
}

void sprout_base_recycle_stats(struct sprout_base *b, struct sprout_recycle_stats *out)
{
        struct ready_pool *p = base_ready_pool(b);
        pthread_mutex_lock(&p->lock);
        *out = p->stats;
        out->waiting = p->nspent;
        pthread_mutex_unlock(&p->lock);
}

unsigned sprout_base_ready_count(struct sprout_base *b)
{
        struct ready_pool *p = base_ready_pool(b);
        pthread_mutex_lock(&p->lock);
        unsigned n = p->n;
        pthread_mutex_unlock(&p->lock);
        return n;
}

int sprout_clone_take_ready(struct sprout_base *b, struct sprout_clone **out)
{
        struct ready_pool *p = base_ready_pool(b);
        struct sprout_clone *c = NULL;
        pthread_mutex_lock(&p->lock);
        roll_window(p, sprout_mono_ns());
        p->window_takes++; /* a miss is demand too */
        if (p->n) {
                c = p->clones[--p->n];
                p->clones[p->n] = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        if (!c)
                return -ENOENT;
        *out = c;
        return 0;
}
