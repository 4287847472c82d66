/* Checks of everything snap_open() reads from an untrusted file, done on buffers before any field
 * is used to size an allocation or to index memory. Each failure names the field, its offset and
 * what was expected. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "snapshot_internal.h"

#define ULL(x) ((unsigned long long)(x))

int snapv_header_early(const struct snap_fmt_header *h, uint64_t file_size, const char *path,
                       struct sprout_err *err)
{
        if (memcmp(h->magic, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0) {
                const uint8_t *m = (const uint8_t *)h->magic;
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: not a sprout snapshot: bad magic %02x%02x%02x%02x%02x%02x%02x%02x at "
                    "offset 0, expected \"%s\"",
                    path, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], SNAP_MAGIC);
        }
        if (h->major != SNAP_FORMAT_MAJOR)
                return sprout_err_set(err, -EPROTONOSUPPORT,
                                      "%s: snapshot format version %u.%u has a different major "
                                      "version than this reader's %u.%u",
                                      path, h->major, h->minor, SNAP_FORMAT_MAJOR,
                                      SNAP_FORMAT_MINOR);
        if (h->minor > SNAP_FORMAT_MINOR)
                return sprout_err_set(
                    err, -EPROTONOSUPPORT,
                    "%s: snapshot format version %u.%u is newer than this reader's %u.%u", path,
                    h->major, h->minor, SNAP_FORMAT_MAJOR, SNAP_FORMAT_MINOR);
        if (h->header_size != SNAP_HEADER_SIZE)
                return sprout_err_set(
                    err, -EINVAL, "%s: header_size (offset 12) is %u, expected %u for format %u.%u",
                    path, h->header_size, SNAP_HEADER_SIZE, h->major, h->minor);
        /* The sections area is read before the checksum can be checked, so bound it first. */
        if (h->sections_off != SNAP_HEADER_SIZE)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: sections_off (offset 96) is %llu, expected %u (right after the header)",
                    path, ULL(h->sections_off), SNAP_HEADER_SIZE);
        if (h->sections_len > SNAP_MAX_SECTIONS_BYTES)
                return sprout_err_set(err, -EINVAL,
                                      "%s: sections_len (offset 104) is %llu, over the cap of %llu",
                                      path, ULL(h->sections_len), SNAP_MAX_SECTIONS_BYTES);
        if (h->sections_len > file_size - SNAP_HEADER_SIZE)
                return sprout_err_set(err, -EINVAL,
                                      "%s: sections area [%u, %llu) extends beyond the end of the "
                                      "%llu-byte file (truncated?)",
                                      path, SNAP_HEADER_SIZE,
                                      ULL(SNAP_HEADER_SIZE + h->sections_len), ULL(file_size));
        if (h->sections_len % SNAP_ALIGN)
                return sprout_err_set(err, -EINVAL,
                                      "%s: sections_len (offset 104) is %llu, not a multiple of %u",
                                      path, ULL(h->sections_len), SNAP_ALIGN);
        return 0;
}

