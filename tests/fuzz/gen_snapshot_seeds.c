/* Writes the seed snapshots of fuzz_snapshot with the real writer: small files (a few KiB) that
 * still have every part a snapshot can have: several sections sharing a tag, an empty one, chunks
 * with and without zero pages left out, a short last chunk, and no chunks at all.
 * Usage: gen_snapshot_seeds DIR (scripts/fuzz.sh --seeds regenerates the committed corpus). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../snapshot/snap_test.h"
#include "sprout/snapshot.h"

#define PAGE SNAP_PAGE_SIZE

static int write_one(const char *dir, const char *name, uint64_t ram_size, uint32_t chunk,
                     unsigned nsec, void (*fill)(uint8_t *ram, uint64_t size))
{
        static const char regs[] = "vcpu0 registers", more[] = "a second record of the same tag";
        const struct snap_section secs[] = {
            {.tag = 1, .flags = 0, .data = regs, .len = sizeof(regs)},
            {.tag = 2, .flags = 7, .data = NULL, .len = 0},
            {.tag = 1, .flags = 1, .data = more, .len = sizeof(more)},
        };
        uint8_t *ram = calloc(1, ram_size);
        char path[4096];
        struct sprout_err err = {0};
        if (!ram)
                return -1;
        fill(ram, ram_size);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        /* A fixed UUID and single-threaded writes keep the seeds the same from run to run, bar
         * the creation time. */
        static const uint8_t uuid[16] = {0x5e, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
        /* The snapshot tests' host facts (t_opts), with this seed's layout. */
        struct snap_write_opts o = t_opts(path, ram, ram_size);
        o.uuid = uuid;
        o.zstd_level = 19;
        o.chunk_size = chunk;
        o.threads = 1;
        o.sections = secs;
        o.nsections = nsec;
        int rc = snap_write(&o, NULL, &err);
        if (rc < 0)
                fprintf(stderr, "%s: %s\n", path, err.msg);
        free(ram);
        return rc;
}

static void fill_none(uint8_t *ram, uint64_t size)
{
        (void)ram;
        (void)size;
}

/* Pages 0, 1, 5 and the last: text and counters, compressible but not zero. */
static void fill_some(uint8_t *ram, uint64_t size)
{
        uint64_t pages[] = {0, 1, 5, size / PAGE - 1};
        for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
                uint8_t *p = ram + pages[i] * PAGE;
                for (unsigned j = 0; j < PAGE; j++)
                        p[j] = (uint8_t)(j * (i + 1));
                snprintf((char *)p, 64, "page %llu of a fuzz seed", (unsigned long long)pages[i]);
        }
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        int rc = 0;
        rc |= write_one(argv[1], "empty-ram", 16 * PAGE, 0, 1, fill_none);
        rc |= write_one(argv[1], "two-chunks", 32 * PAGE, 64u << 10, 3, fill_some);
        /* 20 pages in 64 KiB chunks: the second chunk covers only 4 pages. */
        rc |= write_one(argv[1], "short-last", 20 * PAGE, 64u << 10, 2, fill_some);
        rc |= write_one(argv[1], "default-chunk", 64 * PAGE, 0, 3, fill_some);
        return rc ? 1 : 0;
}
