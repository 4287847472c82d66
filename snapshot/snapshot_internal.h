/* Declarations shared by the files of snapshot/: the open-file object, the io_uring helpers, chunk
 * encoding and decoding, the parallel chunk reader and the header/section/index validators. */
#ifndef SPROUT_SNAPSHOT_INTERNAL_H
#define SPROUT_SNAPSHOT_INTERNAL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <zstd.h>

#include "snapshot_format.h"
#include "sprout/err.h"
#include "sprout/snapshot.h"

struct snap_file {
        int fd;
        char *path;
        struct snap_fmt_header hdr;
        struct snap_info info;
        uint8_t *sections_area; /* hdr.sections_len bytes; section data points into it */
        struct snap_section *secs;
        uint8_t *index;    /* hdr.index_len bytes, validated */
        uint32_t max_clen; /* largest frame: sizes the read buffers */
        /* Opened with a key: the authenticator area (sections tag, index tag, chunk tags) passed
         * its checks at open, and every chunk's tag is checked before the chunk is decoded. */
        bool keyed;
        struct snap_key key;
        uint8_t *auth; /* snapfmt_auth_len bytes when keyed, else NULL */
};

static inline const uint8_t *snap_chunk_tag(const struct snap_file *f, uint64_t i)
{
        return f->auth + SNAP_AUTH_FIXED + i * SNAP_TAG_BYTES;
}

static inline const struct snap_fmt_entry *snap_entry(const struct snap_file *f, uint64_t i)
{
        return (const struct snap_fmt_entry *)(f->index + i * f->hdr.index_entry_size);
}

double snap_now(void); /* CLOCK_MONOTONIC seconds */
unsigned snap_default_threads(void);

/* ---- io_uring: one positional read or write, resumed after short transfers ---- */

enum snap_io_op { SNAP_IO_READ, SNAP_IO_WRITE, SNAP_IO_FSYNC };

struct snap_io {
        enum snap_io_op op;
        int fd;
        uint8_t *buf;
        uint64_t len;
        uint64_t off;
        uint64_t done;   /* bytes transferred so far */
        uint64_t cookie; /* the owner's (a slot number) */
};

/* Queue the untransferred rest of io and submit it. */
int snap_io_submit(struct io_uring *ring, struct snap_io *io);

#define SNAP_IO_DONE    1
#define SNAP_IO_PARTIAL 0
/* Account one completion (and mark it seen). *io is set to the request it belongs to. Returns
 * SNAP_IO_DONE, SNAP_IO_PARTIAL (the caller resubmits), or -errno; -ENODATA for end of file on a
 * read. */
int snap_io_reap(struct io_uring *ring, struct io_uring_cqe *cqe, struct snap_io **io);
/* Submit io and wait until all of it is transferred; the ring must have nothing else in flight. */
int snap_io_run(struct io_uring *ring, struct snap_io *io);

/* ---- chunk encoding (writer) ---- */

struct snap_encoder {
        ZSTD_CCtx *cctx;
        uint8_t *staging; /* chunk_size bytes: the non-zero pages packed together */
        uint32_t chunk_size;
        const struct snap_key *key; /* NULL: no chunk tags */
        const uint8_t *uuid;        /* the file's, for the chunk tags */
};

struct snap_encoded {
        uint32_t npages; /* 0: the chunk is all zero and has no frame */
        uint32_t clen;
        uint64_t hash;
        uint8_t tag[SNAP_TAG_BYTES]; /* with a key */
        uint8_t bitmap[SNAP_PAGES_MAX / 8];
};

int snap_encoder_init(struct snap_encoder *e, uint32_t chunk_size, int level,
                      struct sprout_err *err);
void snap_encoder_fini(struct snap_encoder *e);
/* Encode len bytes of RAM at RAM offset ram_off (a multiple of the page size, at most chunk_size)
 * into a frame in out; with a key, tag it. */
