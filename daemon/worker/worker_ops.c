/* A worker's bases and clones. Each base keeps its pools of shells and ready clones on a thread of
 * its own; each clone has its own thread, which restores it, then (under the vCPU seccomp filter)
 * serves the requests that arrive on the clone's own socket one at a time, and finally tears it
 * down. The control thread never touches a clone's request, so a slow guest never delays another
 * clone's, and a request reaches its vCPU thread with no hand-off in between (docs/workers.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "sprout/clock.h"
#include "sprout/log.h"
#include "sprout/smaps.h"
#include "worker.h"

/* A clone thread's stack: it runs the VMM's exit handlers, nothing deep. */
#define CLONE_STACK (256u * 1024u)
/* A clone's log as one reply. Allocated for the request that needs it and freed after: an idle
 * clone holds no buffer (docs/workers.md, "Limits for many clones"). */
#define LOG_MAX (4u * 64u * 1024u)

struct wbase {
        struct worker *w;
        uint32_t slot;
        struct sprout_base *b;
        unsigned shells, ready, ready_max; /* pool targets: ready grows to ready_max with demand */
        unsigned clones;                   /* live clones, under w->lock */
        pthread_t pool;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        bool stop, kicked;
};

struct wclone {
        struct worker *w;
        struct wbase *base;
        uint32_t slot;
        bool take_ready;
        struct sprout_clone *c;
        int sock;                /* the clone's own socket: its requests and their replies */
        struct wire_hdr new_hdr; /* the CLONE_NEW request this thread answers first */
};

/* ---- bases ---- */

static void *pool_main(void *arg)
{
        struct wbase *wb = arg;
        struct sprout_pool_keeper keeper = {0};
        pthread_mutex_lock(&wb->lock);
        while (!wb->stop) {
                wb->kicked = false;
                pthread_mutex_unlock(&wb->lock);
                struct sprout_err err = {0};
                /* Shells only for clones that still fit: a full worker keeps none. */
                pthread_mutex_lock(&wb->w->lock);
                unsigned room = wb->w->o.max_clones - wb->w->nlive;
                pthread_mutex_unlock(&wb->w->lock);
                unsigned shells = wb->shells < room ? wb->shells : room;
                int64_t retry_ms =
                    sprout_base_keep_pools(wb->b, shells, wb->ready, wb->ready_max, &keeper, &err);
                pthread_mutex_lock(&wb->lock);
                if (retry_ms) {
                        /* Takes do not cut the wait short: a failing base is tried less often. */
                        sp_warn("worker: preparing shells or ready clones (%u failures in a row, "
                                "next try in %lld s): %s",
                                keeper.failures, (long long)retry_ms / 1000, err.msg);
                        struct timespec ts = sprout_mono_after_ms(retry_ms);
                        while (!wb->stop &&
                               pthread_cond_timedwait(&wb->cv, &wb->lock, &ts) != ETIMEDOUT)
                                ;
                        continue;
                }
                pthread_mutex_unlock(&wb->lock);
                /* The broker shows these counts (GET /v1/snapshots/ID, /metrics). */
                struct wire_pools pc = {.shells = sprout_base_pooled(wb->b),
                                        .ready = sprout_base_ready_count(wb->b)};
                struct wire_hdr h = {.type = WIRE_POOLS, .obj = wb->slot};
                (void)wire_send(wb->w->o.sock, &h, &pc, sizeof(pc), NULL, 0, -1, false);
                pthread_mutex_lock(&wb->lock);
                while (!wb->stop && !wb->kicked)
                        pthread_cond_wait(&wb->cv, &wb->lock);
        }
        pthread_mutex_unlock(&wb->lock);
        return NULL;
}

static void base_kick(struct wbase *wb)
{
        pthread_mutex_lock(&wb->lock);
        wb->kicked = true;
        pthread_cond_signal(&wb->cv);
        pthread_mutex_unlock(&wb->lock);
}