int snapv_header(const struct snap_fmt_header *h, uint64_t file_size, const char *path,
                 struct sprout_err *err)
{
        /* Without an authenticator, key_id and auth_tag are reserved bytes as they were in 1.0. */
        bool auth = h->flags & SNAP_FLAG_AUTH;
        size_t rfirst = auth ? offsetof(struct snap_fmt_header, reserved)
                             : offsetof(struct snap_fmt_header, key_id);
        const uint8_t *raw = (const uint8_t *)h;
        for (size_t i = rfirst; i < SNAP_HEADER_SIZE; i++)
                if (raw[i])
                        return sprout_err_set(
                            err, -EINVAL,
                            "%s: reserved header byte at offset %zu is 0x%02x, expected 0", path, i,
                            raw[i]);
        uint32_t known = h->minor >= 1 ? SNAP_FLAG_AUTH : 0;
        if (h->flags & ~known)
                return sprout_err_set(err, -EINVAL,
                                      "%s: header flags (offset 140) are 0x%x; format %u.%u "
                                      "defines 0x%x",
                                      path, h->flags, h->major, h->minor, known);
        if (!memchr(h->cpu_vendor, '\0', sizeof(h->cpu_vendor)))
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: cpu_vendor (offset 44) is not NUL-terminated within 16 bytes", path);
        if (h->ram_size == 0 || h->ram_size > SNAP_MAX_RAM || h->ram_size % SNAP_PAGE_SIZE)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: ram_size (offset 80) is %llu, expected a multiple of %u in (0, %llu]",
                    path, ULL(h->ram_size), SNAP_PAGE_SIZE, SNAP_MAX_RAM);
        if (h->vcpus == 0 || h->vcpus > SNAP_MAX_VCPUS)
                return sprout_err_set(err, -EINVAL, "%s: vcpus (offset 76) is %u, expected 1..%u",
                                      path, h->vcpus, SNAP_MAX_VCPUS);
        if (h->chunk_size < SNAP_MIN_CHUNK || h->chunk_size > SNAP_MAX_CHUNK ||
            (h->chunk_size & (h->chunk_size - 1)))
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: chunk_size (offset 88) is %u, expected a power of two in [%u, %u]", path,
                    h->chunk_size, SNAP_MIN_CHUNK, SNAP_MAX_CHUNK);
        if (h->nsections > SNAP_MAX_SECTIONS)
                return sprout_err_set(err, -EINVAL,
                                      "%s: nsections (offset 92) is %u, over the cap of %u", path,
                                      h->nsections, SNAP_MAX_SECTIONS);
        uint32_t esz = snapfmt_entry_size(h->chunk_size);
        if (h->index_entry_size != esz)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: index_entry_size (offset 136) is %u, expected %u for chunk_size %u", path,
                    h->index_entry_size, esz, h->chunk_size);
        uint64_t max_chunks = (h->ram_size + h->chunk_size - 1) / h->chunk_size;
        if (h->nchunks > max_chunks)
                return sprout_err_set(err, -EINVAL,
                                      "%s: nchunks (offset 112) is %llu, but %llu bytes of RAM "
                                      "hold only %llu chunks of %u",
                                      path, ULL(h->nchunks), ULL(h->ram_size), ULL(max_chunks),
                                      h->chunk_size);
        if (h->nonzero_pages > h->ram_size / SNAP_PAGE_SIZE)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: nonzero_pages (offset 144) is %llu, more than the %llu pages of RAM", path,
                    ULL(h->nonzero_pages), ULL(h->ram_size / SNAP_PAGE_SIZE));
        /* nchunks <= 2^20 and esz <= 2080: the product cannot overflow. */
        if (h->index_len != h->nchunks * esz)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: index_len (offset 128) is %llu, expected nchunks %llu x %u = %llu", path,
                    ULL(h->index_len), ULL(h->nchunks), esz, ULL(h->nchunks * esz));
        uint64_t data_off = h->sections_off + h->sections_len;
        if (h->index_off < data_off)
                return sprout_err_set(err, -EINVAL,
                                      "%s: index_off (offset 120) is %llu, inside the sections "
                                      "area that ends at %llu",
                                      path, ULL(h->index_off), ULL(data_off));
        /* nchunks <= 2^20: auth_len cannot overflow, but index_off comes straight from the file. */
        uint64_t end, auth_len = snapfmt_auth_len(h);
        if (__builtin_add_overflow(h->index_off, h->index_len, &end) ||
            __builtin_add_overflow(end, auth_len, &end))
                return sprout_err_set(err, -EINVAL,
                                      "%s: index_off (offset 120) %llu + index_len %llu overflows",
                                      path, ULL(h->index_off), ULL(h->index_len));
        if (end != file_size && !auth)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: file is %llu bytes but the chunk index ends at %llu (index_off %llu + "
                    "index_len %llu): truncated or trailing data",
                    path, ULL(file_size), ULL(end), ULL(h->index_off), ULL(h->index_len));
        if (end != file_size)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: file is %llu bytes but the authenticator area ends at %llu (index_off "
                    "%llu + index_len %llu + %llu bytes of tags): truncated or trailing data",
                    path, ULL(file_size), ULL(end), ULL(h->index_off), ULL(h->index_len),
                    ULL(auth_len));
        if (h->nchunks == 0 && h->index_off != data_off)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: no chunks, yet %llu bytes lie between the sections and the index", path,
                    ULL(h->index_off - data_off));
        return 0;
}

