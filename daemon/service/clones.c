/* The clone table: every clone the daemon holds, by id, reference-counted. Creating reserves room
 * under the live-clone limit first, so a burst beyond it is a 429, not a failure halfway through;
 * the last reference hands the clone to the reaper, so no request waits for KVM teardown. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/log.h"
#include "service.h"
#include "wproc.h"

const char *dclone_state_name(enum dclone_state s)
{
        static const char *const names[] = {"idle", "busy", "dead"};
        return names[s];
}

const char *dclone_origin_name(enum dclone_origin o)
{
        static const char *const names[] = {"api", "pool", "oneshot"};
        return names[o];
}

static unsigned bucket(const char *id)
{
        uint32_t h = 2166136261u; /* FNV-1a: ids are random, any mix will do */
        for (; *id; id++)
                h = (h ^ (uint8_t)*id) * 16777619u;
        return h % CLONE_BUCKETS;
}

static void table_insert_locked(struct sproutd *d, struct dclone *c)
{
        unsigned b = bucket(c->id);
        c->hnext = d->table[b];
        d->table[b] = c;
        c->in_table = true;
        c->refs++;
        d->nclones_table++;
        if (c->origin == DC_API)
                c->snap->api_clones++;
}

void clones_ref_locked(struct dclone *c)
{
        c->refs++;
}

void clones_put_locked(struct sproutd *d, struct dclone *c)
{
        if (--c->refs == 0) {
                d->clones_dying++;
                reaper_queue_clone(d, c);
        }
}

void clones_put(struct sproutd *d, struct dclone *c)
{
        if (!c)
                return;
        pthread_mutex_lock(&d->lock);
        clones_put_locked(d, c);
        pthread_mutex_unlock(&d->lock);
}

struct dclone *clones_get(struct sproutd *d, const char *id)
{
        pthread_mutex_lock(&d->lock);
        struct dclone *c = d->table[bucket(id)];
        while (c && strcmp(c->id, id))
                c = c->hnext;
        if (c)
                c->refs++;
        pthread_mutex_unlock(&d->lock);
        return c;
}

void clones_remove_locked(struct sproutd *d, struct dclone *c)
{
        struct dsnap *e = c->snap;
        if (c->in_idle) {
                for (struct dclone **p = &e->idle; *p; p = &(*p)->idle_next)
                        if (*p == c) {
                                *p = c->idle_next;
                                break;
                        }
                c->in_idle = false;
                e->nidle--;
                clones_put_locked(d, c);
        }
        if (c->in_table) {
                for (struct dclone **p = &d->table[bucket(c->id)]; *p; p = &(*p)->hnext)
                        if (*p == c) {
                                *p = c->hnext;
                                break;
                        }
                c->in_table = false;
                d->nclones_table--;
                if (c->origin == DC_API)
                        e->api_clones--;
                clones_put_locked(d, c);
        }
}

unsigned clones_remove_snapshot_locked(struct sproutd *d, struct dsnap *e)
{
        unsigned n = 0;
        for (unsigned b = 0; b < CLONE_BUCKETS; b++) {
                struct dclone *c = d->table[b], *next;
                for (; c; c = next) {
                        next = c->hnext;
                        if (c->snap == e) {
                                clones_remove_locked(d, c);
                                n++;
                        }
                }
        }
        return n;
}

void clones_reap_idle_locked(struct sproutd *d, int64_t now)
{
        int64_t limit = d->cfg.idle_timeout_s * 1000000000LL;
        for (unsigned b = 0; b < CLONE_BUCKETS; b++) {
                struct dclone *c = d->table[b], *next;
                for (; c; c = next) {
                        next = c->hnext;
                        if (c->state != DC_BUSY && now - c->last_used_ns >= limit) {
                                sp_info("clone %s: %s for %lld s, destroying", c->id,
                                        c->state == DC_DEAD ? "dead" : "idle",
                                        (long long)d->cfg.idle_timeout_s);
                                atomic_fetch_add(&d->metrics.clones_reaped_idle, 1);
                                clones_remove_locked(d, c);
                        }
                }
        }
}

/* Gives back k reservations that never became clones. */
static void unreserve_locked(struct sproutd *d, struct dsnap *e, unsigned k)
{
        d->clones_total -= k;
        e->clones -= k;
        for (unsigned i = 0; i < k; i++)
                registry_put_locked(d, e);
}

/* The entry's base, loaded by the first caller that needs it; later callers wait for that load
 * rather than load it again. */
static int ensure_base(struct sproutd *d, struct dsnap *e, struct dbase **out,
                       struct sprout_err *err)
{
        int r = 0;
        pthread_mutex_lock(&e->load_lock);
        pthread_mutex_lock(&d->lock);
        struct dbase *db = e->base;
        pthread_mutex_unlock(&d->lock);
        if (!db) {
                r = dbase_load(d, e, &db, err);
                if (r == 0) {
                        pthread_mutex_lock(&d->lock);
                        e->base = db;
                        d->bases_loaded++;
                        pthread_mutex_unlock(&d->lock);
                }
        }
        pthread_mutex_unlock(&e->load_lock);
        *out = db;
        return r;
}

