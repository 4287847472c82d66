/* The working set without KVM: recorded from the page tables of a private mapping of a memfd (the
 * way a clone maps its base), parsed back, pre-faulted into a fresh mapping page for page, and a
 * forged section refused field by field. White-box: a VM with only its RAM mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/check.h"
#include "sprout/vmstate.h"
#include "vmm_internal.h"

#define PG     4096u
#define RAM    (4u << 20) /* 1024 pages */
#define NPAGES (RAM / PG)

static int base_fd = -1;

/* A base: a memfd with every page non-zero, as a loaded snapshot's RAM. */
static void make_base(void)
{
        base_fd = memfd_create("ws-base", MFD_CLOEXEC);
        CHECK(base_fd >= 0 && ftruncate(base_fd, RAM) == 0, "memfd: %s", strerror(errno));
        uint8_t *m = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, base_fd, 0);
        CHECK(m != MAP_FAILED, "mmap base");
        for (unsigned i = 0; i < NPAGES; i++)
                m[i * PG] = (uint8_t)(i | 1);
        munmap(m, RAM);
}

static void map_clone(struct sprout_vm *vm)
{
        /* A KVM without KVM_PRE_FAULT_MEMORY: only the host mapping is prepared, which is what
         * this test reads back. */
        static struct sprout_kvm no_kvm;
        memset(vm, 0, sizeof(*vm));
        vm->kvm = &no_kvm;
        vm->ram_size = RAM;
        vm->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE, base_fd, 0);
        CHECK(vm->ram != MAP_FAILED, "mmap clone: %s", strerror(errno));
}

/* 'r' read, 'w' written, '-' absent, for page i, from /proc/self/pagemap. */
static char page_state(const struct sprout_vm *vm, unsigned i)
{
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        uint64_t e = 0;
        off_t off = (off_t)(((uintptr_t)vm->ram / PG + i) * sizeof(e));
        CHECK(fd >= 0 && pread(fd, &e, sizeof(e), off) == (ssize_t)sizeof(e), "pagemap");
        close(fd);
        if (!(e & (1ULL << 63)))
                return '-';
        return (e & (1ULL << 61)) ? 'r' : 'w';
}

static void test_roundtrip(void)
{
        struct sprout_err err = {0};
        struct sprout_vm a, b;
        map_clone(&a);
        /* Reads at 10..19 and 500; writes at 30..32 and 1023 (the last page). */
        volatile uint8_t sink = 0;
        for (unsigned i = 10; i < 20; i++)
                sink += a.ram[i * PG];
        sink += a.ram[500 * PG];
        for (unsigned i = 30; i < 33; i++)
                a.ram[i * PG] = 7;
        a.ram[1023 * PG] = 9;
        (void)sink;

        void *data;
        uint64_t len;
        struct sprout_working_set sum, ws;
        CHECK(sprout_vm_record_working_set(&a, &data, &len, &sum, &err) == 0, "record: %s",
              err.msg);
        /* The kernel maps a read fault's neighbours too (fault-around), so the read set holds
         * at least the pages read; the write set is exactly the pages written. */
        CHECK(sum.read_pages >= 11 && sum.write_pages == 4 && sum.nwrite == 2,
              "recorded %llu read pages in %u runs, %llu written in %u",
              (unsigned long long)sum.read_pages, sum.nread, (unsigned long long)sum.write_pages,
              sum.nwrite);
        CHECK(sprout_working_set_parse(data, len, RAM, &ws, &err) == 0, "parse: %s", err.msg);
        CHECK(ws.nread == sum.nread && ws.runs[ws.nread].first == 30 &&
                  ws.runs[ws.nread].npages == 3 && ws.runs[ws.nread + 1].first == 1023,
              "the write runs differ from the pages written");
        char want[NPAGES];
        for (unsigned i = 0; i < NPAGES; i++)
                want[i] = page_state(&a, i);
        for (unsigned i = 10; i < 20; i++)
                CHECK(want[i] == 'r', "page %u was read but is '%c'", i, want[i]);

        /* A fresh clone pre-faulted: every page the first had, of the same kind (read ones still
         * the base's, written ones its own copies holding the base's bytes), and nothing written
         * besides. */
        map_clone(&b);
        CHECK(vm_populate_working_set(&b, &ws, true) == 0, "populate: %s", strerror(errno));
        unsigned wrong = 0, extra = 0;
        for (unsigned i = 0; i < NPAGES; i++) {
                char got = page_state(&b, i);
                if (want[i] == '-' && got == 'r') {
                        extra++; /* fault-around of the populate's own reads */
                        continue;
                }
                if (got != want[i] && wrong++ < 5)
                        CHECK(0, "page %u is '%c', want '%c'", i, got, want[i]);
        }
        CHECK(wrong == 0, "%u pages not as recorded (%u more mapped)", wrong, extra);
        CHECK(b.ram[30 * PG] == (30 | 1) && b.ram[1023 * PG] == (uint8_t)(1023 | 1),
              "a pre-copied page does not hold the base's bytes");
        sprout_working_set_free(&ws);
        free(data);
        munmap(a.ram, RAM);
        munmap(b.ram, RAM);
}

