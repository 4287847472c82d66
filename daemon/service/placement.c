/* Placement: which worker process holds a new clone (docs/workers.md). A worker holds clones of one
 * tenant only, at most K of them; a tenant's next clone goes to one of its workers with room, else
 * to a new one. A worker learns a base (its memfd, by SCM_RIGHTS) the first time one of its clones
 * needs it, so every worker's clones share the broker's page-cache pages. The lock here is never
 * held across a call to a worker: a hung worker delays only its own tenant.
 *
 * Locks: base_lock (held across BASE_ADD/BASE_DROP calls) before d->lock before lock. Each
 * worker's bases[] entries are written under base_lock and lock both, and read under either. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/clock.h"
#include "sprout/log.h"
#include "service.h"
#include "wire.h"
#include "wproc.h"

#define BASE_CALL_TIMEOUT_MS 10000

int placement_init(struct sproutd *d, struct sprout_err *err)
{
        struct placement *p = &d->placement;
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->base_lock, NULL);
        if (!d->cfg.clones_per_worker)
                return 0;
        p->uid_used = calloc((size_t)d->cfg.worker_uids, 1);
        if (!p->uid_used)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        return 0;
}

/* Under p->lock. */
static void put_locked(struct placement *p, struct wproc *w, struct wproc **to_free)
{
        if (--w->refs == 0) {
                p->uid_used[w->index] = 0;
                *to_free = w;
        }
}

static void put(struct sproutd *d, struct wproc *w)
{
        struct wproc *f = NULL;
        pthread_mutex_lock(&d->placement.lock);
        put_locked(&d->placement, w, &f);
        pthread_mutex_unlock(&d->placement.lock);
        if (f)
                wproc_free(f);
}

static void unlist_locked(struct placement *p, struct wproc *w, struct wproc **to_free)
{
        if (!w->listed)
                return;
        for (struct wproc **pw = &p->workers; *pw; pw = &(*pw)->next)
                if (*pw == w) {
                        *pw = w->next;
                        break;
                }
        w->listed = false;
        p->nworkers--;
        put_locked(p, w, to_free);
}

/* Whether w has ready clones of db, as it last said. */
static bool has_ready_locked(const struct wproc *w, const struct dbase *db)
{
        for (int i = 0; i < WPROC_MAX_BASES; i++)
                if (w->bases[i].db == db && w->bases[i].ready_left)
                        return true;
        return false;
}

/* A worker of tenant with a free slot, that slot taken, with a reference; NULL when none. A
 * one-shot (want_ready) prefers the worker holding ready clones of db. */
static struct wproc *take_slot_locked(struct placement *p, uid_t tenant, const struct dbase *db,
                                      bool want_ready, uint32_t *slot)
{
        struct wproc *pick = NULL;
        for (struct wproc *w = p->workers; w; w = w->next) {
                if (w->tenant != tenant || w->nclones >= w->max_clones || wproc_dead(w, NULL, 0))
                        continue;
                if (!pick || (want_ready && has_ready_locked(w, db))) {
                        pick = w;
                        if (!want_ready || has_ready_locked(w, db))
                                break;
                }
        }
        if (!pick)
                return NULL;
        for (uint32_t i = 0; i < pick->max_clones; i++)
                if (!pick->slot_used[i]) {
                        pick->slot_used[i] = 1;
                        pick->nclones++;
                        pick->refs++;
                        *slot = i;
                        return pick;
                }
        return NULL;
}

static int free_index_locked(struct sproutd *d, unsigned *out)
{
        struct placement *p = &d->placement;
        unsigned n = (unsigned)d->cfg.worker_uids;
        for (unsigned k = 0; k < n; k++) {
                unsigned i = (p->next_index + k) % n;
                if (!p->uid_used[i]) {
                        p->uid_used[i] = 1;
                        p->next_index = i + 1;
                        *out = i;
                        return 0;
                }
        }
        return -EAGAIN;
}