/* Whether out[i]'s id is in the table or among out[0..i). */
static bool clone_id_taken_locked(struct sproutd *d, struct dclone **out, unsigned i)
{
        for (struct dclone *c = d->table[bucket(out[i]->id)]; c; c = c->hnext)
                if (!strcmp(c->id, out[i]->id))
                        return true;
        for (unsigned j = 0; j < i; j++)
                if (!strcmp(out[j]->id, out[i]->id))
                        return true;
        return false;
}

static int reserve(struct sproutd *d, struct dsnap *e, unsigned n, struct dbase **db,
                   struct sprout_err *err)
{
        int r = 0;
        pthread_mutex_lock(&d->lock);
        if (atomic_load(&d->draining))
                r = sprout_err_set(err, -ESHUTDOWN, "sproutd is shutting down");
        else if (!e->listed)
                r = sprout_err_set(err, -ENOENT, "snapshot %s was deleted", e->id);
        else if (e->status != DSNAP_READY)
                r = sprout_err_set(err, -EBUSY, "snapshot %s is %s, not ready", e->id,
                                   dsnap_status_name(e->status));
        else if (d->clones_total + n > (uint64_t)d->cfg.max_clones)
                r = sprout_err_set(err, -EAGAIN,
                                   "%u clones are live or being torn down and the limit is %lld",
                                   d->clones_total, (long long)d->cfg.max_clones);
        else
                r = quota_clones_locked(d, e, n, err);
        if (r == 0) {
                d->clones_total += n;
                e->clones += n;
                e->refs += n; /* one per clone, dropped when the reaper destroys it */
                e->last_used_ns = sprout_mono_ns();
                *db = e->base;
        }
        pthread_mutex_unlock(&d->lock);
        return r;
}

static struct dclone *make_one(struct sproutd *d, struct dsnap *e, struct dbase *db,
                               enum dclone_origin origin, int64_t extra_ns, struct sprout_err *err)
{
        struct dclone *c = calloc(1, sizeof(*c));
        struct sprout_clone_timing t = {0};
        if (!c) {
                sprout_err_set(err, -ENOMEM, "out of memory");
                return NULL;
        }
        int64_t t0 = sprout_mono_ns();
        bool ready = false;
        if (vmhost_create(d, e, db, origin, c, &t, &ready, err) < 0) {
                free(c);
                return NULL;
        }
        int64_t now = sprout_mono_ns();
        if (ready) {
                atomic_fetch_add(&d->metrics.ready_taken, 1);
                if (t.generation)
                        atomic_fetch_add(&d->metrics.recycled_taken, 1);
        } else {
                if (origin != DC_API)
                        atomic_fetch_add(&d->metrics.ready_missed, 1);
                histo_observe(&d->metrics.restore, (int64_t)(t.restore_ms * 1e6));
        }
        histo_observe(&d->metrics.clone, now - t0 + extra_ns);
        atomic_fetch_add(&d->metrics.clones_created, 1);
        pthread_mutex_init(&c->run_lock, NULL);
        c->snap = e;
        c->origin = origin;
        c->state = DC_IDLE;
        c->refs = 1;
        c->created_real_ns = sprout_real_ns();
        c->created_ns = c->last_used_ns = now;
        c->restore_ms = t.restore_ms;
        c->pooled_shell = t.pooled;
        return c;
}

int clones_create(struct sproutd *d, struct dsnap *e, unsigned n, enum dclone_origin origin,
                  struct dclone **out, struct sprout_err *err)
{
        struct dbase *db = NULL;
        unsigned made = 0;
        int r = reserve(d, e, n, &db, err);
        if (r < 0)
                return r;
        int64_t t0 = sprout_mono_ns();
        if (!db && (r = ensure_base(d, e, &db, err)) < 0) {
                /* A file that will not load, as opposed to one this host cannot run. */
                if (r != -ENOTSUP && r != -ENOMEM && r != -ENODEV)
                        r = -EUCLEAN;
                pthread_mutex_lock(&d->lock);
                unreserve_locked(d, e, n);
                pthread_mutex_unlock(&d->lock);
                return r;
        }
        int64_t load_ns = sprout_mono_ns() - t0;
        for (; made < n; made++) {
                out[made] = make_one(d, e, db, origin, made ? 0 : load_ns, err);
                if (!out[made]) {
                        r = err->code ? err->code : -ENOMEM;
                        break;
                }
        }
        pthread_mutex_lock(&d->lock);
        if (r == 0 && !e->listed)
                r = sprout_err_set(err, -ENOENT, "snapshot %s was deleted", e->id);
        /* A worker names its clones; one that reuses an id (a random UUID never repeats) is lying,
         * and must not shadow another clone in the table. */
        for (unsigned i = 0; r == 0 && origin != DC_ONESHOT && i < n; i++)
                if (clone_id_taken_locked(d, out, i)) {
                        r = sprout_err_set(err, -EPROTO, "a worker gave clone %s an id in use",
                                           out[i]->id);
                        if (out[i]->w)
                                wproc_kill(out[i]->w, "a worker reused a clone id");
                }
        if (r < 0) {
                /* All or nothing: what was made is torn down like any clone. */
                unreserve_locked(d, e, n - made);
                for (unsigned i = 0; i < made; i++)
                        clones_put_locked(d, out[i]);
        } else if (origin != DC_ONESHOT) {
                for (unsigned i = 0; i < n; i++)
                        table_insert_locked(d, out[i]);
        }
        pthread_mutex_unlock(&d->lock);
        if (r == 0 && origin == DC_API)
                for (unsigned i = 0; i < n; i++)
                        sp_info("clone %s of snapshot %s created (restore %.3f ms%s)", out[i]->id,
                                e->id, out[i]->restore_ms, out[i]->pooled_shell ? ", pooled" : "");
        return r;
}