/* A section with runs (first, npages) pairs, n of them, nread of them read runs. */
static size_t forge(uint8_t *buf, uint32_t version, uint64_t ram_pages, uint32_t nread,
                    uint32_t nwrite, const uint32_t *runs, unsigned n)
{
        uint32_t h32[2] = {version, PG};
        memcpy(buf, h32, 8);
        memcpy(buf + 8, &ram_pages, 8);
        memcpy(buf + 16, &nread, 4);
        memcpy(buf + 20, &nwrite, 4);
        memset(buf + 24, 0, 8);
        memcpy(buf + 32, runs, n * 8);
        return 32 + n * 8;
}

static void test_forged(void)
{
        uint8_t buf[256];
        struct sprout_err err;
        struct sprout_working_set ws;
        const uint32_t good[] = {1, 2, 10, 1, 5, 3};
        size_t n = forge(buf, 1, NPAGES, 2, 1, good, 3);
        CHECK(sprout_working_set_parse(buf, n, RAM, &ws, &err) == 0 && ws.read_pages == 3 &&
                  ws.write_pages == 3,
              "a good section: %s", err.msg);
        sprout_working_set_free(&ws);

        static const struct {
                const char *what;
                uint32_t version;
                uint64_t ram_pages;
                uint32_t nread, nwrite;
                uint32_t runs[6];
                unsigned n;
                int cut; /* bytes off the end */
        } bad[] = {
            {"another version", 2, NPAGES, 1, 0, {1, 1}, 1, 0},
            {"recorded on other RAM", 1, NPAGES * 2, 1, 0, {1, 1}, 1, 0},
            {"a length short of its runs", 1, NPAGES, 2, 0, {1, 1, 5, 1}, 2, 8},
            {"run counts that overflow", 1, NPAGES, 0xffffffffu, 2, {1, 1}, 1, 0},
            {"an empty run", 1, NPAGES, 1, 0, {4, 0}, 1, 0},
            {"a run past RAM", 1, NPAGES, 1, 0, {NPAGES - 1, 2}, 1, 0},
            {"a run at 2^32 - 1 pages", 1, NPAGES, 1, 0, {1, 0xffffffffu}, 1, 0},
            {"overlapping runs", 1, NPAGES, 2, 0, {1, 5, 3, 1}, 2, 0},
            {"runs out of order", 1, NPAGES, 0, 2, {9, 1, 3, 1}, 2, 0},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                n = forge(buf, bad[i].version, bad[i].ram_pages, bad[i].nread, bad[i].nwrite,
                          bad[i].runs, bad[i].n);
                memset(&err, 0, sizeof(err));
                int r = sprout_working_set_parse(buf, n - (size_t)bad[i].cut, RAM, &ws, &err);
                CHECK(r == -EINVAL && err.msg[0] && !ws.runs, "%s: accepted (%d)", bad[i].what, r);
        }
        CHECK(sprout_working_set_parse(buf, 31, RAM, &ws, &err) == -EINVAL, "a short header");
        uint64_t zero_reserved_not = 1;
        n = forge(buf, 1, NPAGES, 1, 0, good, 1);
        memcpy(buf + 24, &zero_reserved_not, 8);
        CHECK(sprout_working_set_parse(buf, n, RAM, &ws, &err) == -EINVAL, "reserved not zero");
}

int main(void)
{
        make_base();
        test_roundtrip();
        test_forged();
        close(base_fd);
        return check_finish();
}
