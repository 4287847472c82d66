/* snap_open(): read and validate the header, the sections area and the chunk index of an untrusted
 * file, checking each size against the file and the caps before it sizes any allocation; with a
 * key, authenticate them before they are parsed. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_internal.h"

static int pread_full(struct snap_file *f, void *buf, uint64_t len, uint64_t off, const char *what,
                      struct sprout_err *err)
{
        uint8_t *p = buf;
        uint64_t done = 0;
        while (done < len) {
                ssize_t n = pread(f->fd, p + done, len - done, (off_t)(off + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return sprout_err_errno(
                            err, -errno, "%s: reading the %s (%llu bytes at offset %llu)", f->path,
                            what, (unsigned long long)len, (unsigned long long)off);
                if (n == 0)
                        return sprout_err_set(err, -EIO,
                                              "%s: file ended at offset %llu while reading the %s "
                                              "(changed while open?)",
                                              f->path, (unsigned long long)(off + done), what);
                done += (uint64_t)n;
        }
        return 0;
}

int snap_open(const char *path, struct snap_file **out, struct sprout_err *err)
{
        return snap_open_keyed(path, NULL, out, err);
}

int snap_open_keyed(const char *path, const struct snap_key *key, struct snap_file **out,
                    struct sprout_err *err)
{
        struct snap_fmt_header *h;
        struct stat sb;
        int rc;

        *out = NULL;
        struct snap_file *f = calloc(1, sizeof(*f));
        if (!f)
                return sprout_err_set(err, -ENOMEM, "out of memory opening %s", path);
        f->fd = -1;
        h = &f->hdr;
        if (key) {
                f->keyed = true;
                f->key = *key;
        }
        f->path = strdup(path);
        if (!f->path) {
                rc = sprout_err_set(err, -ENOMEM, "out of memory opening %s", path);
                goto fail;
        }
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0) {
                rc = sprout_err_errno(err, -errno, "%s: cannot open snapshot", path);
                goto fail;
        }
        if (fstat(f->fd, &sb) < 0) {
                rc = sprout_err_errno(err, -errno, "%s: fstat", path);
                goto fail;
        }
        if (!S_ISREG(sb.st_mode)) {
                rc = sprout_err_set(err, -EINVAL, "%s: not a regular file", path);
                goto fail;
        }
        uint64_t size = (uint64_t)sb.st_size;
        if (size < SNAP_HEADER_SIZE) {
                rc = sprout_err_set(
                    err, -EINVAL,
                    "%s: file is %llu bytes, shorter than the %u-byte header (truncated?)", path,
                    (unsigned long long)size, SNAP_HEADER_SIZE);
                goto fail;
        }
        rc = pread_full(f, h, sizeof(*h), 0, "header", err);
        if (rc < 0)
                goto fail;
        rc = snapv_header_early(h, size, path, err);
        if (rc < 0)
                goto fail;

        f->sections_area = malloc(h->sections_len ? h->sections_len : 1);
        if (!f->sections_area) {
                rc = sprout_err_set(err, -ENOMEM, "%s: out of memory for a %llu-byte sections area",
                                    path, (unsigned long long)h->sections_len);
                goto fail;
        }
        rc =
            pread_full(f, f->sections_area, h->sections_len, h->sections_off, "sections area", err);
        if (rc < 0)
                goto fail;
        uint64_t sum = snapfmt_header_hash(h, f->sections_area, h->sections_len);
        if (sum != h->header_checksum) {
                rc = sprout_err_set(
                    err, -EBADMSG,
                    "%s: header+sections checksum mismatch: header_checksum (offset 160) is "
                    "0x%016llx, the header and %llu bytes of sections hash to 0x%016llx",
                    path, (unsigned long long)h->header_checksum,
                    (unsigned long long)h->sections_len, (unsigned long long)sum);
                goto fail;
        }
        rc = snapv_header(h, size, path, err);
        if (rc < 0)
                goto fail;

        f->secs = calloc(h->nsections ? h->nsections : 1, sizeof(*f->secs));
        if (!f->secs) {
                rc = sprout_err_set(err, -ENOMEM, "%s: out of memory for %u sections", path,
                                    h->nsections);
                goto fail;
        }

        /* Bounded by snapv_header: at most 2^20 entries of at most 2080 bytes. */
        f->index = malloc(h->index_len ? h->index_len : 1);
        if (!f->index) {
                rc = sprout_err_set(err, -ENOMEM, "%s: out of memory for a %llu-byte chunk index",
                                    path, (unsigned long long)h->index_len);
                goto fail;
        }
        rc = pread_full(f, f->index, h->index_len, h->index_off, "chunk index", err);
        if (rc < 0)
                goto fail;
        sum = snapfmt_hash(f->index, h->index_len);
        if (sum != h->index_checksum) {
                rc = sprout_err_set(
                    err, -EBADMSG,
                    "%s: chunk index checksum mismatch: index_checksum (offset 152) is 0x%016llx, "
                    "the %llu-byte index at offset %llu hashes to 0x%016llx",
                    path, (unsigned long long)h->index_checksum, (unsigned long long)h->index_len,
                    (unsigned long long)h->index_off, (unsigned long long)sum);
                goto fail;
        }
        if (f->keyed) {
                /* Bounded by snapv_header too: at most 64 + 2^20 tags of 32 bytes. */
                uint64_t alen = snapfmt_auth_len(h);
                f->auth = alen ? malloc(alen) : NULL;
                if (alen && !f->auth) {
                        rc =
                            sprout_err_set(err, -ENOMEM, "%s: out of memory for %llu bytes of tags",
                                           path, (unsigned long long)alen);
                        goto fail;
                }
                if (alen) {
                        rc = pread_full(f, f->auth, alen, h->index_off + h->index_len,
                                        "authenticator", err);
                        if (rc < 0)
                                goto fail;
                }
                /* Before anything in the sections or the index is parsed. */
                rc = snapv_auth(f, err);
                if (rc < 0)
                        goto fail;
        }
        /* Parsed only now, so a keyed open never walks a record it has not authenticated. */
        rc = snapv_sections(h, f->sections_area, f->secs, path, err);
        if (rc < 0)
                goto fail;
        rc = snapv_index(h, f->index, &f->max_clen, &f->info.compressed_bytes, path, err);
        if (rc < 0)
                goto fail;

        struct snap_info *in = &f->info;
        memcpy(in->uuid, h->uuid, sizeof(in->uuid));
        in->major = h->major;
        in->minor = h->minor;
        in->created_ns = h->created_ns;
        in->host.host_kind = h->host_kind;
        memcpy(in->host.cpu_vendor, h->cpu_vendor, sizeof(in->host.cpu_vendor));
        in->host.family = h->cpu_family;
        in->host.model = h->cpu_model;
        in->host.stepping = h->cpu_stepping;
        in->host.kvm_api = h->kvm_api;
        in->ram_size = h->ram_size;
        in->vcpus = h->vcpus;
        in->chunk_size = h->chunk_size;
        in->nchunks = h->nchunks;
        in->nonzero_pages = h->nonzero_pages;
        in->file_size = size;
        in->nsections = h->nsections;
        in->authenticated = h->flags & SNAP_FLAG_AUTH;
        in->key_checked = f->keyed;
        memcpy(in->key_id, h->key_id, sizeof(in->key_id));
        *out = f;
        return 0;
fail:
        snap_close(f);
        return rc;
}

void snap_close(struct snap_file *f)
{
        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        free(f->index);
        free(f->auth);
        sodium_memzero(&f->key, sizeof(f->key));
        free(f->secs);
        free(f->sections_area);
        free(f->path);
        free(f);
}

const struct snap_info *snap_get_info(const struct snap_file *f)
{
        return &f->info;
}

int snap_section_at(const struct snap_file *f, unsigned i, struct snap_section *out)
{
        if (i >= f->info.nsections)
                return -ENOENT;
        *out = f->secs[i];
        return 0;
}

int snap_section(const struct snap_file *f, uint32_t tag, unsigned nth, struct snap_section *out)
{
        for (unsigned i = 0; i < f->info.nsections; i++) {
                if (f->secs[i].tag != tag)
                        continue;
                if (nth-- == 0) {
                        *out = f->secs[i];
                        return 0;
                }
        }
        return -ENOENT;
}
