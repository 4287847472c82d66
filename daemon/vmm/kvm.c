/* The process's /dev/kvm handle and the host facts every VM needs: API version, capabilities,
 * supported CPUID, MSR list, and which kind of virtualization backs KVM here. */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sprout/log.h"
#include "vmm_internal.h"

const char *sprout_host_kind_name(enum sprout_host_kind kind)
{
        switch (kind) {
        case SPROUT_HOST_VMX:
                return "vmx";
        case SPROUT_HOST_SVM:
                return "svm";
        case SPROUT_HOST_PVM:
                return "pvm";
        default:
                return "unknown";
        }
}

/* The module that registered /dev/kvm tells the kind; PVM is checked first because a PVM host may
 * have kvm_intel loaded as well (without VMX it cannot serve /dev/kvm). */
static enum sprout_host_kind detect_host_kind(void)
{
        const char *force = getenv("SPROUT_HOST_KIND");
        if (force) {
                if (!strcmp(force, "pvm"))
                        return SPROUT_HOST_PVM;
                if (!strcmp(force, "vmx"))
                        return SPROUT_HOST_VMX;
                if (!strcmp(force, "svm"))
                        return SPROUT_HOST_SVM;
        }
        if (access("/sys/module/kvm_pvm", F_OK) == 0)
                return SPROUT_HOST_PVM;
        if (access("/sys/module/kvm_intel", F_OK) == 0)
                return SPROUT_HOST_VMX;
        if (access("/sys/module/kvm_amd", F_OK) == 0)
                return SPROUT_HOST_SVM;
        return SPROUT_HOST_UNKNOWN;
}

static int get_supported_cpuid(struct sprout_kvm *kvm, struct sprout_err *err)
{
        size_t sz =
            sizeof(struct kvm_cpuid2) + SPROUT_MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *c = calloc(1, sz);
        if (!c)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        c->nent = SPROUT_MAX_CPUID_ENTRIES;
        if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
                int e = -errno;
                free(c);
                return sprout_err_errno(err, e, "KVM_GET_SUPPORTED_CPUID");
        }
        kvm->supported_cpuid = c;
        return 0;
}

static int get_msr_index_list(struct sprout_kvm *kvm, struct sprout_err *err)
{
        struct kvm_msr_list *l = calloc(1, sizeof(*l) + SPROUT_MAX_MSRS * sizeof(uint32_t));
        if (!l)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        l->nmsrs = SPROUT_MAX_MSRS;
        if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
                int e = -errno;
                free(l);
                return sprout_err_errno(err, e, "KVM_GET_MSR_INDEX_LIST");
        }
        kvm->nmsrs = l->nmsrs;
        kvm->msr_index = malloc(l->nmsrs * sizeof(uint32_t) + 1);
        if (!kvm->msr_index) {
                free(l);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        memcpy(kvm->msr_index, l->indices, l->nmsrs * sizeof(uint32_t));
        free(l);
        return 0;
}