int clones_invoke(struct sproutd *d, struct dclone *c, const void *req, size_t len,
                  int64_t timeout_ms, char **resp, size_t *resp_len, struct invoke_log *log,
                  struct sprout_err *err)
{
        /* A deadline on the monotonic clock: a wall-clock step (NTP, an admin) must neither
         * shorten nor stretch how long a request waits for a busy clone. */
        struct timespec until = sprout_mono_after_ms(timeout_ms);
        if (pthread_mutex_clocklock(&c->run_lock, CLOCK_MONOTONIC, &until))
                return sprout_err_set(err, -EBUSY,
                                      "clone %s stayed busy with another request for %lld ms",
                                      c->id, (long long)timeout_ms);
        pthread_mutex_lock(&d->lock);
        if (c->state == DC_DEAD) {
                bool died = c->worker_died;
                pthread_mutex_unlock(&d->lock);
                pthread_mutex_unlock(&c->run_lock);
                return sprout_err_set(err, died ? -ECONNRESET : -EPIPE, "clone %s is dead: %s",
                                      c->id, c->dead_reason);
        }
        c->state = DC_BUSY;
        pthread_mutex_unlock(&d->lock);

        int64_t t0 = sprout_mono_ns();
        int r = vmhost_invoke(d, c, req, len, timeout_ms, resp, resp_len, log, err);
        int64_t ns = sprout_mono_ns() - t0;
        bool dead = r < 0 && r != -EMSGSIZE && r != -ENOMEM;
        pthread_mutex_lock(&d->lock);
        c->invocations++;
        c->last_used_ns = sprout_mono_ns();
        c->state = dead ? DC_DEAD : DC_IDLE;
        if (r == -ECONNRESET)
                c->worker_died = true;
        if (dead)
                snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_unlock(&c->run_lock);
        if (r == 0) {
                histo_observe(&d->metrics.invoke, ns);
                atomic_fetch_add(&d->metrics.invocations, 1);
        } else {
                atomic_fetch_add(&d->metrics.invoke_failures, 1);
                if (dead)
                        sp_warn("clone %s: %s", c->id, err->msg);
        }
        return r;
}

struct dclone *clones_take_idle(struct sproutd *d, struct dsnap *e)
{
        struct dclone *c;
        pthread_mutex_lock(&d->lock);
        while ((c = e->idle)) {
                e->idle = c->idle_next;
                e->nidle--;
                c->in_idle = false; /* the stack's reference is now the caller's */
                if (c->state != DC_DEAD)
                        break;
                /* Invoked directly by id and failed there: not for reuse. */
                clones_remove_locked(d, c);
                clones_put_locked(d, c);
        }
        pthread_mutex_unlock(&d->lock);
        return c;
}

void clones_release_oneshot(struct sproutd *d, struct dclone *c, bool reusable)
{
        struct dsnap *e = c->snap;
        pthread_mutex_lock(&d->lock);
        if (reusable && c->origin == DC_POOL && c->in_table && c->state == DC_IDLE && e->listed &&
            !atomic_load(&d->draining)) {
                c->idle_next = e->idle;
                e->idle = c;
                e->nidle++;
                c->in_idle = true; /* the caller's reference becomes the stack's */
        } else {
                clones_remove_locked(d, c);
                clones_put_locked(d, c);
        }
        pthread_mutex_unlock(&d->lock);
}

int clones_log(struct sproutd *d, struct dclone *c, int64_t timeout_ms, char **text, size_t *len,
               struct sprout_err *err)
{
        /* The vCPU thread writes the log while it runs the guest: read it between requests. */
        struct timespec until = sprout_mono_after_ms(timeout_ms);
        if (pthread_mutex_clocklock(&c->run_lock, CLOCK_MONOTONIC, &until))
                return sprout_err_set(err, -EBUSY,
                                      "clone %s stayed busy with a request for %lld ms", c->id,
                                      (long long)timeout_ms);
        char why[sizeof(c->dead_reason)];
        pthread_mutex_lock(&d->lock);
        bool died = c->worker_died;
        snprintf(why, sizeof(why), "%s", c->dead_reason);
        pthread_mutex_unlock(&d->lock);
        int r = died ? sprout_err_set(err, -ECONNRESET, "clone %s is dead: %s", c->id, why)
                     : vmhost_log(d, c, text, len, err);
        pthread_mutex_unlock(&c->run_lock);
        return r;
}
