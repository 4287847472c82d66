/* libFuzzer target: snap_open (header, sections and index validation), snap_verify and
 * snap_load_ram on a hostile snapshot file. White-box: it includes the private format header to
 * re-seal the checksums of each mutated input, or nearly every mutation would stop at the header
 * checksum; the checksum comparisons themselves are covered by tests/snapshot. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sprout/snapshot.h"
#include "fuzz_util.h"
#include "snapshot_format.h"

/* Large enough for the seeds (a few chunks) and what mutations grow them to. */
#define MAX_INPUT (256u << 10)
/* Bigger RAM images are decompressed only up to this much: a frame of repeated pages compresses
 * to almost nothing, and the point is the checks, not the page writes. */
#define MAX_LOAD_BYTES (64ull << 20)

static int in_file(uint64_t off, uint64_t len, size_t size)
{
        return off <= size && len <= size - off;
}

/* Rewrites what the writer would have computed: each frame's hash, the index checksum, then the
 * header checksum over the header and sections. Fields that point outside the file are left as
 * they are, for snap_open to refuse. */
static void reseal(uint8_t *buf, size_t size)
{
        struct snap_fmt_header h;
        if (size < sizeof(h))
                return;
        memcpy(&h, buf, sizeof(h));
        uint64_t esz = h.index_entry_size;
        if (esz >= SNAP_ENTRY_FIXED && h.nchunks <= size / esz &&
            in_file(h.index_off, h.nchunks * esz, size)) {
                for (uint64_t i = 0; i < h.nchunks; i++) {
                        uint8_t *p = buf + h.index_off + i * esz;
                        struct snap_fmt_entry e;
                        memcpy(&e, p, sizeof(e));
                        if (in_file(e.file_off, e.clen, size)) {
                                e.frame_hash = snapfmt_hash(buf + e.file_off, e.clen);
                                memcpy(p, &e, sizeof(e));
                        }
                }
        }
        if (in_file(h.index_off, h.index_len, size))
                h.index_checksum = snapfmt_hash(buf + h.index_off, h.index_len);
        uint64_t slen = in_file(SNAP_HEADER_SIZE, h.sections_len, size) ? h.sections_len : 0;
        h.header_checksum = snapfmt_header_hash(&h, buf + SNAP_HEADER_SIZE, slen);
        memcpy(buf, &h, sizeof(h));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t buf[MAX_INPUT];
        if (size > MAX_INPUT)
                return -1; /* not added to the corpus */
        memcpy(buf, data, size);
        reseal(buf, size);

        /* A memfd is a regular file, as snap_open requires, and costs no disk. */
        int fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC);
        if (fd < 0 || write(fd, buf, size) != (ssize_t)size)
                abort();
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        struct snap_file *f = NULL;
        struct sprout_err err = {0};
        int rc = snap_open(path, &f, &err);
        fuzz_note("snap_open", rc, &err);
        if (rc == 0) {
                const struct snap_info *info = snap_get_info(f);
                struct snap_section s;
                for (unsigned i = 0; snap_section_at(f, i, &s) == 0; i++)
                        if (s.len && ((const volatile uint8_t *)s.data)[s.len - 1] == 0xa5)
                                break; /* touch the last byte: ASan checks it is inside */
                (void)snap_section(f, 1, 1, &s);
                sprout_err_clear(&err);
                fuzz_note("snap_verify", snap_verify(f, &err), &err);
                if (info->nonzero_pages <= MAX_LOAD_BYTES / SNAP_PAGE_SIZE) {
                        int memfd = -1;
                        sprout_err_clear(&err);
                        rc = snap_load_ram(f, 1, &memfd, NULL, &err);
                        fuzz_note("snap_load_ram", rc, &err);
                        if (rc == 0)
                                close(memfd);
                        else if (memfd != -1)
                                abort(); /* the API promises -1 on failure */
                }
                snap_close(f);
        }
        close(fd);
        return 0;
}
