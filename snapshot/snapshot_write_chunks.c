/* The writer's chunk pipeline: workers compress chunks into a ring of slots while the caller writes
 * the frames through io_uring strictly in RAM order: a sorted index, contiguous frames. */
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
                int rc = snap_encode_chunk(&w->enc, (const uint8_t *)pp->o->ram + off, off, len,
                                           s->out, pp->out_cap, &s->enc, &s->err);

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

/* The calling thread's side of the pipeline: frames go out in RAM order from chunk `next`. */
struct writer {
        struct pipe *pp;
        const struct snap_wparams *p;
        struct io_uring *ring;
        int fd;
        const char *where;
        struct snap_chunks_out *out;
        uint64_t next;
        uint64_t file_off;
        unsigned inflight; /* writes submitted and not yet reaped */
};

/* Frame buffers for every slot, and the eventfd the writer waits on, registered with the ring. */
static int pipe_setup(struct pipe *pp, struct io_uring *ring, bool *registered,
                      struct sprout_err *err)
{
        for (unsigned i = 0; i < pp->nslots; i++) {
                pp->slots[i].turn = i;
                pp->slots[i].out = malloc(pp->out_cap);
                if (!pp->slots[i].out)
                        return sprout_err_set(err, -ENOMEM,
                                              "out of memory for %u frame buffers of %zu bytes",
                                              pp->nslots, pp->out_cap);
        }
        pp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pp->efd < 0)
                return sprout_err_errno(err, -errno, "eventfd for the snapshot writer");
        int rc = io_uring_register_eventfd(ring, pp->efd);
        if (rc < 0)
                return sprout_err_errno(err, rc, "io_uring_register_eventfd");
        *registered = true;
        return 0;
}

static void pipe_release(struct pipe *pp, struct io_uring *ring, bool registered)
{
        if (registered)
                io_uring_unregister_eventfd(ring);
        if (pp->efd >= 0)
                close(pp->efd);
        if (pp->slots)
                for (unsigned i = 0; i < pp->nslots; i++)
                        free(pp->slots[i].out);
        free(pp->slots);
}

static int start_workers(struct pipe *pp, struct worker *ws, unsigned nthreads,
                         const struct snap_wparams *p, unsigned *nstarted, struct sprout_err *err)
{
        for (unsigned i = 0; i < nthreads; i++) {
                ws[i].pp = pp;
                int rc = snap_encoder_init(&ws[i].enc, p->chunk_size, p->level, err);
                if (rc < 0)
                        return rc;
                ws[i].enc.key = pp->o->key;
                ws[i].enc.uuid = p->uuid;
                rc = -pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
                if (rc < 0) {
                        snap_encoder_fini(&ws[i].enc);
                        return sprout_err_errno(err, rc, "cannot start compression thread %u", i);
                }
                (*nstarted)++;
        }
        return 0;
}

static void stop_workers(struct pipe *pp, struct worker *ws, unsigned nstarted)
{
        pthread_mutex_lock(&pp->lock);
        pp->stop = true;
        pthread_cond_broadcast(&pp->cond);
        pthread_mutex_unlock(&pp->lock);
        for (unsigned i = 0; i < nstarted; i++) {
                pthread_join(ws[i].tid, NULL);
                snap_encoder_fini(&ws[i].enc);
        }
}

/* The kernel may still read frame buffers for writes in flight: wait them out before freeing. */
static void wait_inflight(struct io_uring *ring, unsigned *inflight)
{
        while (*inflight > 0) {
                struct io_uring_cqe *cqe;
                int r = io_uring_wait_cqe(ring, &cqe);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        break; /* the ring is unusable; its teardown cancels what is left */
                io_uring_cqe_seen(ring, cqe);
                (*inflight)--;
        }
}

/* Completed writes free their slots for the workers; a short write is resubmitted. */
static int reap_writes(struct writer *w, bool *progressed, struct sprout_err *err)
{
        struct io_uring_cqe *cqe;
        while (io_uring_peek_cqe(w->ring, &cqe) == 0) {
                struct snap_io *io;
                int r = snap_io_reap(w->ring, cqe, &io);
                struct slot *s = &w->pp->slots[io->cookie];
                if (r == SNAP_IO_PARTIAL) {
                        r = snap_io_submit(w->ring, io);
                        if (r == 0)
                                continue;
                }
                w->inflight--;
                if (r < 0)
                        return sprout_err_errno(err, r,
                                                "writing the frame of RAM chunk 0x%llx (%llu "
                                                "bytes at file offset %llu) to %s",
                                                (unsigned long long)(s->turn * w->pp->chunk_size),
                                                (unsigned long long)io->len,
                                                (unsigned long long)io->off, w->where);
                slot_set(w->pp, s, SLOT_FREE);
                *progressed = true;
        }
        return 0;
}

