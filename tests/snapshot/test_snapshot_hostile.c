/* Hostile files: truncations, flipped bytes, foreign versions and forged headers, sections and
 * chunk indexes (checksums re-sealed so the structural checks are reached). Every case must fail
 * cleanly with a message naming the problem, never crash; run it under the ASan build too. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/check.h"
#include "snap_test.h"

#define PG       SNAP_PAGE_SIZE
#define CHUNK    SNAP_MIN_CHUNK
#define RAM_SIZE (32 * CHUNK + 2 * PG) /* the last chunk holds only two pages */

static const char *dir;
static char path[512];
static uint8_t *ram;
static uint8_t *base; /* the valid file */
static size_t base_len;
static struct snap_fmt_header H; /* its header */

struct outcome {
        int stage; /* 0: open, verify and load all succeeded; 1: open failed; 2: verify or load
                      failed */
        char open_msg[512], verify_msg[512], load_msg[512];
        int verify_rc, load_rc, memfd;
        bool same_content;
};

static void run_file(struct outcome *r)
{
        struct snap_file *f = NULL;
        struct sprout_err err = {0};
        memset(r, 0, sizeof(*r));
        r->memfd = -1;
        if (snap_open(path, &f, &err) < 0) {
                r->stage = 1;
                snprintf(r->open_msg, sizeof(r->open_msg), "%s", err.msg);
                return;
        }
        sprout_err_clear(&err);
        r->verify_rc = snap_verify(f, &err);
        snprintf(r->verify_msg, sizeof(r->verify_msg), "%s", err.msg);
        sprout_err_clear(&err);
        r->load_rc = snap_load_ram(f, 4, &r->memfd, NULL, &err);
        snprintf(r->load_msg, sizeof(r->load_msg), "%s", err.msg);
        if (r->load_rc == 0) {
                const struct snap_info *in = snap_get_info(f);
                uint8_t *m = mmap(NULL, in->ram_size, PROT_READ, MAP_SHARED, r->memfd, 0);
                r->same_content =
                    m != MAP_FAILED && in->ram_size == RAM_SIZE && memcmp(m, ram, RAM_SIZE) == 0;
                if (m != MAP_FAILED)
                        munmap(m, in->ram_size);
                close(r->memfd);
        }
        r->stage = (r->verify_rc || r->load_rc) ? 2 : 0;
        snap_close(f);
}

static void run(const uint8_t *img, size_t len, struct outcome *r)
{
        if (t_spit(path, img, len) < 0) {
                fprintf(stderr, "cannot write %s\n", path);
                abort();
        }
        run_file(r);
}

static uint8_t *copy(void)
{
        uint8_t *c = malloc(base_len + 16);
        memcpy(c, base, base_len);
        return c;
}

static void expect_open_fail(const char *name, const uint8_t *img, size_t len, const char *needle)
{
        struct outcome r;
        run(img, len, &r);
        CHECK(r.stage == 1 && t_contains(r.open_msg, needle),
              "%s: want open to fail with \"%s\"; stage %d, open \"%s\", verify \"%s\"", name,
              needle, r.stage, r.open_msg, r.verify_msg);
}

/* Open succeeds; verify and load both fail, naming the same problem, and no memfd escapes. */
static void expect_load_fail(const char *name, const uint8_t *img, size_t len, const char *needle,
                             const char *needle2)
{
        struct outcome r;
        run(img, len, &r);
        CHECK(r.stage == 2 && r.verify_rc < 0 && r.load_rc < 0 && r.memfd == -1 &&
                  t_contains(r.verify_msg, needle) && t_contains(r.load_msg, needle) &&
                  t_contains(r.verify_msg, needle2) && t_contains(r.load_msg, needle2),
              "%s: want verify+load to fail with \"%s\"/\"%s\"; stage %d, open \"%s\", verify "
              "\"%s\", load \"%s\"",
              name, needle, needle2, r.stage, r.open_msg, r.verify_msg, r.load_msg);
}

