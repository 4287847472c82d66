/* Round trip: RAM mixing zero, random, patterned and sparse pages and several sections is written,
 * reopened, compared section by section and loaded into a sealed, sparse memfd compared byte for
 * byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "snap_test.h"

#define MiB (1ull << 20)
#define PG  SNAP_PAGE_SIZE

enum { TAG_VCPU = 0x56435055, TAG_IRQ = 0x49525143, TAG_BLOB = 0x424c4f42 };

static uint64_t count_nonzero_pages(const uint8_t *ram, uint64_t size)
{
        uint64_t n = 0;
        for (uint64_t off = 0; off < size; off += PG)
                for (uint64_t k = 0; k < PG; k++)
                        if (ram[off + k]) {
                                n++;
                                break;
                        }
        return n;
}

/* 48 MiB + 12 KiB: the last chunk is partial whatever the chunk size. */
static uint8_t *make_ram(uint64_t *size)
{
        uint64_t sz = 48 * MiB + 3 * PG;
        uint8_t *r = calloc(1, sz);
        uint64_t c = 2 * MiB;
        /* chunk 0: all zero */
        t_fill_random(r + c, c, 1); /* chunk 1: random */
        for (uint64_t p = 0; p < c / PG; p += 2)
                t_fill_random(r + 2 * c + p * PG, PG, 100 + p); /* chunk 2: every other page */
        for (uint64_t p = 0; p < c / PG; p++)
                memset(r + 3 * c + p * PG, 0xab + (int)(p % 3), PG); /* chunk 3: repeated bytes */
        r[5 * c - 1] = 0x5a;                                         /* chunk 4: one byte */
        t_fill_text(r + 5 * c, PG, 7);                               /* chunk 5: first page */
        t_fill_text(r + 9 * c + 100 * PG, 37 * PG, 9);               /* a run mid-chunk */
        for (uint64_t p = 0; p < 40; p++)
                t_fill_text(r + 12 * c + p * 3 * PG, PG, 200 + p); /* scattered text pages */
        r[sz - PG + 17] = 1;                                       /* partial last chunk */
        *size = sz;
        return r;
}

struct prog {
        uint64_t last, calls;
        bool monotonic;
};

static int progress(void *ctx, uint64_t done, uint64_t total)
{
        struct prog *p = ctx;
        if (done < p->last || done > total)
                p->monotonic = false;
        p->last = done;
        p->calls++;
        return 0;
}

static void check_sealed_memfd(int fd, const uint8_t *ram, uint64_t size, const char *what)
{
        int seals = fcntl(fd, F_GET_SEALS);
        int want = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
        CHECK(seals == want, "%s: seals 0x%x, want 0x%x", what, seals, want);
        struct stat sb;
        CHECK(fstat(fd, &sb) == 0 && (uint64_t)sb.st_size == size, "%s: memfd size %lld, want %llu",
              what, (long long)sb.st_size, (unsigned long long)size);

        uint8_t *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(m != MAP_FAILED, "%s: mmap shared read-only: %s", what, strerror(errno));
        if (m != MAP_FAILED) {
                CHECK(memcmp(m, ram, size) == 0, "%s: loaded RAM differs from the original", what);
                munmap(m, size);
        }
        errno = 0;
        CHECK(pwrite(fd, "x", 1, 0) < 0 && errno == EPERM, "%s: pwrite to the sealed memfd: %s",
              what, strerror(errno));
        void *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(w == MAP_FAILED && errno == EPERM,
              "%s: writable shared mmap of a sealed memfd succeeded", what);
        if (w != MAP_FAILED)
                munmap(w, size);
        CHECK(ftruncate(fd, (off_t)size * 2) < 0, "%s: growing a sealed memfd succeeded", what);
        CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 && errno == EPERM,
              "%s: seals could still be changed", what);

        /* A clone's view: private writes must not reach the base. */
        uint8_t *pv = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        CHECK(pv != MAP_FAILED, "%s: MAP_PRIVATE mapping: %s", what, strerror(errno));
        if (pv != MAP_FAILED) {
                pv[PG] ^= 0xff;
                uint8_t b;
                CHECK(pread(fd, &b, 1, PG) == 1 && b == ram[PG],
                      "%s: private write leaked into base", what);
                munmap(pv, size);
        }
}