/* The worker's base slot for db, sending it the base first if it has not got it. */
static int base_slot(struct sproutd *d, struct wproc *w, struct dbase *db, uint32_t *out,
                     struct sprout_err *err)
{
        struct placement *p = &d->placement;
        pthread_mutex_lock(&p->base_lock);
        int r = 0, free_slot = -1;
        for (int i = 0; i < WPROC_MAX_BASES; i++) {
                if (w->bases[i].db == db) {
                        *out = (uint32_t)i;
                        goto out;
                }
                if (!w->bases[i].db && free_slot < 0)
                        free_slot = i;
        }
        if (free_slot < 0) {
                r = sprout_err_set(err, -EAGAIN, "worker %d holds %d snapshots already",
                                   (int)w->pid, WPROC_MAX_BASES);
                goto out;
        }
        struct sprout_base_export x;
        sprout_base_export(dbase_base(db), &x);
        struct wire_base_add a = {.ram_size = x.ram_size,
                                  .host_kind = x.host_kind,
                                  .nsections = x.nsections,
                                  .pool_shells = (uint32_t)d->cfg.pool_shells,
                                  .recycle = d->cfg.recycle != 0,
                                  .prefault_shells = d->cfg.prefault_shells != 0};
        memcpy(a.uuid, x.uuid, 16);
        /* Ready clones count against the clone limit, as in-process ones do (bases.c), and one
         * worker per base keeps them: --pool-ready is per snapshot, however many workers. */
        unsigned ready = config_ready_cap(&d->cfg);
        pthread_mutex_lock(&p->lock);
        for (struct wproc *o = p->workers; o && ready; o = o->next)
                for (int i = 0; i < WPROC_MAX_BASES; i++)
                        if (o->bases[i].db == db && o->bases[i].ready_slots)
                                ready = 0;
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_lock(&d->lock);
        /* And against the tenant's guest memory, as in-process ones do: each may dirty all of
         * its RAM. */
        if (!ready || (uint64_t)d->clones_total + ready > (uint64_t)d->cfg.max_clones / 2 ||
            !quota_memory_fits_locked(d, w->tenant, (uint64_t)ready * x.ram_size))
                ready = 0;
        d->clones_total += ready;
        /* Counted for the quota from now, while the worker is being given the base: a clone
         * reserved meanwhile must see them (d->lock, then the placement lock). */
        pthread_mutex_lock(&p->lock);
        w->adding = db;
        w->adding_ready = ready;
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_unlock(&d->lock);
        a.pool_ready = ready ? (uint32_t)d->cfg.pool_ready : 0;
        a.pool_ready_max = ready;
        size_t total = 0;
        for (unsigned i = 0; i < x.nsections; i++) {
                a.sections[i] = (struct wire_section){.tag = x.sections[i].tag,
                                                      .len = (uint32_t)x.sections[i].len};
                total += x.sections[i].len;
        }
        char *blob = malloc(total ? total : 1);
        if (!blob) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
        } else {
                char *q = blob;
                for (unsigned i = 0; i < x.nsections; i++) {
                        memcpy(q, x.sections[i].data, x.sections[i].len);
                        q += x.sections[i].len;
                }
                struct wreply rep;
                r = wproc_call(w, WIRE_BASE_ADD, (uint32_t)free_slot, &a, sizeof(a), blob, total,
                               x.memfd, BASE_CALL_TIMEOUT_MS, &rep, err);
                if (r == 0 && rep.status < 0)
                        r = sprout_err_set(err, rep.status == -ENOTSUP ? -ENOTSUP : -EIO,
                                           "worker %d refused the snapshot: %s", (int)w->pid,
                                           rep.msg);
                wreply_free(&rep);
                free(blob);
        }
        pthread_mutex_lock(&p->lock);
        if (r == 0)
                w->bases[free_slot] = (struct wproc_base){.db = db, .ready_slots = ready};
        w->adding = NULL;
        w->adding_ready = 0;
        pthread_mutex_unlock(&p->lock);
        if (r == 0) {
                *out = (uint32_t)free_slot;
        } else {
                pthread_mutex_lock(&d->lock);
                d->clones_total -= ready;
                pthread_mutex_unlock(&d->lock);
        }
out:
        pthread_mutex_unlock(&p->base_lock);
        return r;
}

