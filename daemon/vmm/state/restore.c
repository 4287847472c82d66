/* Restoring a clone: a shell (VM, memslots over the base, irqchip, PIT, vCPU) and the saved state
 * loaded into it in the order KVM needs (docs/architecture.md, "Restore order"). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "sprout/log.h"
#include "vmm_internal.h"

const struct sprout_vm_section *vm_find_section(const struct sprout_vm_section *s, unsigned n,
                                                uint32_t tag)
{
        for (unsigned i = 0; i < n; i++)
                if (s[i].tag == tag)
                        return &s[i];
        return NULL;
}

int sprout_vm_shell_create(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                           struct sprout_vm **out, struct sprout_err *err)
{
        if (cfg->base_fd < 0)
                return sprout_err_set(err, -EBADF, "no base memory to restore from");
        int r = vm_new(kvm, cfg->ram_size, cfg->base_fd, cfg->console_fd, cfg->console_log_size,
                       out, err);
        if (r < 0 || !cfg->ws)
                return r;
        /* By default the clone's first run brings the working set in: a clone made to wait
         * (POST /v1/clones) may never run, and the write set's copies were a third of what each
         * idle clone cost (docs/benchmarks.md, "The working set at a clone's first run"). A ready
         * clone's warm-up is its first run, still off the request path. */
        vm_take_working_set(*out, cfg);
        return 0;
}

int sprout_vm_restore_state(struct sprout_vm *vm, const struct sprout_restore_config *cfg,
                            struct sprout_err *err)
{
        const struct sprout_vm_section *vs, *ms, *ds;
        int r;

        vs = vm_find_section(cfg->sections, cfg->nsections, SPROUT_SEC_VCPU);
        ms = vm_find_section(cfg->sections, cfg->nsections, SPROUT_SEC_VM);
        ds = vm_find_section(cfg->sections, cfg->nsections, SPROUT_SEC_DEVICES);
        if (!vs || !ms || !ds)
                return sprout_err_set(err, -EINVAL, "the snapshot lacks the %s state section",
                                      !vs   ? "vCPU"
                                      : !ms ? "VM"
                                            : "device");
        if (cfg->ram_size != vm->ram_size)
                return sprout_err_set(
                    err, -EINVAL, "the shell has %llu bytes of RAM, the snapshot %llu",
                    (unsigned long long)vm->ram_size, (unsigned long long)cfg->ram_size);
        /* Both KVM-bound sections are checked before the first KVM_SET_* of either: a forged
         * vCPU record must not find the VM's irqchip and clock already set from its file. */
        r = vm_state_check(ms->data, ms->len, err);
        if (r == 0)
                r = vcpu_state_check(vm->kvm, vs->data, vs->len, err);
        if (r == 0)
                r = vm_state_restore(vm, ms->data, ms->len, err);
        if (r == 0)
                r = vcpu_restore(vm, vs->data, vs->len, err);
        if (r == 0)
                r = devices_restore(vm, ds->data, ds->len, err);
        if (r < 0) {
                vm->broken = true;
                return r;
        }
        /* Tell the guest its clock stood still on purpose, so no lockup is reported on resume. */
        if (vm->kvm->has_kvmclock_ctrl && ioctl(vm->vcpu_fd, KVM_KVMCLOCK_CTRL, 0) < 0)
                sp_debug("KVM_KVMCLOCK_CTRL: %s (ignored)", strerror(errno));
        return 0;
}

int sprout_vm_restore(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                      struct sprout_vm **out, struct sprout_err *err)
{
        struct sprout_vm *vm;
        int r = sprout_vm_shell_create(kvm, cfg, &vm, err);
        if (r < 0)
                return r;
        r = sprout_vm_restore_state(vm, cfg, err);
        if (r < 0) {
                sprout_vm_destroy(vm);
                return r;
        }
        *out = vm;
        return 0;
}