static void roundtrip(const char *dir, const uint8_t *ram, uint64_t size, uint32_t chunk,
                      unsigned threads, int level)
{
        char path[512], what[128];
        uint32_t cs = chunk ? chunk : SNAP_DEFAULT_CHUNK;
        snprintf(path, sizeof(path), "%s/rt-%u-%u.snap", dir, chunk, threads);
        snprintf(what, sizeof(what), "chunk %u KiB, %u threads, level %d", cs >> 10, threads,
                 level);

        static uint8_t blob[MiB + 3];
        t_fill_random(blob, sizeof(blob), 42);
        const char v0[] = "vcpu0 regs", v1[] = "vcpu1 regs and more", v2[] = "v2";
        struct snap_section secs[] = {
            {.tag = TAG_VCPU, .flags = 0, .data = v0, .len = sizeof(v0)},
            {.tag = TAG_IRQ, .flags = 7, .data = NULL, .len = 0},
            {.tag = TAG_VCPU, .flags = 1, .data = v1, .len = sizeof(v1)},
            {.tag = TAG_BLOB, .flags = 0, .data = blob, .len = sizeof(blob)},
            {.tag = TAG_VCPU, .flags = 2, .data = v2, .len = sizeof(v2)},
        };
        const unsigned nsec = sizeof(secs) / sizeof(secs[0]);
        uint8_t uuid[16];
        for (int i = 0; i < 16; i++)
                uuid[i] = (uint8_t)(0xa0 + i);
        struct prog pr = {.monotonic = true};
        struct snap_write_opts o = t_opts(path, ram, size);
        o.uuid = uuid;
        o.chunk_size = chunk;
        o.threads = threads;
        o.zstd_level = level;
        o.vcpus = 3;
        o.sections = secs;
        o.nsections = nsec;
        o.progress = progress;
        o.progress_ctx = &pr;

        struct snap_write_stats ws;
        struct sprout_err err = {0};
        int rc = snap_write(&o, &ws, &err);
        CHECK(rc == 0, "%s: snap_write: %d %s", what, rc, err.msg);
        if (rc)
                return;
        uint64_t nz = count_nonzero_pages(ram, size);
        CHECK(ws.nonzero_bytes == nz * PG, "%s: nonzero_bytes %llu, want %llu", what,
              (unsigned long long)ws.nonzero_bytes, (unsigned long long)(nz * PG));
        CHECK(pr.monotonic && pr.last == size && pr.calls == (size + cs - 1) / cs,
              "%s: progress monotonic %d, last %llu of %llu, calls %llu", what, pr.monotonic,
              (unsigned long long)pr.last, (unsigned long long)size, (unsigned long long)pr.calls);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == ws.file_size &&
                  (sb.st_mode & 0777) == 0600,
              "%s: file size %lld mode %o, stats say %llu", what, (long long)sb.st_size,
              sb.st_mode & 0777, (unsigned long long)ws.file_size);
        CHECK(t_count_entries(dir) >= 1, "%s: directory listing", what);

        struct snap_file *f;
        sprout_err_clear(&err);
        rc = snap_open(path, &f, &err);
        CHECK(rc == 0, "%s: snap_open: %s", what, err.msg);
        if (rc)
                return;
        const struct snap_info *in = snap_get_info(f);
        CHECK(memcmp(in->uuid, uuid, 16) == 0, "%s: uuid differs", what);
        CHECK(in->major == 1 && in->minor == 0, "%s: version %u.%u", what, in->major, in->minor);
        CHECK(in->ram_size == size && in->vcpus == 3 && in->chunk_size == cs,
              "%s: ram %llu vcpus %u chunk %u", what, (unsigned long long)in->ram_size, in->vcpus,
              in->chunk_size);
        CHECK(!strcmp(in->host.cpu_vendor, "GenuineIntel") && in->host.family == 6 &&
                  in->host.model == 85 && in->host.stepping == 7 && in->host.kvm_api == 12 &&
                  in->host.host_kind == 1,
              "%s: host facts differ", what);
        CHECK(in->nonzero_pages == nz && in->nchunks == ws.chunks && in->file_size == ws.file_size,
              "%s: nonzero_pages %llu (want %llu), nchunks %llu (write said %llu)", what,
              (unsigned long long)in->nonzero_pages, (unsigned long long)nz,
              (unsigned long long)in->nchunks, (unsigned long long)ws.chunks);
        CHECK(in->created_ns > 1700000000ull * 1000000000ull, "%s: created_ns %llu", what,
              (unsigned long long)in->created_ns);
        CHECK(in->nsections == nsec, "%s: nsections %u", what, in->nsections);

        for (unsigned i = 0; i < nsec; i++) {
                struct snap_section s;
                rc = snap_section_at(f, i, &s);
                CHECK(rc == 0 && s.tag == secs[i].tag && s.flags == secs[i].flags &&
                          s.len == secs[i].len &&
                          (s.len == 0 || !memcmp(s.data, secs[i].data, s.len)) &&
                          ((uintptr_t)s.data % 8) == 0,
                      "%s: section %u differs", what, i);
        }
        struct snap_section s;
        CHECK(snap_section_at(f, nsec, &s) == -ENOENT, "%s: section_at past the end", what);
        CHECK(snap_section(f, TAG_VCPU, 1, &s) == 0 && s.len == sizeof(v1) &&
                  !memcmp(s.data, v1, s.len),
              "%s: (VCPU, 1) lookup", what);
        CHECK(snap_section(f, TAG_VCPU, 2, &s) == 0 && s.len == sizeof(v2) && s.flags == 2,
              "%s: (VCPU, 2) lookup", what);
        CHECK(snap_section(f, TAG_VCPU, 3, &s) == -ENOENT, "%s: (VCPU, 3) must be absent", what);
        CHECK(snap_section(f, TAG_IRQ, 0, &s) == 0 && s.len == 0 && s.flags == 7,
              "%s: empty section", what);
        CHECK(snap_section(f, 0xdead, 0, &s) == -ENOENT, "%s: unknown tag must be absent", what);

        sprout_err_clear(&err);
        rc = snap_verify(f, &err);
        CHECK(rc == 0, "%s: snap_verify: %s", what, err.msg);

        int memfd = -1;
        struct snap_load_stats ls;
        sprout_err_clear(&err);
        rc = snap_load_ram(f, threads, &memfd, &ls, &err);
        CHECK(rc == 0 && memfd >= 0, "%s: snap_load_ram: %s", what, err.msg);
        if (rc == 0) {
                CHECK(ls.written_bytes == nz * PG, "%s: written_bytes %llu want %llu", what,
                      (unsigned long long)ls.written_bytes, (unsigned long long)(nz * PG));
                CHECK(ls.read_bytes == in->compressed_bytes, "%s: read_bytes %llu want %llu", what,
                      (unsigned long long)ls.read_bytes, (unsigned long long)in->compressed_bytes);
                /* Left-out pages are holes: allocated memory tracks the non-zero pages only.
                 * Checked first because a read fault on a shmem hole allocates the page. */
                struct stat ms;
                fstat(memfd, &ms);
                uint64_t alloc = (uint64_t)ms.st_blocks * 512;
                CHECK(alloc <= nz * PG + 64 * PG && alloc < size / 4,
                      "%s: memfd allocates %llu bytes for %llu non-zero bytes of %llu", what,
                      (unsigned long long)alloc, (unsigned long long)(nz * PG),
                      (unsigned long long)size);
                check_sealed_memfd(memfd, ram, size, what);
                close(memfd);
        }
        snap_close(f);
}

