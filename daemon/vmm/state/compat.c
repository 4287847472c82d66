/* Whether this host can run a snapshot: the same host kind, and every CPU feature the recorded
 * CPUID offered the guest is offered here too. */
#include <errno.h>
#include <stdlib.h>

#include "vmm_internal.h"

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
        /* The one CPUID rule restore applies too (state_check.c): every feature bit of every leaf
         * the snapshot's guest was offered must be offered here. */
        r = state_check_cpuid(saved, host, err);
out:
        free(saved);
        free(host);
        return r;
}
