/* snap_import(): an authenticated copy of a snapshot this process did not write. One pass in index
 * order: each frame is read into memory, checked and decompressed there, tagged, and those same
 * bytes written out, so what is copied is exactly what was checked. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_internal.h"

#define ULL(x) ((unsigned long long)(x))

struct import {
        struct snap_file *f;
        const struct snap_key *key;
        struct snap_fmt_header hdr; /* the copy's */
        struct snap_tmp tmp;
        struct io_uring ring;
        char where[PATH_MAX + 320];
        uint8_t *auth, *frame, *staging;
        ZSTD_DCtx *dctx;
};

static int put(struct import *im, const void *buf, uint64_t len, uint64_t off, const char *what,
               struct sprout_err *err)
{
        struct snap_io io = {
            .op = SNAP_IO_WRITE, .fd = im->tmp.fd, .buf = (uint8_t *)buf, .len = len, .off = off};
        int rc = snap_io_run(&im->ring, &io);
        if (rc < 0)
                return sprout_err_errno(err, rc, "writing the %s (%llu bytes at offset %llu) to %s",
                                        what, ULL(len), ULL(off), im->where);
        return 0;
}

static int copy_chunk(struct import *im, uint64_t i, struct sprout_err *err)
{
        struct snap_file *f = im->f;
        const struct snap_fmt_entry *e = snap_entry(f, i);
        struct snap_io io = {
            .op = SNAP_IO_READ, .fd = f->fd, .buf = im->frame, .len = e->clen, .off = e->file_off};
        int rc = snap_io_run(&im->ring, &io);
        if (rc == -ENODATA)
                return sprout_err_set(err, -EIO,
                                      "%s: chunk %llu: file ended while reading its %u bytes at "
                                      "offset %llu (changed while open?)",
                                      f->path, ULL(i), e->clen, ULL(e->file_off));
        if (rc < 0)
                return sprout_err_errno(err, rc, "%s: chunk %llu: reading %u bytes at offset %llu",
                                        f->path, ULL(i), e->clen, ULL(e->file_off));
        rc = snap_decode_chunk(f, i, im->frame, -1, im->staging, im->dctx, err);
        if (rc < 0)
                return rc;
        snapfmt_chunk_tag(im->key, im->hdr.uuid, e->ram_off, im->frame, e->clen,
                          im->auth + SNAP_AUTH_FIXED + i * SNAP_TAG_BYTES);
        return put(im, im->frame, e->clen, e->file_off, "chunk frame", err);
}

static int run(struct import *im, const char *path, struct sprout_err *err)
{
        struct snap_file *f = im->f;
        struct snap_fmt_header *h = &im->hdr;
        int rc = snap_tmp_create(&im->tmp, path, err);
        if (rc < 0)
                return rc;
        snprintf(im->where, sizeof(im->where), "%s/%s", im->tmp.dir, im->tmp.tmp);
        rc = put(im, f->sections_area, h->sections_len, h->sections_off, "sections area", err);
        for (uint64_t i = 0; rc == 0 && i < h->nchunks; i++)
                rc = copy_chunk(im, i, err);
        if (rc == 0)
                rc = put(im, f->index, h->index_len, h->index_off, "chunk index", err);
        if (rc < 0)
                return rc;
        snap_seal(im->key, h, f->sections_area, f->index, im->auth);
        h->header_checksum = snapfmt_header_hash(h, f->sections_area, h->sections_len);
        rc = put(im, im->auth, snapfmt_auth_len(h), h->index_off + h->index_len, "authenticator",
                 err);
        if (rc == 0)
                rc = put(im, h, sizeof(*h), 0, "header", err);
        if (rc < 0)
                return rc;
        struct snap_io io = {.op = SNAP_IO_FSYNC, .fd = im->tmp.fd};
        rc = snap_io_run(&im->ring, &io);
        if (rc < 0)
                return sprout_err_errno(err, rc, "fsync of %s", im->where);
        return snap_tmp_commit(&im->tmp, err);
}

int snap_import(struct snap_file *f, const struct snap_key *key, const char *path,
                struct snap_write_stats *st, struct sprout_err *err)
{
        double t0 = snap_now();
        struct import im = {.f = f, .key = key, .hdr = f->hdr, .tmp = {.dirfd = -1, .fd = -1}};
        int rc;

        if (!key || !path || !*path)
                return sprout_err_set(err, -EINVAL, "snapshot import: no key or no path given");
        rc = snap_crypto_init(err);
        if (rc < 0)
                return rc;
        /* Everything of the header stays (UUID, creation time, host facts, layout) but the
         * authenticator, which is this key's; what an older one said is dropped. */
        struct snap_fmt_header *h = &im.hdr;
        h->minor = 1;
        h->flags |= SNAP_FLAG_AUTH;
        snapfmt_key_id(key, h->key_id);
        memset(h->auth_tag, 0, sizeof(h->auth_tag));
        im.auth = calloc(1, snapfmt_auth_len(h));
        im.frame = malloc(f->max_clen ? f->max_clen : 1);
        im.staging = malloc(h->chunk_size);
        im.dctx = ZSTD_createDCtx();
        if (!im.auth || !im.frame || !im.staging || !im.dctx) {
                rc = sprout_err_set(err, -ENOMEM, "out of memory importing %s", f->path);
                goto out;
        }
        rc = io_uring_queue_init(4, &im.ring, 0);
        if (rc < 0) {
                sprout_err_errno(err, rc, "io_uring_queue_init for importing %s", f->path);
                goto out;
        }
        rc = run(&im, path, err);
        io_uring_queue_exit(&im.ring);
        if (rc == 0 && st) {
                st->file_size = h->index_off + h->index_len + snapfmt_auth_len(h);
                st->ram_size = h->ram_size;
                st->nonzero_bytes = h->nonzero_pages * SNAP_PAGE_SIZE;
                st->chunks = h->nchunks;
                st->seconds = snap_now() - t0;
        }
out:
        snap_tmp_release(&im.tmp);
        ZSTD_freeDCtx(im.dctx);
        free(im.staging);
        free(im.frame);
        free(im.auth);
        return rc;
}