static void base_free(struct wbase *wb)
{
        pthread_mutex_lock(&wb->lock);
        wb->stop = true;
        pthread_cond_signal(&wb->cv);
        pthread_mutex_unlock(&wb->lock);
        pthread_join(wb->pool, NULL);
        sprout_base_free(wb->b);
        pthread_mutex_destroy(&wb->lock);
        pthread_cond_destroy(&wb->cv);
        free(wb);
}

/* BASE_ADD: the payload is struct wire_base_add and then the sections' bytes, exactly. */
static int base_add(struct worker *w, struct wire_msg *m, struct sprout_err *err)
{
        struct wire_base_add a;
        if (m->hdr.obj >= WORKER_MAX_BASES || m->hdr.len < sizeof(a) || m->fd < 0)
                return sprout_err_set(err, -EINVAL, "a malformed base");
        memcpy(&a, m->payload, sizeof(a));
        if (a.nsections > WIRE_MAX_SECTIONS || a.nsections > SPROUT_VM_MAX_SECTIONS)
                return sprout_err_set(err, -EINVAL, "a base with %u sections", a.nsections);
        struct sprout_base_export x = {.ram_size = a.ram_size,
                                       .host_kind = a.host_kind,
                                       .memfd = m->fd,
                                       .nsections = a.nsections};
        memcpy(x.uuid, a.uuid, 16);
        size_t off = sizeof(a);
        for (unsigned i = 0; i < a.nsections; i++) {
                if (a.sections[i].len > m->hdr.len - off)
                        return sprout_err_set(err, -EINVAL, "a base section overruns");
                x.sections[i] = (struct sprout_vm_section){.tag = a.sections[i].tag,
                                                           .data = (char *)m->payload + off,
                                                           .len = a.sections[i].len};
                off += a.sections[i].len;
        }
        if (off != m->hdr.len)
                return sprout_err_set(err, -EINVAL, "a base with trailing bytes");
        pthread_mutex_lock(&w->lock);
        bool taken = w->bases[m->hdr.obj] != NULL;
        pthread_mutex_unlock(&w->lock);
        if (taken)
                return sprout_err_set(err, -EEXIST, "base slot %u is taken", m->hdr.obj);
        struct wbase *wb = calloc(1, sizeof(*wb));
        if (!wb)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        int r = sprout_base_adopt(w->kvm, &x, &wb->b, err);
        if (r < 0) {
                free(wb);
                return r;
        }
        m->fd = -1; /* the base's now */
        sprout_base_set_recycle(wb->b, a.recycle != 0);
        if (a.prefault_shells)
                sprout_base_set_prefault(wb->b, SPROUT_PREFAULT_SHELL);
        wb->w = w;
        wb->slot = m->hdr.obj;
        wb->shells = a.pool_shells > 64 ? 64 : a.pool_shells;
        wb->ready = a.pool_ready > 64 ? 64 : a.pool_ready;
        wb->ready_max = a.pool_ready_max > 64 ? 64 : a.pool_ready_max;
        if (wb->ready_max < wb->ready)
                wb->ready_max = wb->ready;
        pthread_mutex_init(&wb->lock, NULL);
        sprout_cond_init_mono(&wb->cv);
        r = pthread_create(&wb->pool, NULL, pool_main, wb);
        if (r) {
                sprout_base_free(wb->b);
                free(wb);
                return sprout_err_errno(err, -r, "starting a pool thread");
        }
        pthread_mutex_lock(&w->lock);
        w->bases[m->hdr.obj] = wb;
        pthread_mutex_unlock(&w->lock);
        return 0;
}

static int base_drop(struct worker *w, uint32_t slot, struct sprout_err *err)
{
        if (slot >= WORKER_MAX_BASES)
                return sprout_err_set(err, -EINVAL, "no base slot %u", slot);
        pthread_mutex_lock(&w->lock);
        struct wbase *wb = w->bases[slot];
        int r = !wb ? -ENOENT : wb->clones ? -EBUSY : 0;
        if (r == 0)
                w->bases[slot] = NULL;
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                return sprout_err_set(err, r, "base slot %u: %s", slot,
                                      r == -EBUSY ? "still has clones" : "empty");
        base_free(wb);
        return 0;
}