static void make_base(void)
{
        ram = calloc(1, RAM_SIZE);
        uint64_t s = 5;
        for (uint64_t c = 0; c < 33; c++) {
                if (c % 4 == 3)
                        continue; /* an all-zero chunk, left out of the index */
                for (uint64_t p = 0; p < CHUNK / PG; p++) {
                        uint64_t off = c * CHUNK + p * PG;
                        if (off >= RAM_SIZE)
                                break;
                        uint64_t k = t_rand(&s) % 4;
                        if (k == 0)
                                t_fill_text(ram + off, PG, s);
                        else if (k == 1)
                                t_fill_random(ram + off, 256, s); /* mostly zero page */
                }
        }
        ram[RAM_SIZE - PG] = 9; /* the partial last chunk is present */
        static const char s0[24] = "vcpu0", s2[100] = "vcpu1", s3[1000] = "devices";
        struct snap_section secs[] = {
            {.tag = 1, .data = s0, .len = sizeof(s0)},
            {.tag = 2, .len = 0},
            {.tag = 1, .data = s2, .len = sizeof(s2)},
            {.tag = 3, .flags = 9, .data = s3, .len = sizeof(s3)},
        };
        struct snap_write_opts o = t_opts(path, ram, RAM_SIZE);
        o.chunk_size = CHUNK;
        o.sections = secs;
        o.nsections = 4;
        o.threads = 2;
        struct sprout_err err = {0};
        if (snap_write(&o, NULL, &err) < 0) {
                fprintf(stderr, "base snapshot: %s\n", err.msg);
                exit(1);
        }
        base = t_slurp(path, &base_len);
        memcpy(&H, base, sizeof(H));
        struct outcome r;
        run(base, base_len, &r);
        CHECK(r.stage == 0 && r.same_content, "the base file must load: %s %s %s", r.open_msg,
              r.verify_msg, r.load_msg);
        CHECK(H.nchunks >= 20 && H.nchunks < 33, "base has %llu chunks",
              (unsigned long long)H.nchunks);
}

static void truncations(void)
{
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0 && write(fd, base, base_len) == (ssize_t)base_len, "write truncation base");
        uint64_t sec_end = H.sections_off + H.sections_len;
        int bad = 0;
        /* Shrinking one file step by step costs an ftruncate per point, so every byte is tried. */
        for (size_t n = base_len; n-- > 0;) {
                if (ftruncate(fd, (off_t)n) < 0)
                        abort();
                struct snap_file *f = NULL;
                struct sprout_err err = {0};
                int rc = snap_open(path, &f, &err);
                const char *want = n < SNAP_HEADER_SIZE ? "shorter than the 256-byte header"
                                   : n < sec_end        ? "extends beyond the end of the"
                                                        : "truncated or trailing data";
                if (rc == 0 || !t_contains(err.msg, want)) {
                        if (bad++ < 5)
                                CHECK(0, "truncated to %zu: rc %d \"%s\", want \"%s\"", n, rc,
                                      err.msg, want);
                        snap_close(f);
                }
        }
        close(fd);
        CHECK(bad == 0, "%d of %zu truncation points were not rejected as expected", bad, base_len);

        uint8_t *c = copy();
        c[base_len] = 0;
        expect_open_fail("trailing byte", c, base_len + 1, "truncated or trailing data");
        free(c);

        /* A file that shrinks after a successful open is caught by the chunk reads. */
        struct snap_file *f;
        struct sprout_err err = {0};
        t_spit(path, base, base_len);
        CHECK(snap_open(path, &f, &err) == 0, "open before truncation: %s", err.msg);
        if (truncate(path, (off_t)(H.index_off - 10)) < 0)
                abort();
        sprout_err_clear(&err);
        int rc = snap_verify(f, &err);
        CHECK(rc < 0 && t_contains(err.msg, "file ended while reading"),
              "verify after truncation: %d %s", rc, err.msg);
        int memfd = -1;
        sprout_err_clear(&err);
        rc = snap_load_ram(f, 3, &memfd, NULL, &err);
        CHECK(rc < 0 && memfd == -1 && t_contains(err.msg, "file ended while reading"),
              "load after truncation: %d %s", rc, err.msg);
        snap_close(f);
}

static const char *header_flip_expect(size_t off, uint8_t x)
{
        /* minor 0 -> 1 is a version this reader knows: the checksum catches that flip. */
        if (off == 10 && x == 0x01)
                return "header+sections checksum mismatch";
        if (off < 8)
                return "bad magic";
        if (off < 10)
                return "different major version";
        if (off < 12)
                return "is newer than this reader";
        if (off < 16)
                return "header_size (offset 12)";
        if (off >= 96 && off < 112)
                return "section"; /* sections_off/len are bounded before the checksum is computed */
        return "header+sections checksum mismatch";
}

