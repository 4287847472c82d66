/* sprout-worker: one tenant's clones in a jailed process of their own (docs/workers.md). What the
 * worker's files share; private to daemon/worker/. */
#ifndef SPROUT_WORKER_H
#define SPROUT_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sprout/clone.h"
#include "wire.h"

#define WORKER_MAX_BASES  64
#define WORKER_MAX_CLONES 4096

struct worker_opts {
        int sock;
        uid_t uid; /* (uid_t)-1: keep this process's */
        gid_t gid;
        unsigned max_clones;
        bool seccomp;
        bool new_root;   /* the broker gave us a mount namespace: pivot into an empty root */
        bool test_hooks; /* sproutd --worker-test-hooks 1: the daemon tests' fault triggers */
        char tenant[32];
};

struct wbase;
struct wclone;

struct worker {
        struct worker_opts o;
        struct sprout_kvm *kvm;
        pthread_mutex_t lock; /* the tables, and each base's clone count */
        struct wbase *bases[WORKER_MAX_BASES];
        struct wclone **clones; /* o.max_clones slots */
        unsigned nlive;         /* clones in them */
        uint32_t jailed;        /* wire_hello.jailed */
};

/* Replies to request h on sock (the worker's, or a clone's); status < 0 sends msg as the
 * payload. */
void worker_reply(int sock, const struct wire_hdr *h, int status, const void *p, size_t n,
                  const char *msg);
/* A successful reply in two parts: one message, no copy. */
void worker_reply2(int sock, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
                   size_t n2);

/* worker_ops.c: the requests. The control thread calls worker_handle for each message on the
 * worker's socket; a clone's own requests arrive on its socket, read by its thread. */
void worker_handle(struct worker *w, struct wire_msg *m);
/* At the end of the stream: every clone and base is destroyed. */
void worker_shutdown(struct worker *w);

/* jail.c: an empty read-only root with /proc, the worker's uid and gid, no capabilities,
 * no_new_privs and rlimits. After /dev/kvm is open. */
int worker_jail(struct worker *w, struct sprout_err *err);

/* seccomp.c: the allow-lists (docs/workers.md, "System calls"). The process filter first, in the
 * main thread before any other starts; each vCPU thread then adds the vCPU filter. */
int worker_seccomp_process(struct sprout_err *err);
int worker_seccomp_vcpu(struct sprout_err *err);

#endif