/* ---- clones ---- */

static void clone_finish(struct wclone *wc)
{
        struct worker *w = wc->w;
        pthread_mutex_lock(&w->lock);
        w->clones[wc->slot] = NULL;
        wc->base->clones--;
        w->nlive--;
        pthread_mutex_unlock(&w->lock);
        free(wc);
}

static void clone_reply(struct wclone *wc, const struct wire_hdr *h, int status, const void *p,
                        size_t n, const char *msg)
{
        worker_reply(wc->sock, h, status, p, n, msg);
}

/* Back to its base, which recycles it into a ready clone while its pool is short (on the pool
 * thread, off this request's path) or destroys it. */
static void clone_release(struct wclone *wc)
{
        sprout_clone_release(wc->c);
        wc->c = NULL;
        base_kick(wc->base);
}

/* With sproutd --worker-test-hooks: the invocation is {"sprout_test":"NAME"}. */
static bool test_hook(const struct wclone *wc, const struct wire_msg *m, const char *name)
{
        char want[64];
        int n = snprintf(want, sizeof(want), "{\"sprout_test\":\"%s\"}", name);
        size_t off = sizeof(struct wire_invoke);
        return wc->w->o.test_hooks && m->hdr.len - off == (size_t)n &&
               !memcmp((char *)m->payload + off, want, (size_t)n);
}

/* Runs one request on the clone and answers it; false when it was the last (CLONE_DROP). */
static bool clone_serve(struct wclone *wc, struct wire_msg *m)
{
        struct sprout_err err = {0};
        switch (m->hdr.type) {
        case WIRE_CLONE_INVOKE: {
                struct wire_invoke iv;
                if (m->hdr.len < sizeof(iv)) {
                        clone_reply(wc, &m->hdr, -EINVAL, NULL, 0, "a malformed invoke");
                        return true;
                }
                memcpy(&iv, m->payload, sizeof(iv));
                if (test_hook(wc, m, "forbidden_syscall"))
                        /* The daemon tests' proof that the filter holds: not on the list. */
                        (void)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
                if (test_hook(wc, m, "stray_reply")) {
                        /* Their proof that the broker checks what a clone's socket says: an
                         * answer to a request it never made. */
                        struct wire_hdr stray = m->hdr;
                        stray.seq++;
                        clone_reply(wc, &stray, 0, NULL, 0, NULL);
                        return true;
                }
                const void *resp;
                size_t rlen = 0;
                struct sprout_vm *vm = sprout_clone_vm(wc->c);
                uint64_t mark = sprout_vm_console_mark(vm);
                int r =
                    sprout_clone_invoke(wc->c, (char *)m->payload + sizeof(iv),
                                        m->hdr.len - sizeof(iv), iv.timeout_ms, &resp, &rlen, &err);
                if (r < 0 || !(iv.flags & WIRE_INVOKE_LOG)) {
                        clone_reply(wc, &m->hdr, r, resp, rlen, err.msg);
                        return true;
                }
                char *logbuf = malloc(sizeof(struct wire_invoke_log) + WIRE_INVOKE_LOG_MAX + 1);
                /* The log part before the response, in logbuf: two parts, no copy of either. */
                struct wire_invoke_log il = {.lost = 1}, *part = &il;
                if (logbuf) {
                        bool lost = false;
                        il.log_len = (uint32_t)sprout_vm_console_since(
                            vm, mark, logbuf + sizeof(il), WIRE_INVOKE_LOG_MAX + 1, &lost);
                        il.lost = lost;
                        memcpy(logbuf, &il, sizeof(il));
                        part = (struct wire_invoke_log *)(void *)logbuf;
                }
                worker_reply2(wc->sock, &m->hdr, part, sizeof(il) + il.log_len, resp, rlen);
                free(logbuf);
                return true;
        }
        case WIRE_CLONE_LOG: {
                char *logbuf = malloc(LOG_MAX + 1);
                size_t n = logbuf ? sprout_vm_console_tail(sprout_clone_vm(wc->c), logbuf,
                                                           LOG_MAX + 1, UINT32_MAX)
                                  : 0;
                clone_reply(wc, &m->hdr, logbuf ? 0 : -ENOMEM, logbuf, n, "out of memory");
                free(logbuf);
                return true;
        }
        case WIRE_CLONE_DROP:
                clone_release(wc);
                return false;
        default:
                clone_reply(wc, &m->hdr, -EINVAL, NULL, 0, "not a request for a clone's socket");
                return true;
        }
}