int snap_encode_chunk(struct snap_encoder *e, const uint8_t *ram, uint64_t ram_off, uint32_t len,
                      uint8_t *out, size_t out_cap, struct snap_encoded *res,
                      struct sprout_err *err);

/* ---- chunk pipeline (writer) ---- */

struct snap_wparams {
        uint32_t chunk_size;
        int level;
        unsigned threads;
        uint32_t entry_size;
        uint8_t uuid[16];
};

struct snap_chunks_out {
        uint8_t *index; /* nchunks entries of entry_size bytes; the caller frees it */
        /* With a key, the authenticator area: room for the sections and index tags (the caller's
         * to fill), then the chunk tags in index order. The caller frees it. */
        uint8_t *auth;
        uint64_t nchunks;
        uint64_t nonzero_pages;
        uint64_t end_off; /* file offset after the last frame */
};

/* Compress o->ram on p->threads workers and write the frames in RAM order from file offset data_off
 * through ring (which must be idle). where names the file for messages. */
int snap_write_chunks(const struct snap_write_opts *o, const struct snap_wparams *p,
                      struct io_uring *ring, int fd, uint64_t data_off, const char *where,
                      struct snap_chunks_out *out, struct sprout_err *err);

/* With a key: fills the sections and index tags of auth (the authenticator area; its chunk tags
 * are in place), then h->auth_tag. h has everything else, the key id and SNAP_FLAG_AUTH included.
 */
void snap_seal(const struct snap_key *key, struct snap_fmt_header *h, const uint8_t *sections,
               const uint8_t *index, uint8_t *auth);

/* ---- temporary file, renamed into place on commit ---- */

struct snap_tmp {
        int dirfd;
        int fd;
        char *dir;     /* for messages */
        char *base;    /* final name inside dir */
        char tmp[300]; /* temporary name inside dir */
        bool linked;   /* tmp exists in dir and must be removed on failure */
};

int snap_tmp_create(struct snap_tmp *t, const char *path, struct sprout_err *err);
/* Rename tmp to base and fsync the directory; the caller has fsynced the file. */
int snap_tmp_commit(struct snap_tmp *t, struct sprout_err *err);
/* Close everything; unlink tmp unless committed. Safe after any return of snap_tmp_create. */
void snap_tmp_release(struct snap_tmp *t);

/* ---- reading side ---- */

int snapv_header_early(const struct snap_fmt_header *h, uint64_t file_size, const char *path,
                       struct sprout_err *err);
int snapv_header(const struct snap_fmt_header *h, uint64_t file_size, const char *path,
                 struct sprout_err *err);
int snapv_sections(const struct snap_fmt_header *h, const uint8_t *area, struct snap_section *out,
                   const char *path, struct sprout_err *err);
int snapv_index(const struct snap_fmt_header *h, const uint8_t *index, uint32_t *max_clen,
                uint64_t *compressed, const char *path, struct sprout_err *err);

/* sodium_init, before any tag is computed. */
int snap_crypto_init(struct sprout_err *err);

/* The authenticator's checks at open, on the header, sections and index already read and bounded.
 */
int snapv_auth(struct snap_file *f, struct sprout_err *err);

/* Check one frame against its index entry (its tag first when f is keyed) and decompress it into
 * staging (chunk_size bytes); then, unless memfd is -1 (verify only), write its pages into memfd at
 * their RAM offsets. */
int snap_decode_chunk(const struct snap_file *f, uint64_t i, const uint8_t *frame, int memfd,
                      uint8_t *staging, ZSTD_DCtx *dctx, struct sprout_err *err);

struct snap_pool_result {
        uint64_t read_bytes;
        uint64_t written_bytes;
        unsigned threads;
};

/* Read and decode every chunk on threads workers (0: one per online CPU), each with its own
 * io_uring. On failure err describes the lowest-numbered bad chunk. */
int snap_pool_run(struct snap_file *f, unsigned threads, int memfd, struct snap_pool_result *res,
                  struct sprout_err *err);

#endif