static void flips(void)
{
        uint8_t *c = copy();
        char name[128];
        int bad = 0;
        /* Every byte of the header, sections and index, each flipped alone (xor 0x80, then 0x01).
         */
        for (int pass = 0; pass < 2; pass++) {
                uint8_t x = pass ? 0x01 : 0x80;
                for (size_t off = 0; off < base_len; off++) {
                        bool in_data = off >= H.sections_off + H.sections_len && off < H.index_off;
                        if (in_data)
                                continue;
                        const char *want = off < SNAP_HEADER_SIZE ? header_flip_expect(off, x)
                                           : off < H.index_off ? "header+sections checksum mismatch"
                                                               : "chunk index checksum mismatch";
                        c[off] ^= x;
                        struct outcome r;
                        run(c, base_len, &r);
                        c[off] ^= x;
                        if (!(r.stage == 1 && t_contains(r.open_msg, want)) && bad++ < 5) {
                                snprintf(name, sizeof(name), "flip 0x%02x at %zu", x, off);
                                CHECK(0, "%s: stage %d \"%s\", want \"%s\"", name, r.stage,
                                      r.open_msg, want);
                        }
                }
        }
        CHECK(bad == 0, "%d header/section/index flips not rejected as expected", bad);

        /* Chunk frames: first, middle and last byte of every frame, and a stride through each. */
        bad = 0;
        for (uint64_t i = 0; i < H.nchunks; i++) {
                struct snap_fmt_entry *e = t_entry(base, i);
                char want[64];
                snprintf(want, sizeof(want), "chunk %llu (RAM offset 0x%llx", (unsigned long long)i,
                         (unsigned long long)e->ram_off);
                for (uint64_t k = 0; k < e->clen; k += (k < 16 || k + 16 > e->clen) ? 1 : 97) {
                        size_t off = e->file_off + k;
                        c[off] ^= 0x10;
                        struct outcome r;
                        run(c, base_len, &r);
                        c[off] ^= 0x10;
                        bool ok = r.stage == 2 && t_contains(r.verify_msg, want) &&
                                  t_contains(r.load_msg, want) &&
                                  t_contains(r.verify_msg, "frame checksum mismatch") &&
                                  r.memfd == -1;
                        if (!ok && bad++ < 5)
                                CHECK(0,
                                      "chunk %llu byte %llu flipped: stage %d verify \"%s\" load "
                                      "\"%s\"",
                                      (unsigned long long)i, (unsigned long long)k, r.stage,
                                      r.verify_msg, r.load_msg);
                }
        }
        CHECK(bad == 0, "%d chunk-data flips not rejected as expected", bad);

        /* Two bad chunks: the report names the lower one, whichever worker finds it first. */
        for (int rep = 0; rep < 5; rep++) {
                uint64_t lo = 2 + (uint64_t)rep, hi = H.nchunks - 1 - (uint64_t)rep;
                c[t_entry(base, hi)->file_off + 3] ^= 1;
                c[t_entry(base, lo)->file_off + 3] ^= 1;
                char want[32];
                snprintf(want, sizeof(want), "chunk %llu ", (unsigned long long)lo);
                expect_load_fail("two bad chunks", c, base_len, want, "frame checksum mismatch");
                c[t_entry(base, hi)->file_off + 3] ^= 1;
                c[t_entry(base, lo)->file_off + 3] ^= 1;
        }
        free(c);
}

/* A forged file: the mutation, then fresh checksums so the structural checks are what rejects it.
 */
#define FORGE(name, needle, ...)                                                                   \
        do {                                                                                       \
                uint8_t *c = copy();                                                               \
                struct snap_fmt_header *h = t_hdr(c);                                              \
                (void)h;                                                                           \
                __VA_ARGS__;                                                                       \
                t_reseal(c);                                                                       \
                expect_open_fail(name, c, base_len, needle);                                       \
                free(c);                                                                           \
        } while (0)

/* For the fields bounded before the checksum: no reseal, which would read what they claim. */
#define FORGE_NOSEAL(name, needle, ...)                                                            \
        do {                                                                                       \
                uint8_t *c = copy();                                                               \
                struct snap_fmt_header *h = t_hdr(c);                                              \
                (void)h;                                                                           \
                __VA_ARGS__;                                                                       \
                expect_open_fail(name, c, base_len, needle);                                       \
                free(c);                                                                           \
        } while (0)

