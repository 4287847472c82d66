/* snap_write(): check the options, write sections, RAM chunks, index and finally the header to a
 * temporary file through io_uring, fsync it and rename it into place. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "snapshot_internal.h"

static int check_opts(const struct snap_write_opts *o, struct snap_wparams *p,
                      struct sprout_err *err)
{
        if (!o->path || !*o->path)
                return sprout_err_set(err, -EINVAL, "snapshot write: no path given");
        p->chunk_size = o->chunk_size ? o->chunk_size : SNAP_DEFAULT_CHUNK;
        if (p->chunk_size < SNAP_MIN_CHUNK || p->chunk_size > SNAP_MAX_CHUNK ||
            (p->chunk_size & (p->chunk_size - 1)))
                return sprout_err_set(
                    err, -EINVAL, "snapshot write: chunk_size %u is not a power of two in [%u, %u]",
                    p->chunk_size, SNAP_MIN_CHUNK, SNAP_MAX_CHUNK);
        p->entry_size = snapfmt_entry_size(p->chunk_size);
        p->level = o->zstd_level ? o->zstd_level : SNAP_DEFAULT_ZSTD_LEVEL;
        if (p->level < ZSTD_minCLevel() || p->level > ZSTD_maxCLevel())
                return sprout_err_set(err, -EINVAL,
                                      "snapshot write: zstd_level %d is outside zstd's [%d, %d]",
                                      p->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
        if (o->uuid)
                memcpy(p->uuid, o->uuid, sizeof(p->uuid));
        else
                uuid_generate(p->uuid); /* now, not with the header: the chunk tags take it */
        p->threads = o->threads ? o->threads : snap_default_threads();
        if (p->threads > SNAP_MAX_THREADS)
                return sprout_err_set(err, -EINVAL,
                                      "snapshot write: %u threads exceeds the cap of %u",
                                      p->threads, SNAP_MAX_THREADS);
        if (o->ram_size == 0 || o->ram_size > SNAP_MAX_RAM || o->ram_size % SNAP_PAGE_SIZE)
                return sprout_err_set(
                    err, -EINVAL,
                    "snapshot write: ram_size %llu is not a multiple of %u in (0, %llu]",
                    (unsigned long long)o->ram_size, SNAP_PAGE_SIZE, SNAP_MAX_RAM);
        if (!o->ram)
                return sprout_err_set(err, -EINVAL, "snapshot write: ram is NULL");
        if (o->vcpus == 0 || o->vcpus > SNAP_MAX_VCPUS)
                return sprout_err_set(err, -EINVAL, "snapshot write: vcpus %u is outside [1, %u]",
                                      o->vcpus, SNAP_MAX_VCPUS);
        if (!memchr(o->host.cpu_vendor, '\0', sizeof(o->host.cpu_vendor)))
                return sprout_err_set(
                    err, -EINVAL,
                    "snapshot write: host.cpu_vendor is not NUL-terminated within %zu bytes",
                    sizeof(o->host.cpu_vendor));
        if (o->nsections > SNAP_MAX_SECTIONS)
                return sprout_err_set(err, -EINVAL,
                                      "snapshot write: %u sections exceeds the cap of %u",
                                      o->nsections, SNAP_MAX_SECTIONS);
        if (o->nsections && !o->sections)
                return sprout_err_set(err, -EINVAL, "snapshot write: sections is NULL");
        uint64_t total = 0;
        for (unsigned i = 0; i < o->nsections; i++) {
                const struct snap_section *s = &o->sections[i];
                if (s->len > SNAP_MAX_SECTION_LEN)
                        return sprout_err_set(err, -EINVAL,
                                              "snapshot write: section %u (tag 0x%x) is %llu "
                                              "bytes, over the cap of %llu",
                                              i, s->tag, (unsigned long long)s->len,
                                              SNAP_MAX_SECTION_LEN);
                if (s->len && !s->data)
                        return sprout_err_set(err, -EINVAL,
                                              "snapshot write: section %u (tag 0x%x) has no data",
                                              i, s->tag);
                total += SNAP_SEC_PREFIX + snapfmt_align(s->len);
        }
        if (total > SNAP_MAX_SECTIONS_BYTES)
                return sprout_err_set(
                    err, -EINVAL, "snapshot write: sections take %llu bytes, over the cap of %llu",
                    (unsigned long long)total, SNAP_MAX_SECTIONS_BYTES);
        return 0;
}

