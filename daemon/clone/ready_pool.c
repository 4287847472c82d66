/* A base's ready clones: restored, given their identity and warmed up off the request path, so a
 * fresh one-shot's critical path is only its invoke. Each is handed out once. */
#include <errno.h>
#include <pthread.h>

#include "sprout/clone.h"
#include "clone_internal.h"

/* How long a pooled clone's warm-up may take. */
#define READY_WARMUP_TIMEOUT_MS 10000

void ready_pool_init(struct ready_pool *p)
{
        pthread_mutex_init(&p->lock, NULL);
        p->n = 0;
}

void ready_pool_free(struct ready_pool *p)
{
        for (unsigned i = 0; i < p->n; i++)
                sprout_clone_destroy(p->clones[i]);
        p->n = 0;
        pthread_mutex_destroy(&p->lock);
}

int sprout_base_prepare_ready(struct sprout_base *b, unsigned n, struct sprout_err *err)
{
        struct ready_pool *p = base_ready_pool(b);
        if (n > POOL_MAX)
                n = POOL_MAX;
        for (;;) {
                pthread_mutex_lock(&p->lock);
                unsigned have = p->n;
                pthread_mutex_unlock(&p->lock);
                if (have >= n)
                        return 0;
                struct sprout_clone *c;
                int r = sprout_clone_create(b, -1, &c, NULL, err);
                if (r < 0)
                        return r;
                r = sprout_clone_warmup(c, READY_WARMUP_TIMEOUT_MS, err);
                if (r < 0) {
                        sprout_clone_destroy(c);
                        return r;
                }
                pthread_mutex_lock(&p->lock);
                if (p->n < POOL_MAX) {
                        p->clones[p->n++] = c;
                        c = NULL;
                }
                pthread_mutex_unlock(&p->lock);
                sprout_clone_destroy(c);
        }
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