#define FORGE_LOAD(name, needle, needle2, ...)                                                     \
        do {                                                                                       \
                uint8_t *c = copy();                                                               \
                struct snap_fmt_header *h = t_hdr(c);                                              \
                (void)h;                                                                           \
                __VA_ARGS__;                                                                       \
                t_reseal(c);                                                                       \
                expect_load_fail(name, c, base_len, needle, needle2);                              \
                free(c);                                                                           \
        } while (0)

static struct snap_fmt_section *section_prefix(uint8_t *c, unsigned n)
{
        uint64_t off = SNAP_HEADER_SIZE;
        for (unsigned i = 0; i < n; i++) {
                struct snap_fmt_section *s = (struct snap_fmt_section *)(c + off);
                off += SNAP_SEC_PREFIX + snapfmt_align(s->len);
        }
        return (struct snap_fmt_section *)(c + off);
}

/* An entry whose bitmap has a clear bit among the chunk's pages; returns that page. */
static uint64_t entry_with_hole(uint8_t *c, uint32_t *page)
{
        for (uint64_t i = 0; i + 1 < t_hdr(c)->nchunks; i++) {
                struct snap_fmt_entry *e = t_entry(c, i);
                for (uint32_t p = 0; p < CHUNK / PG; p++)
                        if (!snapfmt_bit(snapfmt_bitmap(e), p)) {
                                *page = p;
                                return i;
                        }
        }
        abort();
}