/* The sections area as it goes on disk; calloc gives the zero padding. */
static uint8_t *build_sections(const struct snap_write_opts *o, uint64_t *len)
{
        uint64_t n = 0;
        for (unsigned i = 0; i < o->nsections; i++)
                n += SNAP_SEC_PREFIX + snapfmt_align(o->sections[i].len);
        uint8_t *buf = calloc(1, n ? n : 1);
        if (!buf)
                return NULL;
        uint64_t off = 0;
        for (unsigned i = 0; i < o->nsections; i++) {
                const struct snap_section *s = &o->sections[i];
                struct snap_fmt_section pre = {.tag = s->tag, .flags = s->flags, .len = s->len};
                memcpy(buf + off, &pre, sizeof(pre));
                if (s->len)
                        memcpy(buf + off + SNAP_SEC_PREFIX, s->data, s->len);
                off += SNAP_SEC_PREFIX + snapfmt_align(s->len);
        }
        *len = n;
        return buf;
}

static void fill_header(struct snap_fmt_header *h, const struct snap_write_opts *o,
                        const struct snap_wparams *p, uint64_t sections_len,
                        const struct snap_chunks_out *c)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        memset(h, 0, sizeof(*h));
        memcpy(h->magic, SNAP_MAGIC, SNAP_MAGIC_LEN);
        h->major = SNAP_FORMAT_MAJOR;
        /* 1.1 only for what 1.1 adds: a file without an authenticator stays readable by 1.0. */
        h->minor = o->key ? 1 : 0;
        h->header_size = SNAP_HEADER_SIZE;
        memcpy(h->uuid, p->uuid, sizeof(h->uuid));
        h->created_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        h->host_kind = o->host.host_kind;
        /* Copy only up to the NUL so stray bytes after it never reach the disk. */
        memcpy(h->cpu_vendor, o->host.cpu_vendor,
               strnlen(o->host.cpu_vendor, sizeof(h->cpu_vendor)));
        h->cpu_family = o->host.family;
        h->cpu_model = o->host.model;
        h->cpu_stepping = o->host.stepping;
        h->kvm_api = o->host.kvm_api;
        h->vcpus = o->vcpus;
        h->ram_size = o->ram_size;
        h->chunk_size = p->chunk_size;
        h->nsections = o->nsections;
        h->sections_off = SNAP_HEADER_SIZE;
        h->sections_len = sections_len;
        h->nchunks = c->nchunks;
        h->index_off = c->end_off;
        h->index_len = c->nchunks * p->entry_size;
        h->index_entry_size = p->entry_size;
        h->nonzero_pages = c->nonzero_pages;
        if (o->key) {
                h->flags |= SNAP_FLAG_AUTH;
                snapfmt_key_id(o->key, h->key_id);
        }
}

/* The sections and index tags into the authenticator area, then the header tag. */
void snap_seal(const struct snap_key *key, struct snap_fmt_header *h, const uint8_t *sections,
               const uint8_t *index, uint8_t *auth)
{
        snapfmt_sections_tag(key, h->uuid, sections, h->sections_len, auth);
        snapfmt_index_tag(key, h, index, auth + SNAP_AUTH_FIXED, auth + SNAP_TAG_BYTES);
        snapfmt_header_tag(key, h, auth, h->auth_tag);
}

