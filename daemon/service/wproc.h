/* One worker process as the broker sees it (docs/workers.md): spawning it jailed, calls with a
 * deadline, and the thread that reads its replies. Private to daemon/service/. */
#ifndef SPROUT_WPROC_H
#define SPROUT_WPROC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sprout/err.h"

struct sproutd;
struct dbase;
struct wcall;

#define WPROC_MAX_BASES 64

struct wproc_base {
        struct dbase *db;     /* NULL: a free slot */
        unsigned ready_slots; /* of d->clones_total, held for the ready clones it keeps */
        unsigned shells_left, ready_left; /* as the worker last said */
};

struct wproc {
        struct wproc *next; /* the placement list */
        struct sproutd *d;
        uid_t tenant;
        uid_t uid; /* the worker's own */
        pid_t pid;
        int sock;
        unsigned index;  /* uid - worker_uid_base */
        unsigned jailed; /* wire_hello.jailed */
        pthread_t reader;
        pthread_mutex_t lock; /* calls, dead; never held while taking d->lock */
        pthread_cond_t died;  /* dead became true */
        struct wcall *calls;
        uint32_t next_seq;
        bool dead, reaping, stopping;
        char dead_reason[320];
        /* Under the placement lock: */
        unsigned refs;    /* the placement list's and each clone's */
        unsigned nclones; /* slots taken */
        unsigned max_clones;
        uint8_t *slot_used;
        int64_t idle_since_ns; /* CLOCK_MONOTONIC: nclones reached 0 */
        bool listed;
        struct wproc_base bases[WPROC_MAX_BASES];
        const struct dbase *adding; /* the base a BASE_ADD is giving it, and its ready slots */
        unsigned adding_ready;
};

/* A reply: status (0 or the worker's negative errno, with msg), payload malloc'd and
 * NUL-terminated (NULL if none). */
struct wreply {
        int status;
        void *payload;
        size_t len;
        bool worker_died; /* no reply: the worker is gone */
        char msg[320];
};

/* Starts a jailed worker for tenant; *out holds one reference. */
int wproc_spawn(struct sproutd *d, uid_t tenant, unsigned index, struct wproc **out,
                struct sprout_err *err);
/* Sends one request and waits up to timeout_ms for its reply. A worker that does not answer in
 * time is killed: it is no longer trusted to. -ECONNRESET (the worker died, err says how) or the
 * send's error; otherwise 0 with *rep (whose status may be an error). */
int wproc_call(struct wproc *w, unsigned type, uint32_t obj, const void *p1, size_t n1,
               const void *p2, size_t n2, int fd, int64_t timeout_ms, struct wreply *rep,
               struct sprout_err *err);
/* The same for a request about one clone, on that clone's own socket (sock, the broker's end):
 * the caller sends and reads the reply itself. One call at a time per clone (its run_lock). */
int wproc_clone_call(struct wproc *w, int sock, unsigned type, uint32_t obj, const void *p1,
                     size_t n1, const void *p2, size_t n2, int64_t timeout_ms, struct wreply *rep,
                     struct sprout_err *err);
void wreply_free(struct wreply *rep);
bool wproc_dead(struct wproc *w, char *why, size_t len);
/* Kills the worker (SIGKILL); its reader thread notices and fails every call. */
void wproc_kill(struct wproc *w, const char *why);
/* Ends the worker and frees w: the last reference's job (placement.c). */
void wproc_free(struct wproc *w);

#endif