static void zero_ram(const char *dir)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/zero.snap", dir);
        uint64_t size = 8 * MiB;
        uint8_t *ram = calloc(1, size);
        struct snap_write_opts o = t_opts(path, ram, size);
        struct snap_write_stats ws;
        struct sprout_err err = {0};
        int rc = snap_write(&o, &ws, &err);
        CHECK(rc == 0 && ws.chunks == 0 && ws.file_size == SNAP_HEADER_SIZE,
              "all-zero RAM: rc %d chunks %llu size %llu: %s", rc, (unsigned long long)ws.chunks,
              (unsigned long long)ws.file_size, err.msg);
        struct snap_file *f;
        rc = snap_open(path, &f, &err);
        CHECK(rc == 0, "all-zero RAM: open: %s", err.msg);
        if (rc == 0) {
                int fd = -1;
                CHECK(snap_verify(f, &err) == 0, "all-zero RAM: verify: %s", err.msg);
                rc = snap_load_ram(f, 0, &fd, NULL, &err);
                CHECK(rc == 0, "all-zero RAM: load: %s", err.msg);
                if (rc == 0) {
                        struct stat ms;
                        fstat(fd, &ms);
                        CHECK(ms.st_blocks == 0, "all-zero RAM: memfd has %lld blocks",
                              (long long)ms.st_blocks);
                        check_sealed_memfd(fd, ram, size, "all-zero RAM");
                        close(fd);
                }
                snap_close(f);
        }
        free(ram);
}