int snap_write(const struct snap_write_opts *o, struct snap_write_stats *st, struct sprout_err *err)
{
        double t0 = snap_now();
        struct snap_wparams p;
        struct snap_tmp tmp;
        struct io_uring ring;
        struct snap_chunks_out chunks = {0};
        struct snap_fmt_header hdr;
        char where[PATH_MAX + 320];
        uint8_t *sections = NULL;
        uint64_t sections_len = 0;
        bool have_ring = false;
        int rc;

        if (!o)
                return sprout_err_set(err, -EINVAL, "snapshot write: no options");
        rc = check_opts(o, &p, err);
        if (rc == 0 && o->key)
                rc = snap_crypto_init(err);
        if (rc < 0)
                return rc;
        sections = build_sections(o, &sections_len);
        if (!sections)
                return sprout_err_set(err, -ENOMEM, "out of memory for the sections area");

        rc = snap_tmp_create(&tmp, o->path, err);
        if (rc < 0)
                goto out;
        snprintf(where, sizeof(where), "%s/%s", tmp.dir, tmp.tmp);
        /* Enough entries for one write per slot of the chunk pipeline (threads + 2). */
        rc = io_uring_queue_init(p.threads + 4, &ring, 0);
        if (rc < 0) {
                sprout_err_errno(err, rc, "io_uring_queue_init for writing %s", o->path);
                goto out;
        }
        have_ring = true;

        struct snap_io io = {.op = SNAP_IO_WRITE,
                             .fd = tmp.fd,
                             .buf = sections,
                             .len = sections_len,
                             .off = SNAP_HEADER_SIZE};
        rc = snap_io_run(&ring, &io);
        if (rc < 0) {
                sprout_err_errno(err, rc, "writing the %llu-byte sections area to %s",
                                 (unsigned long long)sections_len, where);
                goto out;
        }
        rc = snap_write_chunks(o, &p, &ring, tmp.fd, SNAP_HEADER_SIZE + sections_len, where,
                               &chunks, err);
        if (rc < 0)
                goto out;

        fill_header(&hdr, o, &p, sections_len, &chunks);
        hdr.index_checksum = snapfmt_hash(chunks.index, hdr.index_len);
        if (o->key)
                snap_seal(o->key, &hdr, sections, chunks.index, chunks.auth);
        hdr.header_checksum = snapfmt_header_hash(&hdr, sections, sections_len);

        io = (struct snap_io){.op = SNAP_IO_WRITE,
                              .fd = tmp.fd,
                              .buf = chunks.index,
                              .len = hdr.index_len,
                              .off = hdr.index_off};
        rc = snap_io_run(&ring, &io);
        if (rc < 0) {
                sprout_err_errno(err, rc, "writing the %llu-byte chunk index at offset %llu to %s",
                                 (unsigned long long)hdr.index_len,
                                 (unsigned long long)hdr.index_off, where);
                goto out;
        }
        if (o->key) {
                uint64_t alen = snapfmt_auth_len(&hdr);
                io = (struct snap_io){.op = SNAP_IO_WRITE,
                                      .fd = tmp.fd,
                                      .buf = chunks.auth,
                                      .len = alen,
                                      .off = hdr.index_off + hdr.index_len};
                rc = snap_io_run(&ring, &io);
                if (rc < 0) {
                        sprout_err_errno(err, rc, "writing the %llu-byte authenticator to %s",
                                         (unsigned long long)alen, where);
                        goto out;
                }
        }
        /* The header goes last: until it is in place the file has no valid magic. */
        io = (struct snap_io){.op = SNAP_IO_WRITE,
                              .fd = tmp.fd,
                              .buf = (uint8_t *)&hdr,
                              .len = sizeof(hdr),
                              .off = 0};
        rc = snap_io_run(&ring, &io);
        if (rc < 0) {
                sprout_err_errno(err, rc, "writing the header to %s", where);
                goto out;
        }
        io = (struct snap_io){.op = SNAP_IO_FSYNC, .fd = tmp.fd};
        rc = snap_io_run(&ring, &io);
        if (rc < 0) {
                sprout_err_errno(err, rc, "fsync of %s", where);
                goto out;
        }
        rc = snap_tmp_commit(&tmp, err);
        if (rc < 0)
                goto out;

        if (st) {
                st->file_size = hdr.index_off + hdr.index_len + snapfmt_auth_len(&hdr);
                st->ram_size = o->ram_size;
                st->nonzero_bytes = chunks.nonzero_pages * SNAP_PAGE_SIZE;
                st->chunks = chunks.nchunks;
                st->seconds = snap_now() - t0;
        }
out:
        if (have_ring)
                io_uring_queue_exit(&ring);
        snap_tmp_release(&tmp);
        free(chunks.index);
        free(chunks.auth);
        free(sections);
        return rc;
}