static void forged(void)
{
        uint64_t last = H.nchunks - 1;
        char want[128];

        FORGE_NOSEAL("wrong magic", "bad magic", memcpy(c, "SPROUTSX", 8));
        FORGE_NOSEAL("ELF magic", "not a sprout snapshot", memcpy(c, "\177ELF\2\1\1\0", 8));
        FORGE_NOSEAL("major 2",
                     "format version 2.0 has a different major version than this reader's 1.1",
                     h->major = 2);
        FORGE_NOSEAL("major 0", "format version 0.0 has a different major", h->major = 0);
        FORGE_NOSEAL("minor 2", "format version 1.2 is newer than this reader's 1.1", h->minor = 2);
        /* 1.1 knows the authenticator flag; 1.0 does not, and a 1.0 file must not claim it. */
        FORGE("auth flag on 1.0", "header flags (offset 140) are 0x1; format 1.0 defines 0x0",
              h->flags = 1);
        FORGE("auth flag, no tags", "the authenticator area ends at", h->flags = 1; h->minor = 1);
        FORGE("key id without flag", "reserved header byte at offset 168 is 0x01", c[168] = 1);
        FORGE("header_size", "header_size (offset 12) is 512, expected 256", h->header_size = 512);
        FORGE("1 TiB of RAM", "ram_size (offset 80) is 1099511627776", h->ram_size = 1ull << 40);
        FORGE("unaligned RAM", "ram_size (offset 80) is 2105345", h->ram_size = RAM_SIZE + 1);
        FORGE("10^6 vCPUs", "vcpus (offset 76) is 1000000, expected 1..64", h->vcpus = 1000000);
        FORGE("0 vCPUs", "vcpus (offset 76) is 0", h->vcpus = 0);
        FORGE("5000 sections", "nsections (offset 92) is 5000", h->nsections = 5000);
        FORGE("one section too many", "section 4 of 5: its prefix", h->nsections = 5);
        FORGE("one section too few", "follow the last of the 3 sections", h->nsections = 3);
        FORGE_NOSEAL("sections area beyond the file", "extends beyond the end of the",
                     h->sections_len = base_len);
        FORGE_NOSEAL("sections area over the cap",
                     "sections_len (offset 104) is 1073741824, over the cap",
                     h->sections_len = 1ull << 30);
        FORGE_NOSEAL("sections_off", "sections_off (offset 96) is 0", h->sections_off = 0);
        FORGE("section length 1 TiB", "section 3 (tag 0x3) at file offset",
              section_prefix(c, 3)->len = 1ull << 40);
        FORGE("section length over cap", "is over the cap of 67108864",
              section_prefix(c, 3)->len = SNAP_MAX_SECTION_LEN + 8);
        FORGE("section length past the area", "runs past the end of the sections area",
              section_prefix(c, 3)->len += 8);
        FORGE("section padding", "section 2 (tag 0x1): padding byte",
              ((uint8_t *)section_prefix(c, 2))[SNAP_SEC_PREFIX + 101] = 1);
        FORGE("chunk_size 3", "chunk_size (offset 88) is 3", h->chunk_size = 3);
        FORGE("chunk_size 128 MiB", "chunk_size (offset 88) is 134217728",
              h->chunk_size = 128u << 20);
        FORGE("chunk_size 2 MiB", "index_entry_size (offset 136) is 40, expected 96",
              h->chunk_size = 2u << 20);
        FORGE("10^6 chunks", "nchunks (offset 112) is 1000000, but", h->nchunks = 1000000);
        FORGE("index_len", "index_len (offset 128)", h->index_len -= h->index_entry_size);
        FORGE("index_entry_size", "index_entry_size (offset 136)", h->index_entry_size = 48);
        FORGE("reserved byte", "reserved header byte at offset 200 is 0x01", c[200] = 1);
        FORGE("header flags", "header flags (offset 140)", h->flags = 4);
        FORGE("vendor not terminated", "cpu_vendor (offset 44) is not NUL-terminated",
              memset(h->cpu_vendor, 'G', 16));
        FORGE("nonzero_pages off by one", "nonzero_pages (offset 144) is", h->nonzero_pages++);
        FORGE("nonzero_pages beyond RAM", "more than the 514 pages of RAM",
              h->nonzero_pages = 1 << 20);

        FORGE("duplicate chunk", "chunk 1 (index entry at file offset",
              t_entry(c, 1)->ram_off = t_entry(c, 0)->ram_off);
        FORGE("duplicate chunk says so", "unsorted or duplicated",
              t_entry(c, 1)->ram_off = t_entry(c, 0)->ram_off);
        FORGE("unsorted chunks", "chunk 2 (index entry at file offset", {
                uint64_t t = t_entry(c, 1)->ram_off;
                t_entry(c, 1)->ram_off = t_entry(c, 2)->ram_off;
                t_entry(c, 2)->ram_off = t;
        });
        FORGE("overlapping frames", "chunk 1 (RAM offset",
              t_entry(c, 1)->file_off = t_entry(c, 0)->file_off);
        FORGE("overlapping frames says so", "overlap or gap", t_entry(c, 1)->file_off -= 1);
        FORGE("frame over the header", "chunk 0 (RAM offset 0x0): frame at file offset 0, expected",
              t_entry(c, 0)->file_off = 0);
        FORGE("gap between frames", "overlap or gap", t_entry(c, 0)->clen -= 1);
        snprintf(want, sizeof(want), "chunk %llu (RAM offset 0x%llx): frame [",
                 (unsigned long long)last, (unsigned long long)t_entry(base, last)->ram_off);
        FORGE("frame into the index", want, t_entry(c, last)->clen += 1);
        snprintf(want, sizeof(want),
                 "chunk %llu (index entry at file offset %llu): ram_off 0x%x is beyond RAM",
                 (unsigned long long)last,
                 (unsigned long long)(H.index_off + last * H.index_entry_size), 33 * CHUNK);
        FORGE("chunk beyond RAM", want, t_entry(c, last)->ram_off = 33 * CHUNK);
        FORGE("chunk beyond RAM by far", "is beyond RAM", t_entry(c, last)->ram_off = 1ull << 62);
        FORGE("unaligned chunk", "is not a multiple of chunk_size 65536",
              t_entry(c, 0)->ram_off += PG);
        FORGE("clen 0", "clen 0 is outside", t_entry(c, 0)->clen = 0);
        FORGE("clen 4 GiB", "clen 4294967295 is outside", t_entry(c, 0)->clen = UINT32_MAX);
        FORGE("npages off by one", "npages is", {
                t_entry(c, 0)->npages++;
                h->nonzero_pages++;
        });
        FORGE("bitmap padding bit", "bitmap marks page 20, beyond the 16 pages", {
                ((uint8_t *)t_entry(c, 0))[SNAP_ENTRY_FIXED + 2] |= 0x10;
                t_entry(c, 0)->npages++;
                h->nonzero_pages++;
        });
        FORGE("bitmap beyond the end of RAM", "bitmap marks page 5, beyond the 2 pages", {
                ((uint8_t *)t_entry(c, last))[SNAP_ENTRY_FIXED] |= 0x20;
                t_entry(c, last)->npages++;
                h->nonzero_pages++;
        });
        FORGE("empty chunk", "stores no pages", {
                struct snap_fmt_entry *e = t_entry(c, 0);
                h->nonzero_pages -= e->npages;
                e->npages = 0;
                memset((uint8_t *)e + SNAP_ENTRY_FIXED, 0, H.index_entry_size - SNAP_ENTRY_FIXED);
        });

        /* Structurally fine, wrong only against the frame itself: caught by verify and load. */
        uint32_t page;
        uint64_t hole = entry_with_hole(base, &page);
        snprintf(want, sizeof(want), "chunk %llu ", (unsigned long long)hole);
        FORGE_LOAD(
            "bitmap inconsistent with the frame", want, "bytes of content but the bitmap marks", {
                    struct snap_fmt_entry *e = t_entry(c, hole);
                    ((uint8_t *)e)[SNAP_ENTRY_FIXED + page / 8] |= (uint8_t)(1u << (page % 8));
                    e->npages++;
                    h->nonzero_pages++;
            });
        FORGE_LOAD("zstd content checksum", "chunk 4 ",
                   "zstd: Restored data doesn't match checksum", {
                           struct snap_fmt_entry *e = t_entry(c, 4);
                           c[e->file_off + e->clen - 1] ^= 0x40;
                           e->frame_hash = snapfmt_hash(c + e->file_off, e->clen);
                   });
        FORGE_LOAD("corrupt compressed data", "chunk 6 ", "zstd: ", {
                struct snap_fmt_entry *e = t_entry(c, 6);
                memset(c + e->file_off + 12, 0xff, e->clen / 2);
                e->frame_hash = snapfmt_hash(c + e->file_off, e->clen);
        });
        FORGE_LOAD("frame without checksum", "chunk 5 ", "frame has no content checksum", {
                struct snap_fmt_entry *e = t_entry(c, 5);
                c[e->file_off + 4] &= (uint8_t)~0x04;
                e->frame_hash = snapfmt_hash(c + e->file_off, e->clen);
        });
        FORGE_LOAD("not a zstd frame", "chunk 7 ", "is not a zstd frame", {
                struct snap_fmt_entry *e = t_entry(c, 7);
                memset(c + e->file_off, 0x11, 4);
                e->frame_hash = snapfmt_hash(c + e->file_off, e->clen);
        });
}

