/* The worker pool: a bounded queue of parsed requests and the threads that execute them. The bound
 * is the daemon's answer to overload: a full queue is a 429, never unbounded memory or a hang. */
#include <errno.h>
#include <stdlib.h>

#include "service.h"

static void *worker_main(void *arg)
{
        struct workers *w = arg;
        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->n && !w->stop)
                        pthread_cond_wait(&w->cv, &w->lock);
                if (!w->n)
                        break; /* stopping, and nothing left to run */
                void *item = w->q[w->head];
                w->head = (w->head + 1) % w->cap;
                w->n--;
                w->busy++;
                pthread_mutex_unlock(&w->lock);
                w->run(w->ctx, item);
                pthread_mutex_lock(&w->lock);
                w->busy--;
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int workers_start(struct workers *w, unsigned nthreads, unsigned cap,
                  void (*run)(void *ctx, void *item), void *ctx, struct sprout_err *err)
{
        *w = (struct workers){.cap = cap, .run = run, .ctx = ctx};
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->q = calloc(cap, sizeof(*w->q));
        w->threads = calloc(nthreads, sizeof(*w->threads));
        if (!w->q || !w->threads) {
                free(w->q);
                free(w->threads);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
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

int workers_submit(struct workers *w, void *item)
{
        pthread_mutex_lock(&w->lock);
        if (w->stop || w->n == w->cap) {
                pthread_mutex_unlock(&w->lock);
                return -EAGAIN;
        }
        w->q[(w->head + w->n) % w->cap] = item;
        w->n++;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

void workers_counts(struct workers *w, unsigned *queued, unsigned *busy)
{
        pthread_mutex_lock(&w->lock);
        *queued = w->n;
        *busy = w->busy;
        pthread_mutex_unlock(&w->lock);
}

void workers_stop(struct workers *w)
{
        if (!w->q)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->nthreads; i++)
                pthread_join(w->threads[i], NULL);
        free(w->q);
        free(w->threads);
        w->q = NULL;
        w->threads = NULL;
        w->nthreads = 0;
}
