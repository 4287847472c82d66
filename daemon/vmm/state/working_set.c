/* A clone's working set: recorded from the host's page tables of a warmed-up clone's RAM mapping,
 * stored as the SPROUT_SEC_WORKING_SET section, and pre-faulted into new and recycled clones
 * (docs/snapshot-format.md, "Working set"; docs/architecture.md, "The working set"). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sprout/log.h"
#include "sprout/vmstate.h"
#include "vmm_internal.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ  22 /* Linux 5.14 */
#define MADV_POPULATE_WRITE 23
#endif

#define WS_VERSION   1u
#define WS_PAGE      4096u
#define WS_HDR_BYTES 32u
/* Runs kept, at most: 256 KiB of section, well inside a worker message (wire.h). A set more
 * scattered than that is cut short, which costs only the pre-faulting of the rest. */
#define WS_MAX_RUNS 32768u

/* The section: this header, then nread + nwrite runs of {u32 first page, u32 pages}. */
struct ws_hdr {
        uint32_t version;   /* WS_VERSION */
        uint32_t page_size; /* WS_PAGE */
        uint64_t ram_pages; /* of the snapshot the set was recorded on */
        uint32_t nread, nwrite;
        uint64_t reserved; /* 0 */
};
_Static_assert(sizeof(struct ws_hdr) == WS_HDR_BYTES, "working-set header");
_Static_assert(sizeof(struct sprout_ws_run) == 8, "working-set run");

/* /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst): bit 63 present, bit 61 a file
 * page or shared anonymous one. On a MAP_PRIVATE mapping of the base, present and file-backed is
 * a page the clone only read (the base's own page), present and anonymous one it wrote (its copy).
 */
#define PM_PRESENT (1ULL << 63)
#define PM_FILE    (1ULL << 61)

enum { KIND_NONE, KIND_READ, KIND_WRITE };

/* Appends page `pg` of `kind` to its list, extending the last run when contiguous. */
static int add_page(struct sprout_ws_run **runs, uint32_t *n, uint32_t *cap, uint32_t pg)
{
        if (*n && (*runs)[*n - 1].first + (*runs)[*n - 1].npages == pg) {
                (*runs)[*n - 1].npages++;
                return 0;
        }
        if (*n == WS_MAX_RUNS / 2)
                return 0; /* each set gets half */
        if (*n == *cap) {
                uint32_t nc = *cap ? *cap * 2 : 64;
                struct sprout_ws_run *r = realloc(*runs, (size_t)nc * sizeof(*r));
                if (!r)
                        return -ENOMEM;
                *runs = r;
                *cap = nc;
        }
        (*runs)[(*n)++] = (struct sprout_ws_run){.first = pg, .npages = 1};
        return 0;
}

int sprout_vm_record_working_set(struct sprout_vm *vm, void **data, uint64_t *len,
                                 struct sprout_working_set *summary, struct sprout_err *err)
{
        enum { BATCH = 4096 };
        uint64_t pages = vm->ram_size / WS_PAGE;
        struct sprout_ws_run *rd = NULL, *wr = NULL;
        uint32_t nrd = 0, nwr = 0, caprd = 0, capwr = 0;
        uint64_t rpages = 0, wpages = 0;
        uint64_t *pm = malloc(BATCH * sizeof(uint64_t));
        int r = 0;

