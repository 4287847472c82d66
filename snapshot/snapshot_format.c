/* Checksums of the snapshot format, shared by the writer, the reader and the tests that forge files. */
#include <string.h>
#include <xxhash.h>

#include "snapshot_format.h"

uint64_t snapfmt_hash(const void *p, uint64_t len)
{
        return XXH3_64bits(p, len);
}

uint64_t snapfmt_header_hash(const struct snap_fmt_header *hdr, const void *sections,
                             uint64_t sections_len)
{
        struct snap_fmt_header h = *hdr;
        XXH3_state_t st;

        h.header_checksum = 0;
        XXH3_64bits_reset(&st);
        XXH3_64bits_update(&st, &h, sizeof(h));
        if (sections_len)
                XXH3_64bits_update(&st, sections, sections_len);
        return XXH3_64bits_digest(&st);
}
