/* Whether this host can run a snapshot: the same host kind, and every CPU feature the recorded
 * CPUID offered the guest is offered here too. */
#include <errno.h>
#include <stdlib.h>

#include "vmm_internal.h"

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
                                                 uint32_t idx)
{
        for (uint32_t i = 0; i < c->nent; i++)
                if (c->entries[i].function == fn &&
                    (c->entries[i].index == idx ||
                     !(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)))
                        return &c->entries[i];
        return NULL;
}

int sprout_vm_check_compat(struct sprout_kvm *kvm, uint32_t recorded_host_kind,
                           const struct sprout_vm_section *sections, unsigned nsections,
                           struct sprout_err *err)
{
        const struct sprout_vm_section *vs = vm_find_section(sections, nsections, SPROUT_SEC_VCPU);
        struct kvm_cpuid2 *saved = NULL, *host = NULL;
        int r;

        if (recorded_host_kind != (uint32_t)kvm->kind)
                return sprout_err_set(
                    err, -ENOTSUP,
                    "the snapshot was taken on a %s host and this is a %s host: its "
                    "CPU profile differs; prewarm the image again here",
                    sprout_host_kind_name(recorded_host_kind), sprout_host_kind_name(kvm->kind));
        if (!vs)
                return sprout_err_set(err, -EINVAL, "the snapshot has no vCPU state");
        r = vcpu_saved_cpuid(vs->data, vs->len, kvm, &saved, err);
        if (r < 0)
                return r;
        r = cpu_profile_cpuid(kvm, 0, &host, err);
        if (r < 0)
                goto out;
        /* Feature words: a bit the snapshot's guest may rely on must be offered here too. */
        static const struct {
                uint32_t fn, idx;
                int reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
                const char *name;
        } words[] = {
            {1, 0, 2, "leaf 1 ECX"},
            {1, 0, 3, "leaf 1 EDX"},
            {7, 0, 1, "leaf 7 EBX"},
            {7, 0, 2, "leaf 7 ECX"},
            {7, 0, 3, "leaf 7 EDX"},
            {0xd, 1, 0, "leaf 0xd.1 EAX"},
            {0x80000001, 0, 2, "leaf 0x80000001 ECX"},
            {0x80000001, 0, 3, "leaf 0x80000001 EDX"},
        };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                const struct kvm_cpuid_entry2 *se = cpuid_find(saved, words[i].fn, words[i].idx);
                const struct kvm_cpuid_entry2 *he = cpuid_find(host, words[i].fn, words[i].idx);
                if (!se)
                        continue;
                uint32_t sv = (&se->eax)[words[i].reg];
                uint32_t hv = he ? (&he->eax)[words[i].reg] : 0;
                /* Leaf 1 ECX bit 27 (OSXSAVE) mirrors guest CR4 and bits 24..31 of leaf 1 EBX are
                 * the APIC ID: neither is a host capability. */
                if (words[i].fn == 1 && words[i].reg == 2)
                        sv &= ~(1u << 27);
                uint32_t missing = sv & ~hv;
                if (missing) {
                        r = sprout_err_set(
                            err, -ENOTSUP,
                            "this host's CPU lacks a feature the snapshot recorded: %s "
                            "bit %d (snapshot 0x%08x, host 0x%08x)",
                            words[i].name, __builtin_ctz(missing), sv, hv);
                        goto out;
                }
        }
        r = 0;
out:
        free(saved);
        free(host);
        return r;
}
