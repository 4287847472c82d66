/* The keyed reader's checks of the authenticator at open: the file has one, under this key, and the
 * header, sections and index tags match. Chunk tags are checked per chunk by snap_decode_chunk. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>

#include "snapshot_internal.h"

#define ULL(x) ((unsigned long long)(x))

int snap_crypto_init(struct sprout_err *err)
{
        /* Also picks libsodium's fastest BLAKE2b for this CPU; without it the portable one runs. */
        if (sodium_init() < 0)
                return sprout_err_set(err, -EIO, "libsodium failed to initialise");
        return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int snapv_auth(struct snap_file *f, struct sprout_err *err)
{
        const struct snap_fmt_header *h = &f->hdr;
        uint8_t want[SNAP_TAG_BYTES];
        int rc = snap_crypto_init(err);
        if (rc < 0)
                return rc;
        if (!(h->flags & SNAP_FLAG_AUTH))
                return sprout_err_set(err, -ENOKEY,
                                      "%s: not written by this daemon (no authenticator); import "
                                      "it first (sprout import)",
                                      f->path);
        uint8_t id[SNAP_KEY_ID_LEN];
        snapfmt_key_id(&f->key, id);
        /* The id is a hash of the key, not the key: saying both ids tells an operator which key
         * made the file, and nothing about the key itself. */
        if (sodium_memcmp(id, h->key_id, sizeof(id)) != 0) {
                char got[2 * SNAP_KEY_ID_LEN + 1], mine[2 * SNAP_KEY_ID_LEN + 1];
                hex(h->key_id, sizeof(id), got);
                hex(id, sizeof(id), mine);
                return sprout_err_set(err, -EKEYREJECTED,
                                      "%s: authenticated under another key (key id %s at offset "
                                      "168; this key's id is %s): written by another daemon or "
                                      "under an older key; import it first (sprout import)",
                                      f->path, got, mine);
        }
        snapfmt_header_tag(&f->key, h, f->auth, want);
        if (crypto_verify_32(want, h->auth_tag) != 0)
                return sprout_err_set(err, -EBADMSG,
                                      "%s: header tag mismatch: the header (offset 0, %u bytes) "
                                      "was changed after it was written",
                                      f->path, SNAP_HEADER_SIZE);
        snapfmt_sections_tag(&f->key, h->uuid, f->sections_area, h->sections_len, want);
        if (crypto_verify_32(want, f->auth) != 0)
                return sprout_err_set(err, -EBADMSG,
                                      "%s: sections tag mismatch: the sections area (offset %llu, "
                                      "%llu bytes) was changed after it was written",
                                      f->path, ULL(h->sections_off), ULL(h->sections_len));
        snapfmt_index_tag(&f->key, h, f->index, f->auth + SNAP_AUTH_FIXED, want);
        if (crypto_verify_32(want, f->auth + SNAP_TAG_BYTES) != 0)
                return sprout_err_set(err, -EBADMSG,
                                      "%s: chunk index tag mismatch: the index (offset %llu, %llu "
                                      "bytes) or the chunk tags after it (offset %llu) were "
                                      "changed after they were written",
                                      f->path, ULL(h->index_off), ULL(h->index_len),
                                      ULL(h->index_off + h->index_len + SNAP_AUTH_FIXED));
        return 0;
}
