/* Where a clone's VM lives. With clones_per_worker 0 it is in this process (the clone engine
 * directly); otherwise in a worker process of the clone's tenant (placement.c), reached over the
 * protocol of docs/workers.md. Everything a worker answers is checked here before the service uses
 * it: lengths, the error codes it may give, and the text of its messages. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "sprout/abi.h"
#include "sprout/escape.h"
#include "sprout/smaps.h"
#include "service.h"
#include "wire.h"
#include "wproc.h"

/* How long past its own deadline a worker may take to answer before it is killed. */
#define WORKER_GRACE_MS    5000
#define CONTROL_TIMEOUT_MS 30000
/* The console ring holds at most this much; escaping can make a byte four. */
#define CLONE_LOG_MAX (4u * 64u * 1024u)

static bool remote(const struct sproutd *d)
{
        return d->cfg.clones_per_worker > 0;
}

/* A worker's error for the service: only the codes the clone engine gives pass, anything else
 * is a protocol error. The message is the worker's, prefixed with what was asked. */
static int worker_error(const struct wreply *rep, const char *what, struct sprout_err *err)
{
        static const int allowed[] = {-EMSGSIZE, -ETIMEDOUT, -EPROTO, -ESHUTDOWN, -EIO,
                                      -ENOMEM,   -EINVAL,    -EBUSY,  -ENOENT,    -ENOTSUP};
        int r = -EPROTO;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                if (rep->status == allowed[i])
                        r = rep->status;
        if (!rep->msg[0])
                return sprout_err_set(err, r, "%s failed in the worker", what);
        return sprout_err_set(err, r, "%s", rep->msg);
}

static int create_remote(struct sproutd *d, struct dsnap *e, struct dbase *db,
                         enum dclone_origin origin, struct dclone *c, struct sprout_clone_timing *t,
                         bool *ready, struct sprout_err *err)
{
        uint32_t bslot;
        int r = placement_take(d, e->owner, db, origin != DC_API, &c->w, &c->wslot, &bslot, err);
        if (r < 0)
                return r;
        /* The clone's own socket: its requests go straight to the thread that runs it, and the
         * caller reads the answer itself (docs/workers.md, "The protocol"). */
        int sv[2];
        r = wire_socketpair(sv, WIRE_CLONE_SOCKBUF);
        if (r < 0) {
                placement_release(d, c->w, c->wslot);
                c->w = NULL;
                return sprout_err_errno(err, r, "a socket for a clone");
        }
        struct wire_clone_new cn = {.base = bslot, .take_ready = origin != DC_API};
        struct wreply rep;
        r = wproc_call(c->w, WIRE_CLONE_NEW, c->wslot, &cn, sizeof(cn), NULL, 0, sv[1],
                       CONTROL_TIMEOUT_MS, &rep, err);
        close(sv[1]);
        struct wire_clone_made made;
        if (r == 0 && rep.status < 0)
                r = worker_error(&rep, "a restore", err);
        else if (r == 0 && rep.len != sizeof(made))
                r = -EPROTO;
        if (r == 0) {
                memcpy(&made, rep.payload, sizeof(made));
                uuid_unparse_lower(made.uuid, c->id);
                t->restore_ms = (double)made.restore_ns / 1e6;
                t->pooled = made.pooled != 0;
                *ready = made.ready != 0;
                t->generation = made.generation;
                placement_note_pools(d, c->w, bslot, made.shells_left, made.ready_left);
        }
        wreply_free(&rep);
        if (r == -EPROTO && !err->msg[0]) {
                wproc_kill(c->w, "a worker's clone reply was malformed");
                sprout_err_set(err, -ECONNRESET, "the worker broke the protocol");
                r = -ECONNRESET;
        }
        if (r < 0) {
                close(sv[0]);
                placement_release(d, c->w, c->wslot);
                c->w = NULL;
        } else {
                c->wsock = sv[0];
        }
        return r;
}

int vmhost_create(struct sproutd *d, struct dsnap *e, struct dbase *db, enum dclone_origin origin,
                  struct dclone *c, struct sprout_clone_timing *t, bool *ready,
                  struct sprout_err *err)
{
        if (remote(d))
                return create_remote(d, e, db, origin, c, t, ready, err);
        /* A one-shot call takes a ready clone (restored and warmed up ahead) when the base has
         * one: its slot was reserved like any clone's; the pool thread makes another. */
        *ready = origin != DC_API && sprout_clone_take_ready(dbase_base(db), &c->c) == 0;
        int r = 0;
        if (*ready) {
                t->pooled = true;
                t->generation = sprout_clone_generation(c->c);
        } else
                r = sprout_clone_create(dbase_base(db), -1, &c->c, t, err);
        if (t->pooled || r < 0)
                dbase_kick(db);
        if (r == 0)
                snprintf(c->id, sizeof(c->id), "%s", sprout_clone_id(c->c));
        return r;
}

