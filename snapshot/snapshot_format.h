/* On-disk layout of a snapshot file (format 1.1; 1.0 is 1.1 without an authenticator), private to
 * snapshot/ and its tests.
 * docs/snapshot-format.md is the prose version of this header; keep the two in step. */
#ifndef SPROUT_SNAPSHOT_FORMAT_H
#define SPROUT_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/snapshot.h"

/* Fields are stored in host order and sprout runs on x86-64 only; a big-endian port must add swaps.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the snapshot format is little-endian");

#define SNAP_MAGIC       "SPROUTSN"
#define SNAP_MAGIC_LEN   8
#define SNAP_HEADER_SIZE 256u
#define SNAP_SEC_PREFIX  16u /* u32 tag, u32 flags, u64 length */
#define SNAP_ALIGN       8u  /* section data and index entries start 8-byte aligned */
#define SNAP_ENTRY_FIXED 32u /* index entry before its bitmap */
#define SNAP_PAGES_MAX   (SNAP_MAX_CHUNK / SNAP_PAGE_SIZE)

/* flags (format 1.1): the file carries an authenticator (key_id, auth_tag and the authenticator
 * area after the index). */
#define SNAP_FLAG_AUTH  0x1u
#define SNAP_KEY_ID_LEN 8u
#define SNAP_AUTH_FIXED (2u * SNAP_TAG_BYTES) /* sections tag, index tag; then one per chunk */

struct __attribute__((packed)) snap_fmt_header {
        char magic[SNAP_MAGIC_LEN];
        uint16_t major;
        uint16_t minor;
        uint32_t header_size;
        uint8_t uuid[16];
        uint64_t created_ns;
        uint32_t host_kind;
        char cpu_vendor[16];
        uint32_t cpu_family;
        uint32_t cpu_model;
        uint32_t cpu_stepping;
        uint32_t kvm_api;
        uint32_t vcpus;
        uint64_t ram_size;
        uint32_t chunk_size;
        uint32_t nsections;
        uint64_t sections_off;
        uint64_t sections_len;
        uint64_t nchunks;
        uint64_t index_off;
        uint64_t index_len;
        uint32_t index_entry_size;
        uint32_t flags; /* 1.0: must be 0; 1.1: SNAP_FLAG_AUTH or 0 */
        uint64_t nonzero_pages;
        uint64_t index_checksum; /* XXH3-64 of the index bytes */
        uint64_t
            header_checksum; /* XXH3-64 of this header (this field as 0) then the sections area */
        /* Format 1.1, zero unless flags has SNAP_FLAG_AUTH: which key (a keyed hash of it, not the
         * key) and the header tag. */
        uint8_t key_id[SNAP_KEY_ID_LEN];
        uint8_t auth_tag[SNAP_TAG_BYTES];
        uint8_t reserved[48]; /* must be 0 */
};

_Static_assert(sizeof(struct snap_fmt_header) == SNAP_HEADER_SIZE, "header size");
_Static_assert(offsetof(struct snap_fmt_header, major) == 8, "major");
_Static_assert(offsetof(struct snap_fmt_header, header_size) == 12, "header_size");
_Static_assert(offsetof(struct snap_fmt_header, uuid) == 16, "uuid");
_Static_assert(offsetof(struct snap_fmt_header, created_ns) == 32, "created_ns");
_Static_assert(offsetof(struct snap_fmt_header, host_kind) == 40, "host_kind");
_Static_assert(offsetof(struct snap_fmt_header, cpu_vendor) == 44, "cpu_vendor");
_Static_assert(offsetof(struct snap_fmt_header, kvm_api) == 72, "kvm_api");
_Static_assert(offsetof(struct snap_fmt_header, vcpus) == 76, "vcpus");
_Static_assert(offsetof(struct snap_fmt_header, ram_size) == 80, "ram_size");
_Static_assert(offsetof(struct snap_fmt_header, chunk_size) == 88, "chunk_size");
_Static_assert(offsetof(struct snap_fmt_header, sections_off) == 96, "sections_off");
_Static_assert(offsetof(struct snap_fmt_header, nchunks) == 112, "nchunks");
_Static_assert(offsetof(struct snap_fmt_header, index_off) == 120, "index_off");
_Static_assert(offsetof(struct snap_fmt_header, index_entry_size) == 136, "index_entry_size");
_Static_assert(offsetof(struct snap_fmt_header, nonzero_pages) == 144, "nonzero_pages");
_Static_assert(offsetof(struct snap_fmt_header, index_checksum) == 152, "index_checksum");
_Static_assert(offsetof(struct snap_fmt_header, header_checksum) == 160, "header_checksum");
_Static_assert(offsetof(struct snap_fmt_header, key_id) == 168, "key_id");
_Static_assert(offsetof(struct snap_fmt_header, auth_tag) == 176, "auth_tag");
_Static_assert(offsetof(struct snap_fmt_header, reserved) == 208, "reserved");

