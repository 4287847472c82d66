/* The parallel chunk reader behind snap_load_ram() and snap_verify(): workers claim chunks in index
 * order, read each through their own io_uring with a second read in flight while they decode, and
 * record the lowest-numbered failure. Once anything fails no new chunk is claimed, but chunks
 * already claimed are finished, so a lower-numbered bad chunk still in flight is the one reported.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_internal.h"

#define DEPTH 2 /* reads per worker: one being decoded, one arriving */

struct pool {
        struct snap_file *f;
        int memfd; /* -1: verify only */
        atomic_uint_fast64_t next;
        atomic_bool failed;
        pthread_mutex_t lock;
        uint64_t bad; /* lowest failing chunk; UINT64_MAX while none */
        int rc;
        struct sprout_err err;
};

struct pworker {
        struct pool *p;
        pthread_t tid;
        struct io_uring ring;
        bool have_ring;
        ZSTD_DCtx *dctx;
        uint8_t *staging;
        uint8_t *buf[DEPTH];
        struct snap_io io[DEPTH];
        uint64_t chunk[DEPTH];
        uint64_t read_bytes;
        uint64_t written_bytes;
};

static bool claim(struct pool *p, uint64_t *c)
{
        if (atomic_load(&p->failed))
                return false;
        uint64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->f->hdr.nchunks)
                return false;
        *c = i;
        return true;
}

static void record(struct pool *p, uint64_t chunk, int rc, const struct sprout_err *e)
{
        pthread_mutex_lock(&p->lock);
        if (chunk < p->bad) {
                p->bad = chunk;
                p->rc = rc;
                p->err = *e;
        }
        pthread_mutex_unlock(&p->lock);
        atomic_store(&p->failed, true);
}

static void record_io(struct pool *p, uint64_t c, int rc)
{
        const struct snap_fmt_entry *e = snap_entry(p->f, c);
        struct sprout_err e2 = {0};
        if (rc == -ENODATA)
                sprout_err_set(&e2, -EIO,
                               "%s: chunk %llu: file ended while reading its %u bytes at offset "
                               "%llu (changed while open?)",
                               p->f->path, (unsigned long long)c, e->clen,
                               (unsigned long long)e->file_off);
        else
                sprout_err_errno(&e2, rc, "%s: chunk %llu: reading %u bytes at offset %llu",
                                 p->f->path, (unsigned long long)c, e->clen,
                                 (unsigned long long)e->file_off);
        record(p, c, e2.code, &e2);
}

static int start_read(struct pworker *w, unsigned s, uint64_t c)
{
        const struct snap_fmt_entry *e = snap_entry(w->p->f, c);
        w->chunk[s] = c;
        w->io[s] = (struct snap_io){
            .op = SNAP_IO_READ,
            .fd = w->p->f->fd,
            .buf = w->buf[s],
            .len = e->clen,
            .off = e->file_off,
            .cookie = s,
        };
        return snap_io_submit(&w->ring, &w->io[s]);
}

static void *pworker_main(void *arg)
{
        struct pworker *w = arg;
        struct pool *p = w->p;
        unsigned inflight = 0;
        uint64_t c;

        for (unsigned s = 0; s < DEPTH && claim(p, &c); s++) {
                int rc = start_read(w, s, c);
                if (rc < 0)
                        record_io(p, c, rc);
                else
                        inflight++;
        }
        while (inflight > 0) {
                struct io_uring_cqe *cqe;
                int rc = io_uring_wait_cqe(&w->ring, &cqe);
                if (rc == -EINTR)
                        continue;
                if (rc < 0) {
                        record_io(p, w->chunk[0], rc);
                        break; /* the ring is unusable; its teardown cancels what is left */
                }
                struct snap_io *io;
                rc = snap_io_reap(&w->ring, cqe, &io);
                unsigned s = (unsigned)io->cookie;
                if (rc == SNAP_IO_PARTIAL) {
                        rc = snap_io_submit(&w->ring, io);
                        if (rc == 0)
                                continue;
                }
                inflight--;
                if (rc < 0) {
                        record_io(p, w->chunk[s], rc);
                } else {
                        const struct snap_fmt_entry *e = snap_entry(p->f, w->chunk[s]);
                        struct sprout_err e2 = {0};
                        w->read_bytes += e->clen;
                        rc = snap_decode_chunk(p->f, w->chunk[s], w->buf[s], p->memfd, w->staging,
                                               w->dctx, &e2);
                        if (rc < 0)
                                record(p, w->chunk[s], rc, &e2);
                        else
                                w->written_bytes += (uint64_t)e->npages * SNAP_PAGE_SIZE;
                }
                if (claim(p, &c)) {
                        rc = start_read(w, s, c);
                        if (rc < 0)
                                record_io(p, c, rc);
                        else
                                inflight++;
                }
        }
        return NULL;
}