/* The part of a worker's invoke reply before the response: the call's log. Checked, escaped again
 * (whatever the worker sent, what leaves here is escaped text), then the response moved to the
 * start of the payload. */
static int take_invoke_log(struct wproc *w, struct wreply *rep, struct invoke_log *log,
                           struct sprout_err *err)
{
        struct wire_invoke_log il;
        if (rep->len < sizeof(il))
                goto broken;
        memcpy(&il, rep->payload, sizeof(il));
        if (il.log_len > WIRE_INVOKE_LOG_MAX || il.log_len > rep->len - sizeof(il))
                goto broken;
        size_t cap = 4 * (size_t)il.log_len + 1;
        if (!(log->text = malloc(cap)))
                return sprout_err_set(err, -ENOMEM, "out of memory");
        const char *text = (const char *)rep->payload + sizeof(il);
        log->len = sprout_escape(log->text, cap, text, il.log_len, SPROUT_ESC_KEEP_LINES);
        log->lost = il.lost != 0;
        size_t off = sizeof(il) + il.log_len;
        rep->len -= off;
        memmove(rep->payload, (char *)rep->payload + off, rep->len);
        ((char *)rep->payload)[rep->len] = '\0';
        return 0;
broken:
        wproc_kill(w, "a worker answered a malformed invocation log");
        return sprout_err_set(err, -ECONNRESET, "the worker broke the protocol");
}

int vmhost_invoke(struct sproutd *d, struct dclone *c, const void *req, size_t len,
                  int64_t timeout_ms, char **resp, size_t *resp_len, struct invoke_log *log,
                  struct sprout_err *err)
{
        (void)d;
        if (log)
                *log = (struct invoke_log){0};
        if (!c->w) {
                const void *out;
                size_t out_len = 0;
                struct sprout_vm *vm = sprout_clone_vm(c->c);
                uint64_t mark = sprout_vm_console_mark(vm);
                int r = sprout_clone_invoke(c->c, req, len, timeout_ms, &out, &out_len, err);
                if (r < 0)
                        return r;
                /* The response lives in the mailbox only until the next run: copy it now. */
                if (!(*resp = malloc(out_len + 1)))
                        return sprout_err_set(err, -ENOMEM, "out of memory");
                memcpy(*resp, out, out_len);
                (*resp)[out_len] = '\0';
                *resp_len = out_len;
                if (log && !(log->text = malloc(WIRE_INVOKE_LOG_MAX + 1))) {
                        free(*resp);
                        return sprout_err_set(err, -ENOMEM, "out of memory");
                }
                if (log)
                        log->len = sprout_vm_console_since(vm, mark, log->text,
                                                           WIRE_INVOKE_LOG_MAX + 1, &log->lost);
                return 0;
        }
        if (len > SPROUT_MB_REQ_SIZE)
                return sprout_err_set(err, -EMSGSIZE, "a request of %zu bytes (the most is %u)",
                                      len, (unsigned)SPROUT_MB_REQ_SIZE);
        struct wire_invoke iv = {.timeout_ms = timeout_ms, .flags = log ? WIRE_INVOKE_LOG : 0};
        struct wreply rep;
        int r = wproc_clone_call(c->w, c->wsock, WIRE_CLONE_INVOKE, c->wslot, &iv, sizeof(iv), req,
                                 len, timeout_ms + WORKER_GRACE_MS, &rep, err);
        if (r < 0)
                return r;
        if (rep.status < 0)
                r = worker_error(&rep, "an invocation", err);
        else if (log)
                r = take_invoke_log(c->w, &rep, log, err);
        if (r == 0 && rep.len > SPROUT_MB_RESP_SIZE) {
                wproc_kill(c->w, "a worker answered more than a mailbox holds");
                r = sprout_err_set(err, -ECONNRESET, "the worker broke the protocol");
        }
        if (r == 0 && rep.payload) {
                *resp = rep.payload; /* the reader's copy, NUL-terminated: no second copy */
                *resp_len = rep.len;
                rep.payload = NULL;
        } else if (r == 0 && !(*resp = calloc(1, 1))) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
        } else if (r == 0) {
                *resp_len = 0;
        }
        if (r < 0 && log) {
                free(log->text);
                *log = (struct invoke_log){0};
        }
        wreply_free(&rep);
        return r;
}