/* Each section in the sections area: this prefix, len bytes of data, zeros up to SNAP_ALIGN. */
struct __attribute__((packed)) snap_fmt_section {
        uint32_t tag;
        uint32_t flags;
        uint64_t len;
};
_Static_assert(sizeof(struct snap_fmt_section) == SNAP_SEC_PREFIX, "section prefix size");

/* Each chunk index entry: this, then a bitmap of the chunk's non-zero pages (bit i of byte i/8,
 * least significant first, is page i), zero-padded so the entry is index_entry_size bytes. */
struct __attribute__((packed)) snap_fmt_entry {
        uint64_t ram_off;    /* guest RAM offset, a multiple of chunk_size */
        uint64_t file_off;   /* of the zstd frame */
        uint32_t clen;       /* frame length */
        uint32_t npages;     /* bits set in the bitmap = pages in the frame's content */
        uint64_t frame_hash; /* XXH3-64 of the frame bytes */
};
_Static_assert(sizeof(struct snap_fmt_entry) == SNAP_ENTRY_FIXED, "index entry size");
_Static_assert(offsetof(struct snap_fmt_entry, clen) == 16, "clen");
_Static_assert(offsetof(struct snap_fmt_entry, frame_hash) == 24, "frame_hash");

static inline uint64_t snapfmt_align(uint64_t v)
{
        return (v + SNAP_ALIGN - 1) & ~(uint64_t)(SNAP_ALIGN - 1);
}

static inline uint32_t snapfmt_entry_size(uint32_t chunk_size)
{
        return SNAP_ENTRY_FIXED + (uint32_t)snapfmt_align(chunk_size / SNAP_PAGE_SIZE / 8);
}

static inline const uint8_t *snapfmt_bitmap(const struct snap_fmt_entry *e)
{
        return (const uint8_t *)e + SNAP_ENTRY_FIXED;
}

static inline int snapfmt_bit(const uint8_t *bm, uint32_t i)
{
        return (bm[i / 8] >> (i % 8)) & 1;
}

/* Bytes of the authenticator area after the index: 0 without SNAP_FLAG_AUTH. */
static inline uint64_t snapfmt_auth_len(const struct snap_fmt_header *h)
{
        return (h->flags & SNAP_FLAG_AUTH) ? SNAP_AUTH_FIXED + h->nchunks * SNAP_TAG_BYTES : 0;
}

/* The header+sections checksum; hdr->header_checksum is treated as 0. */
uint64_t snapfmt_header_hash(const struct snap_fmt_header *hdr, const void *sections,
                             uint64_t sections_len);
uint64_t snapfmt_hash(const void *p, uint64_t len);

/* ---- the authenticator (keyed BLAKE2b-256, docs/snapshot-format.md "Authenticator") ---- */

void snapfmt_key_id(const struct snap_key *key, uint8_t out[SNAP_KEY_ID_LEN]);
/* Chunk tag: the frame of the chunk at RAM offset ram_off of the file with this UUID. */
void snapfmt_chunk_tag(const struct snap_key *key, const uint8_t uuid[16], uint64_t ram_off,
                       const void *frame, uint32_t clen, uint8_t out[SNAP_TAG_BYTES]);
void snapfmt_sections_tag(const struct snap_key *key, const uint8_t uuid[16], const void *area,
                          uint64_t len, uint8_t out[SNAP_TAG_BYTES]);
/* Over the index with every entry's frame_hash left out, then the nchunks chunk tags. */
void snapfmt_index_tag(const struct snap_key *key, const struct snap_fmt_header *h,
                       const uint8_t *index, const uint8_t *chunk_tags,
                       uint8_t out[SNAP_TAG_BYTES]);
/* Over the header with index_checksum, header_checksum and auth_tag as 0, then the sections and
 * index tags (auth holds both, SNAP_AUTH_FIXED bytes). */
void snapfmt_header_tag(const struct snap_key *key, const struct snap_fmt_header *h,
                        const uint8_t *auth, uint8_t out[SNAP_TAG_BYTES]);

#endif