static void uuids_and_replace(const char *dir)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/replace.snap", dir);
        uint8_t ram[4 * PG] = {1};
        struct snap_write_opts o = t_opts(path, ram, sizeof(ram));
        struct sprout_err err = {0};
        uint8_t first[16];
        struct snap_file *f;

        CHECK(snap_write(&o, NULL, &err) == 0, "replace: first write: %s", err.msg);
        CHECK(snap_open(path, &f, &err) == 0, "replace: open 1: %s", err.msg);
        memcpy(first, snap_get_info(f)->uuid, 16);
        snap_close(f);
        bool nonzero = false;
        for (int i = 0; i < 16; i++)
                nonzero |= first[i] != 0;
        CHECK(nonzero, "generated uuid is all zero");

        ram[0] = 2;
        CHECK(snap_write(&o, NULL, &err) == 0, "replace: second write: %s", err.msg);
        CHECK(snap_open(path, &f, &err) == 0, "replace: open 2: %s", err.msg);
        CHECK(memcmp(first, snap_get_info(f)->uuid, 16) != 0, "two writes generated the same uuid");
        int fd = -1;
        CHECK(snap_load_ram(f, 1, &fd, NULL, &err) == 0, "replace: load: %s", err.msg);
        uint8_t b = 0;
        CHECK(fd >= 0 && pread(fd, &b, 1, 0) == 1 && b == 2, "replace: file holds %u, want 2", b);
        if (fd >= 0)
                close(fd);
        snap_close(f);
}

