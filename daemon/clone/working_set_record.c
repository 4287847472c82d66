/* Recording a snapshot's working set at prewarm: a trial clone restored from the capture itself
 * (its RAM copied into a memfd, zero pages left as holes, as a loaded base has them), given an
 * identity and warmed up, then its pages read off the host's page tables
 * (docs/architecture.md, "The working set"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "clone_internal.h"
#include "sprout/vmm.h"
#include "sprout/vmstate.h"

#define PAGE 4096u

static bool zero_page(const uint8_t *p)
{
        const uint64_t *w = (const uint64_t *)p;
        for (size_t i = 0; i < PAGE / sizeof(*w); i++)
                if (w[i])
                        return false;
        return true;
}

/* A memfd holding the capture's RAM: what snap_load_ram would give for the file, without the file.
 */
static int ram_memfd(const struct sprout_vm_capture *cap, int *out, struct sprout_err *err)
{
        int fd = memfd_create("sprout-ws-trial", MFD_CLOEXEC);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "the working set: memfd_create");
        if (ftruncate(fd, (off_t)cap->ram_size) < 0) {
                int r = sprout_err_errno(err, -errno, "the working set: sizing the trial's RAM");
                close(fd);
                return r;
        }
        uint8_t *m = mmap(NULL, cap->ram_size, PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
                int r = sprout_err_errno(err, -errno, "the working set: mapping the trial's RAM");
                close(fd);
                return r;
        }
        const uint8_t *src = cap->ram;
        for (uint64_t off = 0; off < cap->ram_size; off += PAGE)
                if (!zero_page(src + off))
                        memcpy(m + off, src + off, PAGE);
        munmap(m, cap->ram_size);
        *out = fd;
        return 0;
}

int prewarm_record_working_set(struct sprout_kvm *kvm, const struct sprout_vm_capture *cap,
                               int64_t timeout_ms, void **data, uint64_t *len,
                               struct sprout_working_set *summary, struct sprout_err *err)
{
        int memfd = -1;
        struct sprout_vm *vm = NULL;
        int r = ram_memfd(cap, &memfd, err);
        if (r < 0)
                return r;
        struct sprout_restore_config cfg = {.base_fd = memfd,
                                            .ram_size = cap->ram_size,
                                            .sections = cap->sections,
                                            .nsections = cap->nsections,
                                            .console_fd = -1};
        r = sprout_vm_restore(kvm, &cfg, &vm, err);
        if (r == 0 && !sprout_vm_can_warmup(vm))
                r = sprout_err_set(err, -ENOTSUP,
                                   "the working set: the guest predates warm-ups (ABI 1.3)");
        uuid_t id;
        uuid_generate_random(id);
        if (r == 0)
                r = sprout_vm_set_identity(vm, id, err);
        struct sprout_vm_event ev;
        if (r == 0)
                r = sprout_vm_warmup(vm, timeout_ms, &ev, err);
        if (r == 0 && ev.kind != SPROUT_EV_DONE)
                r = sprout_vm_event_error(&ev, "the trial clone", "answer its warm-up", timeout_ms,
                                          err);
        if (r == 0)
                r = sprout_vm_record_working_set(vm, data, len, summary, err);
        sprout_vm_destroy(vm);
        close(memfd);
        return r;
}
