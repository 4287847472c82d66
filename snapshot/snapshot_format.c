/* Checksums and authenticator tags of the snapshot format, shared by the writer, the reader and
 * the tests that forge files. */
#include <sodium.h>
#include <string.h>
#include <xxhash.h>

#include "snapshot_format.h"

uint64_t snapfmt_hash(const void *p, uint64_t len)
{
        return XXH3_64bits(p, len);
}

/* Chained rather than streamed: the header's hash seeds the hash of the sections, which needs no
 * hasher state (that is opaque in libxxhash's stable API) and is easy to restate in the format doc.
 */
uint64_t snapfmt_header_hash(const struct snap_fmt_header *hdr, const void *sections,
                             uint64_t sections_len)
{
        struct snap_fmt_header h = *hdr;
        h.header_checksum = 0;
        return XXH3_64bits_withSeed(sections, sections_len, XXH3_64bits(&h, sizeof(h)));
}

/* Every tag is keyed BLAKE2b-256 whose input opens with a label of its own (NUL-terminated, so no
 * label is a prefix of another): a tag of one kind can never stand in for a tag of another. The
 * chunk, sections and index tags also take the file's UUID, so parts of two files under the same
 * key do not mix either (the header tag has the UUID in the header). */
static void tag_start(crypto_generichash_state *st, const struct snap_key *key, const char *label)
{
        crypto_generichash_init(st, key->k, SNAP_KEY_BYTES, SNAP_TAG_BYTES);
        crypto_generichash_update(st, (const unsigned char *)label, strlen(label) + 1);
}

static void tag_end(crypto_generichash_state *st, uint8_t out[SNAP_TAG_BYTES])
{
        crypto_generichash_final(st, out, SNAP_TAG_BYTES);
        sodium_memzero(st, sizeof(*st)); /* it holds key material */
}

void snapfmt_key_id(const struct snap_key *key, uint8_t out[SNAP_KEY_ID_LEN])
{
        crypto_generichash_state st;
        uint8_t full[SNAP_TAG_BYTES];
        tag_start(&st, key, "sprout snapshot key id");
        tag_end(&st, full);
        memcpy(out, full, SNAP_KEY_ID_LEN);
}

void snapfmt_chunk_tag(const struct snap_key *key, const uint8_t uuid[16], uint64_t ram_off,
                       const void *frame, uint32_t clen, uint8_t out[SNAP_TAG_BYTES])
{
        crypto_generichash_state st;
        tag_start(&st, key, "sprout snapshot chunk");
        crypto_generichash_update(&st, uuid, 16);
        crypto_generichash_update(&st, (const unsigned char *)&ram_off, sizeof(ram_off));
        crypto_generichash_update(&st, frame, clen);
        tag_end(&st, out);
}

void snapfmt_sections_tag(const struct snap_key *key, const uint8_t uuid[16], const void *area,
                          uint64_t len, uint8_t out[SNAP_TAG_BYTES])
{
        crypto_generichash_state st;
        tag_start(&st, key, "sprout snapshot sections");
        crypto_generichash_update(&st, uuid, 16);
        crypto_generichash_update(&st, area, len);
        tag_end(&st, out);
}

void snapfmt_index_tag(const struct snap_key *key, const struct snap_fmt_header *h,
                       const uint8_t *index, const uint8_t *chunk_tags, uint8_t out[SNAP_TAG_BYTES])
{
        crypto_generichash_state st;
        const size_t skip = offsetof(struct snap_fmt_entry, frame_hash);
        tag_start(&st, key, "sprout snapshot index");
        crypto_generichash_update(&st, h->uuid, 16);
        /* frame_hash is left out: it is an XXH3 anyone can recompute, and the chunk tag covers the
         * frame itself. So a forger who re-seals it is caught at the chunk, which names the chunk.
         */
        for (uint64_t i = 0; i < h->nchunks; i++) {
                const uint8_t *e = index + i * h->index_entry_size;
                crypto_generichash_update(&st, e, skip);
                crypto_generichash_update(&st, e + SNAP_ENTRY_FIXED,
                                          h->index_entry_size - SNAP_ENTRY_FIXED);
        }
        crypto_generichash_update(&st, chunk_tags, h->nchunks * SNAP_TAG_BYTES);
        tag_end(&st, out);
}

void snapfmt_header_tag(const struct snap_key *key, const struct snap_fmt_header *h,
                        const uint8_t *auth, uint8_t out[SNAP_TAG_BYTES])
{
        crypto_generichash_state st;
        struct snap_fmt_header c = *h;
        /* Left out for the same reason as frame_hash: XXH3s a forger can recompute, and what they
         * cover has tags of its own. */
        c.index_checksum = 0;
        c.header_checksum = 0;
        memset(c.auth_tag, 0, sizeof(c.auth_tag));
        tag_start(&st, key, "sprout snapshot header");
        crypto_generichash_update(&st, (const unsigned char *)&c, sizeof(c));
        crypto_generichash_update(&st, auth, SNAP_AUTH_FIXED);
        tag_end(&st, out);
}