int snapv_sections(const struct snap_fmt_header *h, const uint8_t *area, struct snap_section *out,
                   const char *path, struct sprout_err *err)
{
        uint64_t off = 0, len = h->sections_len;
        for (uint32_t i = 0; i < h->nsections; i++) {
                uint64_t at = h->sections_off + off;
                if (len - off < SNAP_SEC_PREFIX)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: section %u of %u: its prefix at file offset "
                                              "%llu runs past the end of the sections area at %llu",
                                              path, i, h->nsections, ULL(at),
                                              ULL(h->sections_off + len));
                struct snap_fmt_section pre;
                memcpy(&pre, area + off, sizeof(pre));
                if (pre.len > SNAP_MAX_SECTION_LEN)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: section %u (tag 0x%x) at file offset %llu: "
                                              "length %llu is over the cap of %llu",
                                              path, i, pre.tag, ULL(at), ULL(pre.len),
                                              SNAP_MAX_SECTION_LEN);
                uint64_t padded = snapfmt_align(pre.len);
                uint64_t room = len - off - SNAP_SEC_PREFIX;
                if (padded > room)
                        return sprout_err_set(
                            err, -EINVAL,
                            "%s: section %u (tag 0x%x) at file offset %llu: length %llu runs past "
                            "the end of the sections area (%llu bytes left)",
                            path, i, pre.tag, ULL(at), ULL(pre.len), ULL(room));
                const uint8_t *data = area + off + SNAP_SEC_PREFIX;
                for (uint64_t k = pre.len; k < padded; k++)
                        if (data[k])
                                return sprout_err_set(err, -EINVAL,
                                                      "%s: section %u (tag 0x%x): padding byte at "
                                                      "file offset %llu is 0x%02x, expected 0",
                                                      path, i, pre.tag,
                                                      ULL(at + SNAP_SEC_PREFIX + k), data[k]);
                out[i] = (struct snap_section){
                    .tag = pre.tag, .flags = pre.flags, .data = data, .len = pre.len};
                off += SNAP_SEC_PREFIX + padded;
        }
        if (off != len)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: %llu bytes follow the last of the %u sections in the sections area", path,
                    ULL(len - off), h->nsections);
        return 0;
}

/* Bits must match npages, and none may name a page past the end of RAM or the chunk. */
static int check_bitmap(const struct snap_fmt_header *h, uint64_t i, const struct snap_fmt_entry *e,
                        const char *path, struct sprout_err *err)
{
        const uint8_t *bm = snapfmt_bitmap(e);
        uint32_t bits = (h->index_entry_size - SNAP_ENTRY_FIXED) * 8;
        uint64_t left = (h->ram_size - e->ram_off) / SNAP_PAGE_SIZE;
        uint32_t valid = h->chunk_size / SNAP_PAGE_SIZE;
        if (left < valid)
                valid = (uint32_t)left;
        uint32_t count = 0;
        for (uint32_t b = 0; b < bits; b++) {
                if (b % 8 == 0 && bm[b / 8] == 0) {
                        b += 7;
                        continue;
                }
                if (!snapfmt_bit(bm, b))
                        continue;
                if (b >= valid)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: chunk %llu (RAM offset 0x%llx): bitmap marks "
                                              "page %u, beyond the %u pages the chunk covers",
                                              path, ULL(i), ULL(e->ram_off), b, valid);
                count++;
        }
        if (e->npages != count)
                return sprout_err_set(err, -EINVAL,
                                      "%s: chunk %llu (RAM offset 0x%llx): npages is %u but the "
                                      "bitmap marks %u pages",
                                      path, ULL(i), ULL(e->ram_off), e->npages, count);
        if (count == 0)
                return sprout_err_set(err, -EINVAL,
                                      "%s: chunk %llu (RAM offset 0x%llx) stores no pages; "
                                      "all-zero chunks must be left out",
                                      path, ULL(i), ULL(e->ram_off));
        return 0;
}