int placement_take(struct sproutd *d, uid_t tenant, struct dbase *db, bool want_ready,
                   struct wproc **out, uint32_t *slot, uint32_t *bslot, struct sprout_err *err)
{
        struct placement *p = &d->placement;
        pthread_mutex_lock(&p->lock);
        struct wproc *w = take_slot_locked(p, tenant, db, want_ready, slot);
        unsigned index = 0;
        int r = 0;
        if (!w && (r = free_index_locked(d, &index)) < 0)
                r = sprout_err_set(err, -EAGAIN, "all %lld worker uids are in use",
                                   (long long)d->cfg.worker_uids);
        pthread_mutex_unlock(&p->lock);
        if (r < 0)
                return r;
        if (!w) {
                /* Spawned outside the lock: starting a process takes milliseconds. */
                r = wproc_spawn(d, tenant, index, &w, err);
                pthread_mutex_lock(&p->lock);
                if (r < 0) {
                        p->uid_used[index] = 0;
                        pthread_mutex_unlock(&p->lock);
                        return r;
                }
                w->listed = true;
                w->next = p->workers;
                p->workers = w;
                p->nworkers++;
                w->slot_used[0] = 1;
                w->nclones = 1;
                w->refs++; /* the list's and the new clone's */
                *slot = 0;
                pthread_mutex_unlock(&p->lock);
        }
        r = base_slot(d, w, db, bslot, err);
        if (r < 0) {
                placement_release(d, w, *slot);
                return r;
        }
        *out = w;
        return 0;
}

void placement_release(struct sproutd *d, struct wproc *w, uint32_t slot)
{
        struct placement *p = &d->placement;
        struct wproc *f = NULL;
        pthread_mutex_lock(&p->lock);
        if (slot < w->max_clones && w->slot_used[slot]) {
                w->slot_used[slot] = 0;
                if (--w->nclones == 0)
                        w->idle_since_ns = sprout_mono_ns();
        }
        put_locked(p, w, &f);
        pthread_mutex_unlock(&p->lock);
        if (f)
                wproc_free(f);
}

/* Gives back the clone-limit slots a worker's ready clones held. */
static void release_ready(struct sproutd *d, struct wproc *w, int i)
{
        pthread_mutex_lock(&d->placement.lock);
        unsigned n = w->bases[i].ready_slots;
        w->bases[i] = (struct wproc_base){0};
        pthread_mutex_unlock(&d->placement.lock);
        if (n) {
                pthread_mutex_lock(&d->lock);
                d->clones_total -= n;
                pthread_mutex_unlock(&d->lock);
        }
}

void placement_worker_died(struct sproutd *d, struct wproc *w, bool stopped)
{
        struct placement *p = &d->placement;
        char why[sizeof(w->dead_reason)];
        wproc_dead(w, why, sizeof(why));
        if (stopped) {
                sp_debug("worker %d of tenant %u stopped", (int)w->pid, (unsigned)w->tenant);
        } else {
                sp_warn("%s", why);
                atomic_fetch_add(&d->metrics.workers_died, 1);
        }
        pthread_mutex_lock(&p->base_lock);
        for (int i = 0; i < WPROC_MAX_BASES; i++)
                if (w->bases[i].db)
                        release_ready(d, w, i);
        pthread_mutex_unlock(&p->base_lock);
        /* Its clones are gone with it: each answers worker_died from now on. */
        pthread_mutex_lock(&d->lock);
        for (unsigned b = 0; b < CLONE_BUCKETS; b++)
                for (struct dclone *c = d->table[b]; c; c = c->hnext)
                        if (c->w == w && c->state != DC_DEAD) {
                                c->state = DC_DEAD;
                                c->worker_died = true;
                                snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", why);
                        }
        pthread_mutex_unlock(&d->lock);
        struct wproc *f = NULL;
        pthread_mutex_lock(&p->lock);
        unlist_locked(p, w, &f);
        pthread_mutex_unlock(&p->lock);
        if (f)
                wproc_free(f); /* on its own reader thread: wproc_free detaches it */
}

