/* KVM's own counters of a vCPU (KVM_GET_STATS_FD, Linux 5.14): how the benchmarks and tests see
 * what a clone cost KVM (e.g. the page faults it took), in counts that do not depend on the
 * host's speed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm_internal.h"

/* The stats file's layout (api.rst, "KVM_GET_STATS_FD"): a header, then descriptors of
 * sizeof(struct kvm_stats_desc) + name_size bytes each, then the values, u64 each. Everything
 * comes from the kernel; still, the sizes are bounded, each name must end inside its field, and a
 * read past the file's end is an error. */
static int read_at(int fd, void *buf, size_t len, off_t off)
{
        ssize_t n = pread(fd, buf, len, off);
        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EPROTO;
}

static int stat_in(int fd, const char *name, uint64_t *out)
{
        struct kvm_stats_header h;
        int r = read_at(fd, &h, sizeof(h), 0);
        if (r < 0)
                return r;
        /* Names are bounded by the kernel's KVM_STATS_NAME_SIZE (48); a far larger one is not a
         * stats file this code understands. */
        if (h.name_size == 0 || h.name_size > 4096 || h.num_desc > 65536)
                return -EPROTO;
        size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
        struct kvm_stats_desc *d = malloc(dsz);
        if (!d)
                return -ENOMEM;
        r = -ENOENT;
        for (uint32_t i = 0; i < h.num_desc; i++) {
                int e = read_at(fd, d, dsz, (off_t)h.desc_offset + (off_t)i * (off_t)dsz);
                if (e < 0) {
                        r = e;
                        break;
                }
                if (strnlen(d->name, h.name_size) == h.name_size || strcmp(d->name, name))
                        continue;
                /* A counter or gauge of one value; histograms and arrays are not asked for. */
                r = d->size == 1 ? read_at(fd, out, sizeof(*out), (off_t)h.data_offset + d->offset)
                                 : -ENOENT;
                break;
        }
        free(d);
        return r;
}

int sprout_vm_vcpu_stat(struct sprout_vm *vm, const char *name, uint64_t *out)
{
        int fd = ioctl(vm->vcpu_fd, KVM_GET_STATS_FD, NULL);
        if (fd < 0)
                return errno == EINVAL || errno == ENOTTY ? -ENOTSUP : -errno;
        int r = stat_in(fd, name, out);
        close(fd);
        return r;
}
