/* sprout_run_as: a short-lived thread that drops to a client's uid, gid and groups with the raw
 * system calls (per-thread credentials), runs one function and ends (include/sprout/run_as.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sprout/clock.h"
#include "sprout/run_as.h"

struct run_as {
        pthread_mutex_t lock;
        pthread_cond_t cv;
        unsigned refs; /* the caller's and the thread's */
        bool done, abandoned;
        int result;
        struct sprout_creds who;
        int (*fn)(void *arg);
        void (*abandon)(void *arg, int result);
        void *arg;
};

static void put(struct run_as *r)
{
        pthread_mutex_lock(&r->lock);
        bool last = --r->refs == 0;
        pthread_mutex_unlock(&r->lock);
        if (!last)
                return;
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

/* Groups first, then gid, then uid: once the uid is not root, the others can no longer change. */
static int become(const struct sprout_creds *w)
{
        if (w->uid == geteuid() && w->gid == getegid())
                return 0;
        if (syscall(SYS_setgroups, w->ngroups, w->groups) < 0 ||
            syscall(SYS_setresgid, w->gid, w->gid, w->gid) < 0 ||
            syscall(SYS_setresuid, w->uid, w->uid, w->uid) < 0)
                return -errno;
        return 0;
}

static void *run_as_main(void *p)
{
        struct run_as *r = p;
        int result = become(&r->who);
        if (result == 0)
                result = r->fn(r->arg);
        pthread_mutex_lock(&r->lock);
        r->done = true;
        r->result = result;
        bool abandoned = r->abandoned;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->lock);
        if (abandoned && r->abandon)
                r->abandon(r->arg, result);
        put(r);
        return NULL;
}

int sprout_run_as(const struct sprout_creds *who, int64_t timeout_ms, int (*fn)(void *arg),
                  void (*abandon)(void *arg, int result), void *arg)
{
        if (who->ngroups > SPROUT_CREDS_MAX_GROUPS)
                return -EINVAL;
        struct run_as *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        sprout_cond_init_mono(&r->cv);
        r->refs = 2;
        r->who = *who;
        r->fn = fn;
        r->abandon = abandon;
        r->arg = arg;

        pthread_attr_t a;
        pthread_t t;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &a, run_as_main, r);
        pthread_attr_destroy(&a);
        if (e) {
                r->refs = 1;
                put(r);
                return -e;
        }

        struct timespec until = sprout_mono_after_ms(timeout_ms);
        pthread_mutex_lock(&r->lock);
        while (!r->done)
                if (pthread_cond_timedwait(&r->cv, &r->lock, &until) == ETIMEDOUT)
                        break;
        int result = r->done ? r->result : -ETIMEDOUT;
        if (!r->done)
                r->abandoned = true;
        pthread_mutex_unlock(&r->lock);
        put(r);
        return result;
}
