/* Turning one RAM chunk into its index facts and zstd frame: find the non-zero pages, pack them,
 * compress them as one independent frame with a content checksum, and hash the frame. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_internal.h"

int snap_encoder_init(struct snap_encoder *e, uint32_t chunk_size, int level,
                      struct sprout_err *err)
{
        memset(e, 0, sizeof(*e));
        e->chunk_size = chunk_size;
        e->staging = malloc(chunk_size);
        e->cctx = ZSTD_createCCtx();
        if (!e->staging || !e->cctx) {
                snap_encoder_fini(e);
                return sprout_err_set(err, -ENOMEM, "cannot allocate a %u-byte chunk compressor",
                                      chunk_size);
        }
        size_t r = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(r))
                r = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_checksumFlag, 1);
        if (!ZSTD_isError(r))
                r = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_contentSizeFlag, 1);
        if (ZSTD_isError(r)) {
                snap_encoder_fini(e);
                return sprout_err_set(err, -EINVAL, "zstd rejected compression level %d: %s", level,
                                      ZSTD_getErrorName(r));
        }
        return 0;
}

void snap_encoder_fini(struct snap_encoder *e)
{
        ZSTD_freeCCtx(e->cctx);
        free(e->staging);
        e->cctx = NULL;
        e->staging = NULL;
}

/* memcpy keeps the loads legal for any alignment of the caller's RAM; GCC turns them into plain
 * loads. */
static bool page_is_zero(const uint8_t *p)
{
        for (unsigned i = 0; i < SNAP_PAGE_SIZE; i += 64) {
                uint64_t w[8];
                memcpy(w, p + i, sizeof(w));
                if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
                        return false;
        }
        return true;
}

int snap_encode_chunk(struct snap_encoder *e, const uint8_t *ram, uint64_t ram_off, uint32_t len,
                      uint8_t *out, size_t out_cap, struct snap_encoded *res,
                      struct sprout_err *err)
{
        uint32_t pages = len / SNAP_PAGE_SIZE;
        uint32_t first = UINT32_MAX, last = 0;

        memset(res->bitmap, 0, sizeof(res->bitmap));
        res->npages = 0;
        res->clen = 0;
        res->hash = 0;
        for (uint32_t i = 0; i < pages; i++) {
                if (page_is_zero(ram + (uint64_t)i * SNAP_PAGE_SIZE))
                        continue;
                res->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
                res->npages++;
                if (first == UINT32_MAX)
                        first = i;
                last = i;
        }
        if (res->npages == 0)
                return 0;

        const uint8_t *src;
        size_t src_len = (size_t)res->npages * SNAP_PAGE_SIZE;
        if (last - first + 1 == res->npages) {
                /* One run of non-zero pages (common: a full chunk) is compressed in place. */
                src = ram + (uint64_t)first * SNAP_PAGE_SIZE;
        } else {
                uint8_t *dst = e->staging;
                for (uint32_t i = first; i <= last; i++) {
                        if (!snapfmt_bit(res->bitmap, i))
                                continue;
                        memcpy(dst, ram + (uint64_t)i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
                        dst += SNAP_PAGE_SIZE;
                }
                src = e->staging;
        }
        size_t r = ZSTD_compress2(e->cctx, out, out_cap, src, src_len);
        if (ZSTD_isError(r))
                return sprout_err_set(err, -EIO, "zstd could not compress %zu bytes: %s", src_len,
                                      ZSTD_getErrorName(r));
        res->clen = (uint32_t)r;
        res->hash = snapfmt_hash(out, r);
        /* Tagged here, on the compression threads, so the authenticator costs the writer no
         * serial pass over the frames. */
        if (e->key)
                snapfmt_chunk_tag(e->key, e->uuid, ram_off, out, res->clen, res->tag);
        return 0;
}