/* The end of a clone's thread: its slot is free before the DROP is answered, so the broker may
 * reuse the slot the moment it reads the reply; the socket closes last. */
static void clone_end(struct wclone *wc, const struct wire_hdr *drop)
{
        int sock = wc->sock;
        clone_finish(wc);
        if (drop)
                worker_reply(sock, drop, 0, NULL, 0, NULL);
        close(sock);
}

static void *clone_main(void *arg)
{
        struct wclone *wc = arg;
        struct worker *w = wc->w;
        struct sprout_err err = {0};
        struct wire_clone_made made = {0};
        int64_t t0 = sprout_mono_ns();
        int r = -ENOENT;
        if (wc->take_ready && sprout_clone_take_ready(wc->base->b, &wc->c) == 0) {
                made.ready = made.pooled = 1;
                made.generation = sprout_clone_generation(wc->c);
                r = 0;
        } else {
                struct sprout_clone_timing t = {0};
                r = sprout_clone_create(wc->base->b, -1, &wc->c, &t, &err);
                made.pooled = t.pooled;
        }
        base_kick(wc->base);
        if (r == 0 && w->o.seccomp)
                r = worker_seccomp_vcpu(&err);
        if (r < 0) {
                sprout_clone_destroy(wc->c);
                /* The slot is free before the broker hears of it, so it may reuse it at once. */
                struct wire_hdr h = wc->new_hdr;
                clone_end(wc, NULL);
                worker_reply(w->o.sock, &h, r, NULL, 0, err.msg);
                return NULL;
        }
        made.restore_ns = (uint64_t)(sprout_mono_ns() - t0);
        uuid_parse(sprout_clone_id(wc->c), made.uuid);
        made.shells_left = sprout_base_pooled(wc->base->b);
        made.ready_left = sprout_base_ready_count(wc->base->b);
        worker_reply(w->o.sock, &wc->new_hdr, 0, &made, sizeof(made), NULL);

        for (;;) {
                /* Sized to each request, freed after it: an idle clone holds no buffer. */
                long len = wire_peek_len(wc->sock);
                void *buf = len > 0 && len <= WIRE_MAX_PAYLOAD ? malloc((size_t)len) : NULL;
                struct wire_msg m;
                if (len > 0 && len <= WIRE_MAX_PAYLOAD && !buf) {
                        /* Refused unread: the stream stays in step and the clone serves on. */
                        struct wire_hdr dh;
                        r = wire_drain(wc->sock, &dh);
                        if (r == 0) {
                                worker_reply(wc->sock, &dh, -ENOMEM, NULL, 0, "out of memory");
                                continue;
                        }
                } else {
                        r = len < 0                  ? (int)len
                            : len > WIRE_MAX_PAYLOAD ? -EPROTO
                                                     : wire_recv(wc->sock, &m, buf, (size_t)len);
                }
                if (r < 0) {
                        /* The broker closed the clone's socket (it drops a clone it gave up on
                         * that way), or broke the framing: the clone ends, unanswered. */
                        if (r != -ECONNRESET)
                                sp_err("worker (tenant %s): clone slot %u: broker message: %s",
                                       w->o.tenant, wc->slot, strerror(-r));
                        free(buf);
                        clone_release(wc);
                        clone_end(wc, NULL);
                        break;
                }
                wire_msg_close(&m); /* the broker sends a clone no descriptors */
                bool more = clone_serve(wc, &m);
                free(buf);
                if (!more) {
                        clone_end(wc, &m.hdr);
                        break;
                }
        }
        return NULL;
}

