/* The worker pool: the fair queue of parsed requests (fair_queue.c) and the threads that execute
 * them. The queue's bounds are the daemon's answer to overload: a full queue, or a tenant's full
 * share of it, is a 429, never unbounded memory or a hang. */
#include <errno.h>
#include <stdlib.h>

#include "service.h"

/* Waits for work; a request waiting on a busy clone wakes the pool at its deadline. */
static void wait_for_work(struct workers *w)
{
        int64_t next = fq_next_deadline(&w->q);
        if (next == INT64_MAX) {
                pthread_cond_wait(&w->cv, &w->lock);
                return;
        }
        struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
        pthread_cond_timedwait(&w->cv, &w->lock, &ts);
}

static void *worker_main(void *arg)
{
        struct workers *w = arg;
        pthread_mutex_lock(&w->lock);
        for (;;) {
                bool expired;
                struct fq_item *it = fq_pop(&w->q, sprout_mono_ns(), &expired);
                if (!it) {
                        if (w->stop && !w->q.n)
                                break; /* stopping, and nothing left to run */
                        wait_for_work(w);
                        continue;
                }
                /* Another item may be runnable too: pass the wake-up on. */
                if (w->q.n)
                        pthread_cond_signal(&w->cv);
                if (!expired)
                        w->busy++;
                /* run hands the item back to its owner, who may free it: keep what fq_done reads.
                 */
                struct fq_item done = {.tenant = it->tenant, .key = it->key};
                pthread_mutex_unlock(&w->lock);
                w->run(w->ctx, it, expired);
                pthread_mutex_lock(&w->lock);
                if (!expired) {
                        fq_done(&w->q, &done);
                        w->busy--;
                        /* Its clone or its tenant's share is free: a waiting item may run. */
                        if (w->q.n)
                                pthread_cond_signal(&w->cv);
                }
        }
        pthread_cond_broadcast(&w->cv); /* the others may be waiting on a deadline */
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int workers_start(struct workers *w, unsigned nthreads, unsigned cap, unsigned tenant_queue,
                  unsigned tenant_running,
                  void (*run)(void *ctx, struct fq_item *item, bool expired), void *ctx,
                  struct sprout_err *err)
{
        *w = (struct workers){.run = run, .ctx = ctx};
        w->threads = calloc(nthreads, sizeof(*w->threads));
        if (!w->threads || fq_init(&w->q, cap, tenant_queue, tenant_running, nthreads) < 0) {
                free(w->threads);
                w->threads = NULL;
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        pthread_mutex_init(&w->lock, NULL);
        sprout_cond_init_mono(&w->cv);
        w->started = true;
        for (unsigned i = 0; i < nthreads; i++) {
                int r = pthread_create(&w->threads[i], NULL, worker_main, w);
                if (r) {
                        workers_stop(w);
                        return sprout_err_errno(err, -r, "starting worker %u", i);
                }
                w->nthreads++;
        }
        return 0;
}

int workers_submit(struct workers *w, struct fq_item *item)
{
        pthread_mutex_lock(&w->lock);
        int r = w->stop ? -EAGAIN : fq_push(&w->q, item);
        if (r == 0)
                pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->lock);
        return r;
}

void workers_counts(struct workers *w, unsigned *queued, unsigned *busy)
{
        pthread_mutex_lock(&w->lock);
        *queued = w->q.n;
        *busy = w->busy;
        pthread_mutex_unlock(&w->lock);
}

void workers_stop(struct workers *w)
{
        if (!w->started)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->nthreads; i++)
                pthread_join(w->threads[i], NULL);
        free(w->threads);
        fq_free(&w->q);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->lock);
        w->threads = NULL;
        w->nthreads = 0;
        w->started = false;
}