int sprout_kvm_open(struct sprout_kvm **out, struct sprout_err *err)
{
        struct sprout_kvm *kvm = calloc(1, sizeof(*kvm));
        int r;

        if (!kvm)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        kvm->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm->fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        sprout_err_set(
                            err, r,
                            "/dev/kvm does not exist: this host offers no KVM (load kvm_intel, "
                            "kvm_amd or kvm_pvm, or run on a host with virtualization enabled)");
                else if (r == -EACCES || r == -EPERM)
                        sprout_err_set(
                            err, r,
                            "/dev/kvm is not accessible to this user: run as root or join the "
                            "group that owns /dev/kvm");
                else
                        sprout_err_errno(err, r, "open /dev/kvm");
                goto fail;
        }
        r = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
        if (r != KVM_API_VERSION) {
                r = sprout_err_set(err, -ENOTSUP, "/dev/kvm speaks API version %d, sprout needs %d",
                                   r, KVM_API_VERSION);
                goto fail;
        }
        static const struct {
                int cap;
                const char *name;
        } required[] = {
            {KVM_CAP_IRQCHIP, "IRQCHIP"},
            {KVM_CAP_PIT2, "PIT2"},
            {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
            {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
        };
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
                if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0) {
                        r = sprout_err_set(err, -ENOTSUP, "KVM lacks the required capability %s",
                                           required[i].name);
                        goto fail;
                }
        }
        kvm->has_immediate_exit = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) > 0;
        kvm->has_kvmclock_ctrl = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_KVMCLOCK_CTRL) > 0;
        kvm->has_xcrs = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
        kvm->has_pre_fault = kvm_has_pre_fault(kvm->fd);
        int xsave2 = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
        kvm->has_xsave2 = xsave2 > 0;
        if (xsave2 > 0)
                kvm->xsave_size = xsave2 < 4096 ? 4096 : (uint32_t)xsave2;
        else if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0)
                kvm->xsave_size = 4096;
        if (!kvm->has_immediate_exit) {
                r = sprout_err_set(err, -ENOTSUP,
                                   "KVM lacks the required capability IMMEDIATE_EXIT");
                goto fail;
        }
        kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (kvm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
                r = sprout_err_set(err, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE returned %d",
                                   kvm->vcpu_mmap_size);
                goto fail;
        }
        r = get_supported_cpuid(kvm, err);
        if (r < 0)
                goto fail;
        r = get_msr_index_list(kvm, err);
        if (r < 0)
                goto fail;

        unsigned a, b, c, d;
        __cpuid(0, a, b, c, d);
        memcpy(kvm->cpu_vendor, &b, 4);
        memcpy(kvm->cpu_vendor + 4, &d, 4);
        memcpy(kvm->cpu_vendor + 8, &c, 4);
        kvm->kind = detect_host_kind();
        char sig[13] = {0};
        __cpuid(0x40000000, a, b, c, d);
        memcpy(sig, &b, 4);
        memcpy(sig + 4, &c, 4);
        memcpy(sig + 8, &d, 4);
        kvm->tr_needs_available_tss = kvm->kind == SPROUT_HOST_SVM && !strcmp(sig, "TCGTCGTCGTCG");
        sp_debug("kvm: host kind %s, vendor %s, %u cpuid entries, %u msrs%s",
                 sprout_host_kind_name(kvm->kind), kvm->cpu_vendor, kvm->supported_cpuid->nent,
                 kvm->nmsrs, kvm->tr_needs_available_tss ? ", emulated by QEMU TCG" : "");
        *out = kvm;
        return 0;
fail:
        sprout_kvm_close(kvm);
        return r;
}

void sprout_kvm_close(struct sprout_kvm *kvm)
{
        if (!kvm)
                return;
        if (kvm->fd >= 0)
                close(kvm->fd);
        free(kvm->supported_cpuid);
        free(kvm->msr_index);
        free(kvm);
}

int kvm_create_vm_fd(struct sprout_kvm *kvm)
{
        /* KVM_CREATE_VM can fail with EINTR when the thread has pending work (a signal, or
         * io_uring task work): it is safe to retry, as QEMU does. */
        for (int tries = 0; tries < 100; tries++) {
                int fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
                if (fd >= 0 || errno != EINTR)
                        return fd >= 0 ? fd : -errno;
        }
        return -EINTR;
}

enum sprout_host_kind sprout_kvm_host_kind(const struct sprout_kvm *kvm)
{
        return kvm->kind;
}

void sprout_kvm_host_facts(const struct sprout_kvm *kvm, struct sprout_host_facts *h)
{
        unsigned a, b, c, d;
        memset(h, 0, sizeof(*h));
        h->kind = kvm->kind;
        snprintf(h->cpu_vendor, sizeof(h->cpu_vendor), "%s", kvm->cpu_vendor);
        __cpuid(1, a, b, c, d);
        unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
        if (fam == 0xf)
                fam += (a >> 20) & 0xff;
        if (fam == 0x6 || fam >= 0xf)
                model |= ((a >> 16) & 0xf) << 4;
        h->family = fam;
        h->model = model;
        h->stepping = a & 0xf;
        h->kvm_api = KVM_API_VERSION;
}

bool sprout_kvm_pre_faults(const struct sprout_kvm *kvm)
{
        return kvm->has_pre_fault;
}
