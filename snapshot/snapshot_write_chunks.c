/* The writer's chunk pipeline: worker threads compress chunks into a small ring of slots while the
 * calling thread writes finished frames through io_uring strictly in RAM order, so the index comes
 * out sorted and the frames contiguous whatever order the workers finish in. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "snapshot_internal.h"

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE, SLOT_WRITING };

struct slot {
        enum slot_state state;
        uint64_t turn; /* the chunk this slot takes next: slot i serves chunks i, i+nslots, ... */
        uint8_t *out;
        int rc;
        struct sprout_err err;
        struct snap_encoded enc;
        struct snap_io io;
};

struct pipe {
        const struct snap_write_opts *o;
        uint32_t chunk_size;
        uint64_t total; /* chunks covering RAM, all-zero ones included */
        size_t out_cap;
        int efd; /* counts "a slot is done" and "a write completed": the main thread's one wait */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t next_claim;
        bool stop;
        struct slot *slots;
        unsigned nslots;
};

struct worker {
        struct pipe *pp;
        pthread_t tid;
        struct snap_encoder enc;
};

static void notify(int efd)
{
        uint64_t one = 1;
        /* Fails only when the counter is already huge, which is a pending wakeup anyway. */
        (void)!write(efd, &one, sizeof(one));
}

static void wait_event(int efd)
{
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        /* The timeout is a safety net: how io_uring signals a registered eventfd has varied across
         * kernels, and a missed wakeup should cost 100 ms, not a hang. */
        if (poll(&pfd, 1, 100) > 0) {
                uint64_t v;
                (void)!read(efd, &v, sizeof(v));
        }
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        struct pipe *pp = w->pp;
        uint32_t cs = pp->chunk_size;

        pthread_mutex_lock(&pp->lock);
        while (!pp->stop && pp->next_claim < pp->total) {
                uint64_t c = pp->next_claim++;
                struct slot *s = &pp->slots[c % pp->nslots];
                while (!pp->stop && !(s->state == SLOT_FREE && s->turn == c))
                        pthread_cond_wait(&pp->cond, &pp->lock);
                if (pp->stop)
                        break;
                s->state = SLOT_BUSY;
                pthread_mutex_unlock(&pp->lock);

                uint64_t off = c * cs;
                uint64_t left = pp->o->ram_size - off;
                uint32_t len = left < cs ? (uint32_t)left : cs;
                sprout_err_clear(&s->err);
                int rc = snap_encode_chunk(&w->enc, (const uint8_t *)pp->o->ram + off, len, s->out,
                                           pp->out_cap, &s->enc, &s->err);

                pthread_mutex_lock(&pp->lock);
                s->rc = rc;
                s->state = SLOT_DONE;
                pthread_mutex_unlock(&pp->lock);
                notify(pp->efd);
                pthread_mutex_lock(&pp->lock);
        }
        pthread_mutex_unlock(&pp->lock);
        return NULL;
}

static enum slot_state slot_state(struct pipe *pp, struct slot *s)
{
        pthread_mutex_lock(&pp->lock);
        enum slot_state st = s->state;
        pthread_mutex_unlock(&pp->lock);
        return st;
}

static void slot_set(struct pipe *pp, struct slot *s, enum slot_state st)
{
        pthread_mutex_lock(&pp->lock);
        s->state = st;
        if (st == SLOT_FREE) {
                s->turn += pp->nslots;
                pthread_cond_broadcast(&pp->cond);
        }
        pthread_mutex_unlock(&pp->lock);
}

static void add_entry(uint8_t *index, uint64_t n, uint32_t entry_size, uint64_t ram_off,
                      uint64_t file_off, const struct snap_encoded *enc)
{
        struct snap_fmt_entry e = {
            .ram_off = ram_off,
            .file_off = file_off,
            .clen = enc->clen,
            .npages = enc->npages,
            .frame_hash = enc->hash,
        };
        uint8_t *p = index + n * entry_size;
        memcpy(p, &e, sizeof(e));
        memcpy(p + sizeof(e), enc->bitmap, entry_size - sizeof(e));
}

int snap_write_chunks(const struct snap_write_opts *o, const struct snap_wparams *p,
                      struct io_uring *ring, int fd, uint64_t data_off, const char *where,
                      struct snap_chunks_out *out, struct sprout_err *err)
{
        struct pipe pp = {
            .o = o,
            .chunk_size = p->chunk_size,
            .total = (o->ram_size + p->chunk_size - 1) / p->chunk_size,
            .out_cap = ZSTD_compressBound(p->chunk_size),
            .efd = -1,
            .lock = PTHREAD_MUTEX_INITIALIZER,
            .cond = PTHREAD_COND_INITIALIZER,
        };
        unsigned nthreads = p->threads;
        if (nthreads > pp.total)
                nthreads = (unsigned)pp.total;
        /* Two spare slots let the writer drain while every worker compresses. */
        pp.nslots = nthreads + 2;

        struct worker *ws = NULL;
        unsigned nstarted = 0, inflight = 0;
        bool registered = false;
        int rc;