int vmhost_log(struct sproutd *d, struct dclone *c, char **text, size_t *len,
               struct sprout_err *err)
{
        (void)d;
        char *buf = malloc(CLONE_LOG_MAX + 1);
        if (!buf)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        if (!c->w) {
                *len =
                    sprout_vm_console_tail(sprout_clone_vm(c->c), buf, CLONE_LOG_MAX + 1, UINT_MAX);
                *text = buf;
                return 0;
        }
        struct wreply rep;
        int r = wproc_clone_call(c->w, c->wsock, WIRE_CLONE_LOG, c->wslot, NULL, 0, NULL, 0,
                                 CONTROL_TIMEOUT_MS, &rep, err);
        if (r == 0 && rep.status < 0)
                r = worker_error(&rep, "reading the log", err);
        if (r == 0) {
                /* The worker escaped it; whatever it sent, what leaves here is escaped text. */
                size_t n = sprout_escape(buf, CLONE_LOG_MAX + 1, rep.payload, rep.len,
                                         SPROUT_ESC_KEEP_LINES);
                *len = n;
                *text = buf;
                buf = NULL;
        }
        wreply_free(&rep);
        free(buf);
        return r;
}

void vmhost_destroy(struct sproutd *d, struct dclone *c)
{
        if (!c->w) {
                /* Recycled into the base's ready pool while it is short (dbase's pool thread
                 * does the work), destroyed otherwise. */
                sprout_clone_release(c->c);
                dbase_kick(c->snap->base);
                return;
        }
        if (!wproc_dead(c->w, NULL, 0)) {
                struct sprout_err err = {0};
                struct wreply rep;
                int r = wproc_clone_call(c->w, c->wsock, WIRE_CLONE_DROP, c->wslot, NULL, 0, NULL,
                                         0, CONTROL_TIMEOUT_MS, &rep, &err);
                if (r == 0 && rep.status < 0)
                        wproc_kill(c->w, "a worker refused to destroy a clone");
                wreply_free(&rep);
        }
        close(c->wsock);
        c->wsock = -1;
        placement_release(d, c->w, c->wslot);
        c->w = NULL;
}

/* The clones of one worker, in one CLONE_MEMORY call. */
static void remote_bytes(struct dclone **cs, size_t n, struct wproc *w, uint64_t *out, bool *done)
{
        uint32_t *slots = calloc(n, sizeof(*slots));
        size_t *which = calloc(n, sizeof(*which));
        size_t k = 0;
        if (!slots || !which)
                goto out;
        for (size_t i = 0; i < n; i++)
                if (cs[i]->w == w) {
                        done[i] = true;
                        slots[k] = cs[i]->wslot;
                        which[k++] = i;
                }
        struct sprout_err err = {0};
        struct wreply rep;
        int r = wproc_call(w, WIRE_CLONE_MEMORY, 0, slots, k * sizeof(*slots), NULL, 0, -1,
                           CONTROL_TIMEOUT_MS, &rep, &err);
        if (r == 0 && rep.status == 0 && rep.len == k * sizeof(uint64_t))
                for (size_t j = 0; j < k; j++)
                        memcpy(&out[which[j]], (char *)rep.payload + j * sizeof(uint64_t),
                               sizeof(uint64_t));
        wreply_free(&rep);
out:
        free(slots);
        free(which);
}

void clones_private_bytes(struct sproutd *d, struct dclone **cs, size_t n, uint64_t *out)
{
        (void)d;
        for (size_t i = 0; i < n; i++)
                out[i] = 0;
        /* In this process: one pass over /proc/self/smaps for all of them (asking per clone
         * would cost O(clones^2) for a listing). */
        uintptr_t *starts = n ? calloc(n, sizeof(*starts)) : NULL;
        size_t local = 0;
        for (size_t i = 0; starts && i < n; i++)
                if (cs[i]->c) {
                        starts[i] = sprout_vm_ram_start(sprout_clone_vm(cs[i]->c));
                        local++;
                }
        if (local)
                (void)sprout_smaps_anon(starts, n, out);
        free(starts);
        /* In workers: one call per worker, for all its clones (done marks them). */
        bool *done = n ? calloc(n, sizeof(*done)) : NULL;
        for (size_t i = 0; done && i < n; i++)
                if (!done[i] && cs[i]->w && !wproc_dead(cs[i]->w, NULL, 0))
                        remote_bytes(cs, n, cs[i]->w, out, done);
        free(done);
}