int snapv_index(const struct snap_fmt_header *h, const uint8_t *index, uint32_t *max_clen,
                uint64_t *compressed, const char *path, struct sprout_err *err)
{
        uint64_t expect_off = h->sections_off + h->sections_len;
        uint64_t pages = 0, prev_ram = 0;
        size_t bound = ZSTD_compressBound(h->chunk_size);

        *max_clen = 0;
        *compressed = 0;
        for (uint64_t i = 0; i < h->nchunks; i++) {
                struct snap_fmt_entry e;
                memcpy(&e, index + i * h->index_entry_size, sizeof(e));
                uint64_t at = h->index_off + i * h->index_entry_size;
                if (e.ram_off % h->chunk_size)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: chunk %llu (index entry at file offset %llu): "
                                              "ram_off 0x%llx is not a multiple of chunk_size %u",
                                              path, ULL(i), ULL(at), ULL(e.ram_off), h->chunk_size);
                if (e.ram_off >= h->ram_size)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: chunk %llu (index entry at file offset %llu): "
                                              "ram_off 0x%llx is beyond RAM (ram_size 0x%llx)",
                                              path, ULL(i), ULL(at), ULL(e.ram_off),
                                              ULL(h->ram_size));
                if (i > 0 && e.ram_off <= prev_ram)
                        return sprout_err_set(
                            err, -EINVAL,
                            "%s: chunk %llu (index entry at file offset %llu): ram_off 0x%llx does "
                            "not follow chunk %llu's 0x%llx: index unsorted or duplicated",
                            path, ULL(i), ULL(at), ULL(e.ram_off), ULL(i - 1), ULL(prev_ram));
                if (e.file_off != expect_off)
                        return sprout_err_set(
                            err, -EINVAL,
                            "%s: chunk %llu (RAM offset 0x%llx): frame at file offset %llu, "
                            "expected %llu where the previous one ends (overlap or gap)",
                            path, ULL(i), ULL(e.ram_off), ULL(e.file_off), ULL(expect_off));
                if (e.clen == 0 || e.clen > bound)
                        return sprout_err_set(
                            err, -EINVAL,
                            "%s: chunk %llu (RAM offset 0x%llx): clen %u is outside [1, %zu]", path,
                            ULL(i), ULL(e.ram_off), e.clen, bound);
                if (e.clen > h->index_off - e.file_off)
                        return sprout_err_set(err, -EINVAL,
                                              "%s: chunk %llu (RAM offset 0x%llx): frame [%llu, "
                                              "%llu) overlaps the chunk index at %llu",
                                              path, ULL(i), ULL(e.ram_off), ULL(e.file_off),
                                              ULL(e.file_off + e.clen), ULL(h->index_off));
                int rc = check_bitmap(
                    h, i, (const struct snap_fmt_entry *)(index + i * h->index_entry_size), path,
                    err);
                if (rc < 0)
                        return rc;
                pages += e.npages;
                *compressed += e.clen;
                if (e.clen > *max_clen)
                        *max_clen = e.clen;
                expect_off += e.clen;
                prev_ram = e.ram_off;
        }
        if (expect_off != h->index_off)
                return sprout_err_set(err, -EINVAL,
                                      "%s: chunk frames end at file offset %llu but the index "
                                      "starts at %llu: unaccounted bytes",
                                      path, ULL(expect_off), ULL(h->index_off));
        if (pages != h->nonzero_pages)
                return sprout_err_set(
                    err, -EINVAL,
                    "%s: nonzero_pages (offset 144) is %llu but the chunks hold %llu pages", path,
                    ULL(h->nonzero_pages), ULL(pages));
        return 0;
}