        memset(out, 0, sizeof(*out));
        out->index = calloc(pp.total, p->entry_size);
        pp.slots = calloc(pp.nslots, sizeof(*pp.slots));
        ws = calloc(nthreads, sizeof(*ws));
        if (!out->index || !pp.slots || !ws) {
                rc = sprout_err_set(err, -ENOMEM, "out of memory for a %llu-chunk index",
                                    (unsigned long long)pp.total);
                goto out;
        }
        for (unsigned i = 0; i < pp.nslots; i++) {
                pp.slots[i].turn = i;
                pp.slots[i].out = malloc(pp.out_cap);
                if (!pp.slots[i].out) {
                        rc = sprout_err_set(err, -ENOMEM,
                                            "out of memory for %u frame buffers of %zu bytes",
                                            pp.nslots, pp.out_cap);
                        goto out;
                }
        }
        pp.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pp.efd < 0) {
                rc = sprout_err_errno(err, -errno, "eventfd for the snapshot writer");
                goto out;
        }
        rc = io_uring_register_eventfd(ring, pp.efd);
        if (rc < 0) {
                sprout_err_errno(err, rc, "io_uring_register_eventfd");
                goto out;
        }
        registered = true;
        for (unsigned i = 0; i < nthreads; i++) {
                ws[i].pp = &pp;
                rc = snap_encoder_init(&ws[i].enc, p->chunk_size, p->level, err);
                if (rc < 0)
                        goto stop;
                rc = -pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
                if (rc < 0) {
                        snap_encoder_fini(&ws[i].enc);
                        sprout_err_errno(err, rc, "cannot start compression thread %u", i);
                        goto stop;
                }
                nstarted++;
        }

        uint64_t next = 0, file_off = data_off;
        while (next < pp.total || inflight > 0) {
                bool progressed = false;
                struct io_uring_cqe *cqe;

                while (io_uring_peek_cqe(ring, &cqe) == 0) {
                        struct snap_io *io;
                        int r = snap_io_reap(ring, cqe, &io);
                        struct slot *s = &pp.slots[io->cookie];
                        if (r == SNAP_IO_PARTIAL) {
                                r = snap_io_submit(ring, io);
                                if (r == 0)
                                        continue;
                        }
                        inflight--;
                        if (r < 0) {
                                rc = sprout_err_errno(err, r,
                                                      "writing the frame of RAM chunk 0x%llx (%llu "
                                                      "bytes at file offset %llu) to %s",
                                                      (unsigned long long)(s->turn * pp.chunk_size),
                                                      (unsigned long long)io->len,
                                                      (unsigned long long)io->off, where);
                                goto stop;
                        }
                        slot_set(&pp, s, SLOT_FREE);
                        progressed = true;
                }

                while (next < pp.total) {
                        struct slot *s = &pp.slots[next % pp.nslots];
                        if (slot_state(&pp, s) != SLOT_DONE)
                                break;
                        if (s->rc < 0) {
                                rc = sprout_err_set(err, s->rc, "RAM chunk 0x%llx: %s",
                                                    (unsigned long long)(next * pp.chunk_size),
                                                    s->err.msg);
                                goto stop;
                        }
                        if (s->enc.npages == 0) {
                                slot_set(&pp, s, SLOT_FREE);
                        } else {
                                add_entry(out->index, out->nchunks, p->entry_size,
                                          next * pp.chunk_size, file_off, &s->enc);
                                out->nchunks++;
                                out->nonzero_pages += s->enc.npages;
                                s->io = (struct snap_io){
                                    .op = SNAP_IO_WRITE,
                                    .fd = fd,
                                    .buf = s->out,
                                    .len = s->enc.clen,
                                    .off = file_off,
                                    .cookie = next % pp.nslots,
                                };
                                slot_set(&pp, s, SLOT_WRITING);
                                int r = snap_io_submit(ring, &s->io);
                                if (r < 0) {
                                        rc = sprout_err_errno(
                                            err, r, "io_uring submit of a %u-byte write to %s",
                                            s->enc.clen, where);
                                        goto stop;
                                }
                                inflight++;
                                file_off += s->enc.clen;
                        }
                        next++;
                        progressed = true;
                        if (o->progress) {
                                uint64_t done = next * pp.chunk_size;
                                if (done > o->ram_size)
                                        done = o->ram_size;
                                if (o->progress(o->progress_ctx, done, o->ram_size)) {
                                        rc = sprout_err_set(err, -ECANCELED,
                                                            "snapshot write cancelled by the "
                                                            "caller after %llu of %llu RAM bytes",
                                                            (unsigned long long)done,
                                                            (unsigned long long)o->ram_size);
                                        goto stop;
                                }
                        }
                }
                if (!progressed)
                        wait_event(pp.efd);
        }
        out->end_off = file_off;
        rc = 0;

stop:
        pthread_mutex_lock(&pp.lock);
        pp.stop = true;
        pthread_cond_broadcast(&pp.cond);
        pthread_mutex_unlock(&pp.lock);
        for (unsigned i = 0; i < nstarted; i++) {
                pthread_join(ws[i].tid, NULL);
                snap_encoder_fini(&ws[i].enc);
        }
        /* The kernel may still read frame buffers for writes in flight: wait them out before
         * freeing. */
        while (inflight > 0) {
                struct io_uring_cqe *cqe;
                int r = io_uring_wait_cqe(ring, &cqe);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        break; /* the ring is unusable; its teardown cancels what is left */
                io_uring_cqe_seen(ring, cqe);
                inflight--;
        }
out:
        if (registered)
                io_uring_unregister_eventfd(ring);
        if (pp.efd >= 0)
                close(pp.efd);
        if (pp.slots)
                for (unsigned i = 0; i < pp.nslots; i++)
                        free(pp.slots[i].out);
        free(pp.slots);
        free(ws);
        if (rc < 0) {
                free(out->index);
                out->index = NULL;
        }
        return rc;
}
