/* The request queue's order (docs/architecture.md "Fair queueing"): one FIFO per tenant (the
 * client's socket peer uid), served round-robin, with a cap on how many of one tenant's requests
 * run at once and on how many it may have waiting, so a tenant that floods the daemon waits
 * behind its own requests and never in front of another's. Requests for one clone carry the
 * clone as their key and run one at a time: the second waits here, holding no worker thread,
 * until the first is done or its deadline passes. No locking of its own: the worker pool holds
 * its lock around every call. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "service.h"

int fq_init(struct fair_queue *q, unsigned cap, unsigned tenant_queue, unsigned tenant_running,
            unsigned nthreads)
{
        /* Every tenant with a request waiting or running holds one slot: at most one per waiting
         * request plus one per thread. */
        *q = (struct fair_queue){.cap = cap,
                                 .tenant_queue = tenant_queue ? tenant_queue : 1,
                                 .tenant_running = tenant_running ? tenant_running : 1,
                                 .max_tenants = cap + nthreads,
                                 .max_keys = nthreads};
        q->tenants = calloc(q->max_tenants, sizeof(*q->tenants));
        q->keys = calloc(nthreads ? nthreads : 1, sizeof(*q->keys));
        if (!q->tenants || !q->keys) {
                fq_free(q);
                return -ENOMEM;
        }
        return 0;
}

void fq_free(struct fair_queue *q)
{
        free(q->tenants);
        free(q->keys);
        q->tenants = NULL;
        q->keys = NULL;
}

static struct fq_tenant *find_tenant(struct fair_queue *q, uint32_t uid)
{
        for (unsigned i = 0; i < q->ntenants; i++)
                if (q->tenants[i].uid == uid)
                        return &q->tenants[i];
        return NULL;
}

/* A tenant with nothing waiting or running gives its slot back; the last slot takes its place,
 * so the active ones stay packed at the front. */
static void maybe_retire(struct fair_queue *q, struct fq_tenant *t)
{
        if (t->queued || t->running)
                return;
        unsigned i = (unsigned)(t - q->tenants);
        q->tenants[i] = q->tenants[--q->ntenants];
        if (q->rr >= q->ntenants)
                q->rr = 0;
}

static bool key_running(const struct fair_queue *q, uint64_t key)
{
        for (unsigned i = 0; i < q->nkeys; i++)
                if (q->keys[i] == key)
                        return true;
        return false;
}

int fq_push(struct fair_queue *q, struct fq_item *it)
{
        if (q->n >= q->cap)
                return -EAGAIN;
        struct fq_tenant *t = find_tenant(q, it->tenant);
        if (t && t->queued >= q->tenant_queue)
                return -EDQUOT;
        if (!t) {
                if (q->ntenants == q->max_tenants)
                        return -EAGAIN; /* cannot happen: a slot per request and per thread */
                t = &q->tenants[q->ntenants++];
                *t = (struct fq_tenant){.uid = it->tenant};
        }
        it->next = NULL;
        if (t->tail)
                t->tail->next = it;
        else
                t->head = it;
        t->tail = it;
        t->queued++;
        q->n++;
        return 0;
}

static void unlink_item(struct fair_queue *q, struct fq_tenant *t, struct fq_item *prev,
                        struct fq_item *it)
{
        if (prev)
                prev->next = it->next;
        else
                t->head = it->next;
        if (t->tail == it)
                t->tail = prev;
        it->next = NULL;
        t->queued--;
        q->n--;
}

struct fq_item *fq_pop(struct fair_queue *q, int64_t now_ns, bool *expired)
{
        *expired = false;
        for (unsigned k = 0; k < q->ntenants; k++) {
                unsigned i = (q->rr + k) % q->ntenants;
                struct fq_tenant *t = &q->tenants[i];
                bool may_run = t->running < q->tenant_running;
                for (struct fq_item *prev = NULL, *it = t->head; it; prev = it, it = it->next) {
                        bool blocked =
                            !may_run ||
                            (it->key && (key_running(q, it->key) || q->nkeys == q->max_keys));
                        if (blocked && !(it->deadline_ns && it->deadline_ns <= now_ns))
                                continue;
                        unlink_item(q, t, prev, it);
                        if (blocked) {
                                /* Waited its whole deadline: answered, never run. */
                                *expired = true;
                                maybe_retire(q, t);
                                return it;
                        }
                        t->running++;
                        if (it->key)
                                q->keys[q->nkeys++] = it->key;
                        /* The next pop starts with the tenant after this one. */
                        q->rr = q->ntenants ? (i + 1) % q->ntenants : 0;
                        return it;
                }
        }
        return NULL;
}

void fq_done(struct fair_queue *q, struct fq_item *it)
{
        if (it->key)
                for (unsigned i = 0; i < q->nkeys; i++)
                        if (q->keys[i] == it->key) {
                                q->keys[i] = q->keys[--q->nkeys];
                                break;
                        }
        struct fq_tenant *t = find_tenant(q, it->tenant);
        if (!t)
                return;
        t->running--;
        maybe_retire(q, t);
}

int64_t fq_next_deadline(const struct fair_queue *q)
{
        int64_t next = INT64_MAX;
        for (unsigned i = 0; i < q->ntenants; i++)
                for (const struct fq_item *it = q->tenants[i].head; it; it = it->next)
                        if (it->deadline_ns && it->deadline_ns < next)
                                next = it->deadline_ns;
        return next;
}

unsigned fq_tenant_queued(const struct fair_queue *q, uint32_t uid)
{
        for (unsigned i = 0; i < q->ntenants; i++)
                if (q->tenants[i].uid == uid)
                        return q->tenants[i].queued;
        return 0;
}