/* Indexes the slot's frame at the next file offset and queues its write. */
static int write_frame(struct writer *w, struct slot *s, struct sprout_err *err)
{
        struct pipe *pp = w->pp;
        add_entry(w->out->index, w->out->nchunks, w->p->entry_size, w->next * pp->chunk_size,
                  w->file_off, &s->enc);
        if (w->out->auth)
                memcpy(w->out->auth + SNAP_AUTH_FIXED + w->out->nchunks * SNAP_TAG_BYTES,
                       s->enc.tag, SNAP_TAG_BYTES);
        w->out->nchunks++;
        w->out->nonzero_pages += s->enc.npages;
        s->io = (struct snap_io){
            .op = SNAP_IO_WRITE,
            .fd = w->fd,
            .buf = s->out,
            .len = s->enc.clen,
            .off = w->file_off,
            .cookie = w->next % pp->nslots,
        };
        slot_set(pp, s, SLOT_WRITING);
        int r = snap_io_submit(w->ring, &s->io);
        if (r < 0)
                return sprout_err_errno(err, r, "io_uring submit of a %u-byte write to %s",
                                        s->enc.clen, w->where);
        w->inflight++;
        w->file_off += s->enc.clen;
        return 0;
}

/* Tells the caller how far the write is; it may cancel. */
static int report_progress(const struct snap_write_opts *o, uint64_t next, uint32_t chunk_size,
                           struct sprout_err *err)
{
        if (!o->progress)
                return 0;
        uint64_t done = next * chunk_size;
        if (done > o->ram_size)
                done = o->ram_size;
        if (o->progress(o->progress_ctx, done, o->ram_size))
                return sprout_err_set(err, -ECANCELED,
                                      "snapshot write cancelled by the caller after %llu of %llu "
                                      "RAM bytes",
                                      (unsigned long long)done, (unsigned long long)o->ram_size);
        return 0;
}

/* Takes the compressed chunks that are next in RAM order: all-zero ones only free their slot. */
static int write_done_slots(struct writer *w, bool *progressed, struct sprout_err *err)
{
        struct pipe *pp = w->pp;
        while (w->next < pp->total) {
                struct slot *s = &pp->slots[w->next % pp->nslots];
                if (slot_state(pp, s) != SLOT_DONE)
                        break;
                if (s->rc < 0)
                        return sprout_err_set(err, s->rc, "RAM chunk 0x%llx: %s",
                                              (unsigned long long)(w->next * pp->chunk_size),
                                              s->err.msg);
                if (s->enc.npages == 0) {
                        slot_set(pp, s, SLOT_FREE);
                } else {
                        int r = write_frame(w, s, err);
                        if (r < 0)
                                return r;
                }
                w->next++;
                *progressed = true;
                int r = report_progress(pp->o, w->next, pp->chunk_size, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The writer's loop: until every chunk is taken and every write has completed. */
static int write_all(struct writer *w, struct sprout_err *err)
{
        while (w->next < w->pp->total || w->inflight > 0) {
                bool progressed = false;
                int rc = reap_writes(w, &progressed, err);
                if (rc == 0)
                        rc = write_done_slots(w, &progressed, err);
                if (rc < 0)
                        return rc;
                if (!progressed)
                        wait_event(w->pp->efd);
        }
        w->out->end_off = w->file_off;
        return 0;
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
        struct writer w = {
            .pp = &pp,
            .p = p,
            .ring = ring,
            .fd = fd,
            .where = where,
            .out = out,
            .file_off = data_off,
        };
        struct worker *ws = NULL;
        unsigned nstarted = 0;
        bool registered = false;
        int rc;

        memset(out, 0, sizeof(*out));
        out->index = calloc(pp.total, p->entry_size);
        /* The authenticator area is written from this buffer: room for both fixed tags first. */
        if (o->key)
                out->auth = calloc(1, SNAP_AUTH_FIXED + pp.total * SNAP_TAG_BYTES);
        pp.slots = calloc(pp.nslots, sizeof(*pp.slots));
        ws = calloc(nthreads, sizeof(*ws));
        if (!out->index || (o->key && !out->auth) || !pp.slots || !ws) {
                rc = sprout_err_set(err, -ENOMEM, "out of memory for a %llu-chunk index",
                                    (unsigned long long)pp.total);
                goto out;
        }
        rc = pipe_setup(&pp, ring, &registered, err);
        if (rc < 0)
                goto out;
        rc = start_workers(&pp, ws, nthreads, p, &nstarted, err);
        if (rc == 0)
                rc = write_all(&w, err);
        stop_workers(&pp, ws, nstarted);
        wait_inflight(ring, &w.inflight);
out:
        pipe_release(&pp, ring, registered);
        free(ws);
        if (rc < 0) {
                free(out->index);
                free(out->auth);
                out->index = NULL;
                out->auth = NULL;
        }
        return rc;
}