static void bad_opts(const char *dir)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/bad.snap", dir);
        static uint8_t ram[16 * PG];
        ram[0] = 1;
        struct snap_section big = {.tag = 1, .data = ram, .len = SNAP_MAX_SECTION_LEN + 1};
        struct snap_section many[SNAP_MAX_SECTIONS + 1];
        memset(many, 0, sizeof(many));
        struct {
                const char *name, *expect;
                struct snap_write_opts o;
        } cases[] = {
            {"chunk 3 MiB", "chunk_size 3145728"},
            {"chunk 32 KiB", "chunk_size 32768"},
            {"ram 4097", "ram_size 4097"},
            {"ram 0", "ram_size 0"},
            {"ram 1 TiB", "ram_size 1099511627776"},
            {"vcpus 0", "vcpus 0"},
            {"vcpus 65", "vcpus 65"},
            {"level 99", "zstd_level 99"},
            {"threads 1000", "1000 threads"},
            {"section too long", "over the cap"},
            {"1025 sections", "1025 sections"},
            {"vendor", "cpu_vendor is not NUL-terminated"},
            {"ram NULL", "ram is NULL"},
        };
        const unsigned n = sizeof(cases) / sizeof(cases[0]);
        for (unsigned i = 0; i < n; i++)
                cases[i].o = t_opts(path, ram, sizeof(ram));
        cases[0].o.chunk_size = 3 * MiB;
        cases[1].o.chunk_size = 32 << 10;
        cases[2].o.ram_size = 4097;
        cases[3].o.ram_size = 0;
        cases[4].o.ram_size = 1ull << 40;
        cases[5].o.vcpus = 0;
        cases[6].o.vcpus = 65;
        cases[7].o.zstd_level = 99;
        cases[8].o.threads = 1000;
        cases[9].o.sections = &big;
        cases[9].o.nsections = 1;
        cases[10].o.sections = many;
        cases[10].o.nsections = SNAP_MAX_SECTIONS + 1;
        memset(cases[11].o.host.cpu_vendor, 'A', 16);
        cases[12].o.ram = NULL;
        for (unsigned i = 0; i < n; i++) {
                struct sprout_err err = {0};
                int rc = snap_write(&cases[i].o, NULL, &err);
                CHECK(rc == -EINVAL && t_contains(err.msg, cases[i].expect),
                      "bad opts %s: rc %d msg \"%s\", want \"%s\"", cases[i].name, rc, err.msg,
                      cases[i].expect);
        }
        CHECK(t_count_entries(dir) == 0, "bad opts left %d files behind", t_count_entries(dir));

        struct snap_file *f = NULL;
        struct sprout_err err = {0};
        int rc = snap_open(path, &f, &err);
        CHECK(rc == -ENOENT && t_contains(err.msg, path) && f == NULL,
              "open of a missing file: %d %s", rc, err.msg);
        sprout_err_clear(&err);
        rc = snap_open(dir, &f, &err);
        CHECK(rc < 0 && t_contains(err.msg, "not a regular file"), "open of a directory: %d %s", rc,
              err.msg);
        snprintf(path, sizeof(path), "%s/", dir);
        struct snap_write_opts o = t_opts(path, ram, sizeof(ram));
        sprout_err_clear(&err);
        rc = snap_write(&o, NULL, &err);
        CHECK(rc == -EISDIR && t_contains(err.msg, "names a directory"), "write to dir/: %d %s", rc,
              err.msg);
}

int main(void)
{
        int fds = t_count_fds();
        const char *dir = t_tmpdir("snap-rt");
        uint64_t size;
        uint8_t *ram = make_ram(&size);

        roundtrip(dir, ram, size, 0, 3, 0);              /* defaults: 2 MiB, level 3 */
        roundtrip(dir, ram, size, SNAP_MIN_CHUNK, 1, 1); /* smallest chunks, one thread */
        roundtrip(dir, ram, size, SNAP_MAX_CHUNK, 0, 9); /* one partial chunk bigger than RAM */
        roundtrip(dir, ram, size, 1u << 20, 7, -5);      /* negative (fast) level */
        zero_ram(dir);
        uuids_and_replace(dir);
        t_rmdir(dir);
        free(ram);

        const char *dir2 = t_tmpdir("snap-bad");
        bad_opts(dir2);
        t_rmdir(dir2);

        CHECK(t_count_fds() == fds, "fd leak: %d open, %d at start", t_count_fds(), fds);
        return check_finish();
}