        *data = NULL;
        *len = 0;
        if (!pm)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                free(pm);
                return sprout_err_errno(err, -errno, "the working set: /proc/self/pagemap");
        }
        uint64_t first = (uint64_t)(uintptr_t)vm->ram / WS_PAGE;
        for (uint64_t at = 0; at < pages && r == 0; at += BATCH) {
                size_t want = (size_t)(pages - at < BATCH ? pages - at : BATCH) * sizeof(uint64_t);
                ssize_t got = pread(fd, pm, want, (off_t)((first + at) * sizeof(uint64_t)));
                if (got != (ssize_t)want) {
                        r = sprout_err_errno(err, got < 0 ? -errno : -EIO,
                                             "the working set: reading /proc/self/pagemap");
                        break;
                }
                for (size_t i = 0; i < want / sizeof(uint64_t) && r == 0; i++) {
                        if (!(pm[i] & PM_PRESENT))
                                continue;
                        uint32_t pg = (uint32_t)(at + i);
                        if (pm[i] & PM_FILE)
                                r = add_page(&rd, &nrd, &caprd, pg);
                        else
                                r = add_page(&wr, &nwr, &capwr, pg);
                }
        }
        close(fd);
        free(pm);
        if (r == -ENOMEM)
                sprout_err_set(err, r, "out of memory");
        for (uint32_t i = 0; i < nrd; i++)
                rpages += rd[i].npages;
        for (uint32_t i = 0; i < nwr; i++)
                wpages += wr[i].npages;
        size_t n = WS_HDR_BYTES + ((size_t)nrd + nwr) * sizeof(struct sprout_ws_run);
        uint8_t *out = r == 0 ? calloc(1, n) : NULL;
        if (r == 0 && !out)
                r = sprout_err_set(err, -ENOMEM, "out of memory");
        if (r == 0) {
                struct ws_hdr h = {.version = WS_VERSION,
                                   .page_size = WS_PAGE,
                                   .ram_pages = pages,
                                   .nread = nrd,
                                   .nwrite = nwr};
                memcpy(out, &h, sizeof(h));
                if (nrd)
                        memcpy(out + WS_HDR_BYTES, rd, nrd * sizeof(*rd));
                if (nwr)
                        memcpy(out + WS_HDR_BYTES + nrd * sizeof(*rd), wr, nwr * sizeof(*wr));
                *data = out;
                *len = n;
                if (summary)
                        *summary = (struct sprout_working_set){.nread = nrd,
                                                               .nwrite = nwr,
                                                               .read_pages = rpages,
                                                               .write_pages = wpages};
        }
        free(rd);
        free(wr);
        return r;
}

/* One set's runs: each inside RAM, in order, not overlapping; their page total into *total. */
static int check_runs(const struct sprout_ws_run *runs, uint32_t n, uint64_t ram_pages,
                      const char *what, uint64_t *total, struct sprout_err *err)
{
        uint64_t end = 0;
        *total = 0;
        for (uint32_t i = 0; i < n; i++) {
                uint64_t f = runs[i].first, np = runs[i].npages;
                if (np == 0 || f < end || f + np > ram_pages)
                        return sprout_err_set(err, -EINVAL,
                                              "working set: %s run %u (pages %llu+%llu) is empty, "
                                              "out of order or outside the %llu pages of RAM",
                                              what, i, (unsigned long long)f,
                                              (unsigned long long)np,
                                              (unsigned long long)ram_pages);
                end = f + np;
                *total += np;
        }
        return 0;
}

int sprout_working_set_parse(const void *data, uint64_t len, uint64_t ram_size,
                             struct sprout_working_set *ws, struct sprout_err *err)
{
        struct ws_hdr h;
        memset(ws, 0, sizeof(*ws));
        if (len < WS_HDR_BYTES)
                return sprout_err_set(err, -EINVAL, "working set: %llu bytes, too short",
                                      (unsigned long long)len);
        memcpy(&h, data, sizeof(h));
        if (h.version != WS_VERSION || h.page_size != WS_PAGE || h.reserved != 0)
                return sprout_err_set(err, -EINVAL,
                                      "working set: version %u, page size %u: this VMM reads "
                                      "version %u with %u-byte pages",
                                      h.version, h.page_size, WS_VERSION, WS_PAGE);
        uint64_t ram_pages = ram_size / WS_PAGE;
        uint64_t nruns = (uint64_t)h.nread + h.nwrite;
        if (h.ram_pages != ram_pages || nruns > ram_pages || nruns > WS_MAX_RUNS ||
            len != WS_HDR_BYTES + nruns * sizeof(struct sprout_ws_run))
                return sprout_err_set(err, -EINVAL,
                                      "working set: %llu runs in %llu bytes, recorded on %llu "
                                      "pages of RAM (the snapshot has %llu)",
                                      (unsigned long long)nruns, (unsigned long long)len,
                                      (unsigned long long)h.ram_pages,
                                      (unsigned long long)ram_pages);
        /* At least one run's room, so that runs + nread is never arithmetic on NULL. */
        struct sprout_ws_run *runs = malloc((nruns ? nruns : 1) * sizeof(*runs));
        if (!runs)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        if (nruns)
                memcpy(runs, (const uint8_t *)data + WS_HDR_BYTES, nruns * sizeof(*runs));
        uint64_t rp, wp;
        int r = check_runs(runs, h.nread, ram_pages, "read", &rp, err);
        if (r == 0)
                r = check_runs(runs + h.nread, h.nwrite, ram_pages, "write", &wp, err);
        if (r < 0) {
                free(runs);
                return r;
        }
        *ws = (struct sprout_working_set){.runs = runs,
                                          .nread = h.nread,
                                          .nwrite = h.nwrite,
                                          .read_pages = rp,
                                          .write_pages = wp};
        return 0;
}