static void fuzz(void)
{
        uint64_t s = 1234;
        int undetected = 0;
        for (int it = 0; it < 3000; it++) {
                uint8_t *c = copy();
                unsigned k = 1 + (unsigned)(t_rand(&s) % 3);
                size_t pos[3];
                for (unsigned j = 0; j < k; j++) {
                again:
                        pos[j] = (size_t)(t_rand(&s) % base_len);
                        for (unsigned q = 0; q < j; q++)
                                if (pos[q] == pos[j])
                                        goto again;
                        c[pos[j]] ^= (uint8_t)(1u << (t_rand(&s) % 8));
                }
                bool reseal = it % 2;
                struct snap_fmt_header *h = t_hdr(c);
                if (reseal && h->sections_off == SNAP_HEADER_SIZE && h->sections_len <= base_len &&
                    h->index_off <= base_len && h->index_len <= base_len - h->index_off &&
                    h->sections_len <= base_len - SNAP_HEADER_SIZE)
                        t_reseal(c);
                else
                        reseal = false;
                struct outcome r;
                run(c, base_len, &r);
                /* Without resealing, every flip anywhere must be detected. */
                if (!reseal && r.stage == 0 && undetected++ < 5)
                        CHECK(0, "fuzz %d: %u flips at %zu.. went unnoticed", it, k, pos[0]);
                free(c);
        }
        CHECK(undetected == 0, "%d unresealed corruptions loaded", undetected);
}

int main(void)
{
        int fds = t_count_fds();
        dir = t_tmpdir("snap-hostile");
        snprintf(path, sizeof(path), "%s/h.snap", dir);
        make_base();
        truncations();
        flips();
        forged();
        fuzz();
        t_rmdir(dir);
        free(base);
        free(ram);
        CHECK(t_count_fds() == fds, "fd leak: %d open, %d at start", t_count_fds(), fds);
        return check_finish();
}