static void pworker_fini(struct pworker *w)
{
        if (w->have_ring)
                io_uring_queue_exit(&w->ring);
        ZSTD_freeDCtx(w->dctx);
        free(w->staging);
        for (unsigned s = 0; s < DEPTH; s++)
                free(w->buf[s]);
}

static int pworker_init(struct pworker *w, struct pool *p, struct sprout_err *err)
{
        w->p = p;
        int rc = io_uring_queue_init(2 * DEPTH, &w->ring, 0);
        if (rc < 0)
                return sprout_err_errno(err, rc, "io_uring_queue_init for reading %s", p->f->path);
        w->have_ring = true;
        w->dctx = ZSTD_createDCtx();
        w->staging = malloc(p->f->hdr.chunk_size);
        for (unsigned s = 0; s < DEPTH; s++)
                w->buf[s] = malloc(p->f->max_clen);
        if (!w->dctx || !w->staging || !w->buf[0] || !w->buf[1])
                return sprout_err_set(err, -ENOMEM, "out of memory for a chunk reader of %s",
                                      p->f->path);
        return 0;
}

int snap_pool_run(struct snap_file *f, unsigned threads, int memfd, struct snap_pool_result *res,
                  struct sprout_err *err)
{
        struct pool p = {
            .f = f,
            .memfd = memfd,
            .lock = PTHREAD_MUTEX_INITIALIZER,
            .bad = UINT64_MAX,
        };
        unsigned n = threads ? threads : snap_default_threads();
        if (n > SNAP_MAX_THREADS)
                n = SNAP_MAX_THREADS;
        if (n > f->hdr.nchunks)
                n = f->hdr.nchunks ? (unsigned)f->hdr.nchunks : 1;
        memset(res, 0, sizeof(*res));
        res->threads = n;
        if (f->hdr.nchunks == 0)
                return 0;

        unsigned started = 0, ready = 0;
        int rc = 0;
        struct pworker *ws = calloc(n, sizeof(*ws));
        if (!ws)
                return sprout_err_set(err, -ENOMEM, "out of memory for %u chunk readers", n);
        for (; ready < n; ready++) {
                rc = pworker_init(&ws[ready], &p, err);
                if (rc < 0) {
                        ready++; /* half-initialised: let pworker_fini release it */
                        goto out;
                }
        }
        for (; started < n; started++) {
                rc = -pthread_create(&ws[started].tid, NULL, pworker_main, &ws[started]);
                if (rc < 0) {
                        sprout_err_errno(err, rc, "cannot start chunk reader thread %u", started);
                        atomic_store(&p.failed, true);
                        break;
                }
        }
        for (unsigned i = 0; i < started; i++) {
                pthread_join(ws[i].tid, NULL);
                res->read_bytes += ws[i].read_bytes;
                res->written_bytes += ws[i].written_bytes;
        }
        if (rc == 0 && p.bad != UINT64_MAX)
                rc = sprout_err_set(err, p.rc, "%s", p.err.msg);
out:
        for (unsigned i = 0; i < ready; i++)
                pworker_fini(&ws[i]);
        free(ws);
        return rc;
}