void sprout_working_set_free(struct sprout_working_set *ws)
{
        free(ws->runs);
        memset(ws, 0, sizeof(*ws));
}

#ifndef KVM_PRE_FAULT_MEMORY /* Linux 6.10; Debian 12's headers predate it */
struct kvm_pre_fault_memory {
        __u64 gpa;
        __u64 size;
        __u64 flags;
        __u64 padding[5];
};
#define KVM_CAP_PRE_FAULT_MEMORY 236
#define KVM_PRE_FAULT_MEMORY     _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

bool kvm_has_pre_fault(int kvm_fd)
{
        return ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY) > 0;
}

/* Only in a shell, before the state is restored: KVM maps for the vCPU's current state, its reset
 * state here, but with TDP the guest page tables do not depend on the guest's paging mode, so the
 * restore that follows finds them built: measured in docs/benchmarks.md ("KVM_PRE_FAULT_MEMORY"),
 * where a clone's first request then takes 3 faults, not ~40-380. Not before a clone's first run
 * (SPROUT_PREFAULT_FIRST_RUN): there it is on the request path, where it cost more than it saved,
 * and in the nested rig 3 of 100 clones pre-faulted after their restore never ran an instruction
 * past it (docs/benchmarks.md, "The working set at a clone's first run"). What the root does depend
 * on besides SMM and nesting (a clone uses neither): on an Intel host with 5-level EPT, the guest's
 * physical address width, which the snapshot's CPUID sets later; a snapshot reporting more than 48
 * bits gets its tables built for a 4-level root that the restore replaces, and its clones fault as
 * before (clone.working_set would say so). KVM_PRE_FAULT_MEMORY's per-range errors (a range KVM
 * cannot map, e.g. one it emulates) skip that range only. */
static int pre_fault(struct sprout_vm *vm, const struct sprout_working_set *ws)
{
        uint32_t n = ws->nread + ws->nwrite;
        for (uint32_t i = 0; i < n; i++) {
                /* KVM maps as much as it can and says what is left (api.rst,
                 * KVM_PRE_FAULT_MEMORY): go on from there after an interruption. */
                struct kvm_pre_fault_memory pf = {.gpa = (uint64_t)ws->runs[i].first * WS_PAGE,
                                                  .size = (uint64_t)ws->runs[i].npages * WS_PAGE};
                while (pf.size) {
                        uint64_t left = pf.size;
                        int r = ioctl(vm->vcpu_fd, KVM_PRE_FAULT_MEMORY, &pf);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == EIO))
                                return -errno;
                        /* An error for this range, or no progress: on to the next range. */
                        if (r < 0 || pf.size == left)
                                break;
                }
        }
        return 0;
}

void vm_populate_pending(struct sprout_vm *vm, bool page_tables)
{
        const struct sprout_working_set *ws = vm->ws_pending;
        vm->ws_pending = NULL;
        /* Only speed depends on it: a failure leaves the guest to fault the pages in itself. */
        int r = ws ? vm_populate_working_set(vm, ws, page_tables) : 0;
        if (r < 0)
                sp_debug("pre-faulting the working set: %s (ignored)", strerror(-r));
}

void vm_take_working_set(struct sprout_vm *vm, const struct sprout_restore_config *cfg)
{
        vm->ws_pending = cfg->ws;
        if (cfg->ws_in_shell)
                vm_populate_pending(vm, true);
}

int vm_populate_working_set(struct sprout_vm *vm, const struct sprout_working_set *ws,
                            bool page_tables)
{
        uint32_t n = ws->nread + ws->nwrite;
        for (uint32_t i = 0; i < n; i++) {
                const struct sprout_ws_run *run = &ws->runs[i];
                uint64_t off = (uint64_t)run->first * WS_PAGE, sz = (uint64_t)run->npages * WS_PAGE;
                if (off + sz > vm->ram_size)
                        return -EINVAL; /* a set for another RAM size: parse checked it */
                /* A failure costs only speed (the guest faults the page in itself), and a host
                 * kernel before 5.14 refuses every call: say why and stop. */
                if (madvise(vm->ram + off, sz,
                            i < ws->nread ? MADV_POPULATE_READ : MADV_POPULATE_WRITE) < 0)
                        return -errno;
        }
        /* The guest page tables too, where KVM can build them ahead: the clone's first touches of
         * its working set then take no exit. */
        return page_tables && vm->kvm->has_pre_fault ? pre_fault(vm, ws) : 0;
}