void placement_forget_base(struct sproutd *d, struct dbase *db)
{
        struct placement *p = &d->placement;
        struct wproc *ws[64];
        int slots[64];
        size_t n = 0;
        /* Collected with references, dropped after the calls: the list may change meanwhile. */
        pthread_mutex_lock(&p->lock);
        for (struct wproc *w = p->workers; w && n < 64; w = w->next)
                for (int i = 0; i < WPROC_MAX_BASES && n < 64; i++)
                        if (w->bases[i].db == db) {
                                w->refs++;
                                ws[n] = w;
                                slots[n++] = i;
                        }
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n; i++) {
                struct sprout_err err = {0};
                struct wreply rep;
                int r = wproc_call(ws[i], WIRE_BASE_DROP, (uint32_t)slots[i], NULL, 0, NULL, 0, -1,
                                   BASE_CALL_TIMEOUT_MS, &rep, &err);
                if (r == 0 && rep.status < 0)
                        wproc_kill(ws[i], "a worker kept a snapshot with no clones");
                wreply_free(&rep);
                pthread_mutex_lock(&p->base_lock);
                if (ws[i]->bases[slots[i]].db == db)
                        release_ready(d, ws[i], slots[i]);
                pthread_mutex_unlock(&p->base_lock);
                put(d, ws[i]);
        }
        /* A dead worker's table was cleared when it died; any left over are not ours now. */
}

void placement_pools(struct sproutd *d, const struct dbase *db, struct placement_pools *out)
{
        struct placement *p = &d->placement;
        *out = (struct placement_pools){0};
        pthread_mutex_lock(&p->lock);
        for (struct wproc *w = p->workers; w; w = w->next) {
                if (w->adding == db)
                        out->ready_slots += w->adding_ready;
                for (int i = 0; i < WPROC_MAX_BASES; i++)
                        if (w->bases[i].db == db) {
                                out->shells += w->bases[i].shells_left;
                                out->ready += w->bases[i].ready_left;
                                out->ready_slots += w->bases[i].ready_slots;
                        }
        }
        pthread_mutex_unlock(&p->lock);
}

void placement_note_pools(struct sproutd *d, struct wproc *w, uint32_t bslot, unsigned shells,
                          unsigned ready)
{
        pthread_mutex_lock(&d->placement.lock);
        if (bslot < WPROC_MAX_BASES && w->bases[bslot].db) {
                w->bases[bslot].shells_left = shells;
                w->bases[bslot].ready_left = ready;
        }
        pthread_mutex_unlock(&d->placement.lock);
}

unsigned placement_workers(struct sproutd *d)
{
        pthread_mutex_lock(&d->placement.lock);
        unsigned n = d->placement.nworkers;
        pthread_mutex_unlock(&d->placement.lock);
        return n;
}

void placement_sweep(struct sproutd *d, int64_t now)
{
        struct placement *p = &d->placement;
        int64_t keep = d->cfg.base_keep_s * 1000000000LL;
        struct wproc *f[16];
        size_t n = 0;
        pthread_mutex_lock(&p->lock);
        for (struct wproc *w = p->workers, *next; w && n < 16; w = next) {
                next = w->next;
                if (w->nclones == 0 && now - w->idle_since_ns >= keep) {
                        sp_info("worker %d of tenant %u: no clones for %lld s, stopping it",
                                (int)w->pid, (unsigned)w->tenant, (long long)d->cfg.base_keep_s);
                        f[n] = NULL;
                        unlist_locked(p, w, &f[n]);
                        if (f[n])
                                n++;
                }
        }
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n; i++)
                wproc_free(f[i]);
}

void placement_stop(struct sproutd *d)
{
        struct placement *p = &d->placement;
        for (;;) {
                struct wproc *f = NULL;
                pthread_mutex_lock(&p->lock);
                if (p->workers)
                        unlist_locked(p, p->workers, &f);
                bool more = p->workers != NULL;
                pthread_mutex_unlock(&p->lock);
                if (f)
                        wproc_free(f);
                if (!more && !f)
                        break;
        }
        free(p->uid_used);
        p->uid_used = NULL;
}
