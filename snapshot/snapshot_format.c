/* Checksums of the snapshot format, shared by the writer, the reader and the tests that forge
 * files. */
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