static int clone_new(struct worker *w, struct wire_msg *m, struct sprout_err *err)
{
        struct wire_clone_new cn;
        if (m->hdr.len != sizeof(cn) || m->hdr.obj >= w->o.max_clones || m->fd < 0)
                return sprout_err_set(err, -EINVAL, "a malformed clone request");
        memcpy(&cn, m->payload, sizeof(cn));
        struct wclone *wc = calloc(1, sizeof(*wc));
        if (!wc)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        pthread_mutex_lock(&w->lock);
        struct wbase *wb = cn.base < WORKER_MAX_BASES ? w->bases[cn.base] : NULL;
        int r = !wb ? -ENOENT : w->clones[m->hdr.obj] ? -EEXIST : 0;
        if (r == 0) {
                w->clones[m->hdr.obj] = wc;
                wb->clones++;
                w->nlive++;
        }
        pthread_mutex_unlock(&w->lock);
        if (r < 0) {
                free(wc);
                return sprout_err_set(err, r, "clone slot %u on base %u: %s", m->hdr.obj, cn.base,
                                      r == -ENOENT ? "no such base" : "taken");
        }
        wc->w = w;
        wc->base = wb;
        wc->slot = m->hdr.obj;
        wc->take_ready = cn.take_ready != 0;
        wc->new_hdr = m->hdr;
        wc->sock = m->fd;
        m->fd = -1; /* the clone's now: its thread closes it */
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, CLONE_STACK);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        r = pthread_create(&t, &at, clone_main, wc);
        pthread_attr_destroy(&at);
        if (r) {
                clone_end(wc, NULL);
                return sprout_err_errno(err, -r, "starting a clone thread");
        }
        return 1; /* the clone's thread replies */
}

/* CLONE_MEMORY: the private bytes of each listed clone, in one pass over our smaps. A clone busy
 * or gone reads 0. */
static void clone_memory(struct worker *w, struct wire_msg *m)
{
        size_t n = m->hdr.len / sizeof(uint32_t);
        uint32_t *slots = m->payload;
        uintptr_t *starts = calloc(n ? n : 1, sizeof(*starts));
        uint64_t *out = calloc(n ? n : 1, sizeof(*out));
        if (!starts || !out || m->hdr.len % sizeof(uint32_t)) {
                worker_reply(w->o.sock, &m->hdr, -EINVAL, NULL, 0, "a malformed memory request");
                goto out;
        }
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < n; i++) {
                uint32_t s;
                memcpy(&s, &slots[i], sizeof(s));
                struct wclone *wc = s < w->o.max_clones ? w->clones[s] : NULL;
                /* wc->c is set before the clone's slot can be named by a reply, and cleared only
                 * by its DROP, which the broker sends after its last use. */
                if (wc && wc->c)
                        starts[i] = sprout_vm_ram_start(sprout_clone_vm(wc->c));
        }
        pthread_mutex_unlock(&w->lock);
        (void)sprout_smaps_anon(starts, n, out);
        worker_reply(w->o.sock, &m->hdr, 0, out, n * sizeof(*out), NULL);
out:
        free(starts);
        free(out);
}

void worker_handle(struct worker *w, struct wire_msg *m)
{
        struct sprout_err err = {0};
        int r;
        switch (m->hdr.type) {
        case WIRE_BASE_ADD:
                r = base_add(w, m, &err);
                break;
        case WIRE_BASE_DROP:
                r = base_drop(w, m->hdr.obj, &err);
                break;
        case WIRE_CLONE_NEW:
                r = clone_new(w, m, &err);
                break;
        case WIRE_CLONE_MEMORY:
                clone_memory(w, m);
                return;
        default:
                r = sprout_err_set(&err, -EINVAL, "%s is not a request",
                                   wire_type_name(m->hdr.type));
        }
        if (r <= 0)
                worker_reply(w->o.sock, &m->hdr, r, NULL, 0, err.msg);
}

void worker_shutdown(struct worker *w)
{
        /* The broker is gone or done with us: the process exit tears every VM down (the kernel
         * closes their descriptors), faster than doing it one by one while clone threads may be
         * inside KVM_RUN. */
        (void)w;
        _exit(0);
}
