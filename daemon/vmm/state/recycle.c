/* Recycling a clone in place: a VM that has served goes back to the state a fresh restore of the
 * same base gives, without KVM_CREATE_VM or closing the VM (docs/architecture.md, "Recycling").
 * Everything a clone could have changed is put back: its RAM, the mailbox, the host side of its
 * devices and logs, and every vCPU, irqchip and clock record. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "sprout/log.h"
#include "vmm_internal.h"

int sprout_vm_reset(struct sprout_vm *vm, const struct sprout_restore_config *cfg,
                    struct sprout_err *err)
{
        if (vm->broken)
                return sprout_err_set(err, -EIO, "the VM failed earlier and cannot be recycled");
        if (cfg->ram_size != vm->ram_size || !vm->ram)
                return sprout_err_set(err, -EINVAL, "the VM was not restored from this base");
        /* The last exit's I/O first, before its registers are replaced: KVM would otherwise
         * finish it on the next entry, after ours (api.rst, KVM_RUN). */
        int r = vcpu_complete_io(vm, "before the recycle", err);
        if (r < 0) {
                vm->broken = true;
                return r;
        }
        /* On a private mapping of the base, MADV_DONTNEED drops the clone's copies of the pages it
         * wrote: each reads as the base's again. KVM's MMU notifier unmaps them from the guest at
         * the same time, so the guest cannot keep a stale translation to a dropped copy. */
        if (madvise(vm->ram, vm->ram_size, MADV_DONTNEED) < 0) {
                vm->broken = true;
                return sprout_err_errno(err, -errno, "dropping the clone's private pages");
        }
        /* The working set back in when a new shell would get it (restore.c). */
        vm_take_working_set(vm, cfg);
        r = sprout_dev_reset(&vm->sdev, err);
        if (r < 0) {
                vm->broken = true;
                return r;
        }
        console_log_reset(&vm->console, cfg->console_fd);
        serial_init(&vm->com1, vm->com1.irq);
        vm->stopped = false;
        vm->stop_reason[0] = '\0';
        vm->clock_skew_ns = 0;
        vm->last_exit_ns = 0;
        /* The rest is what a fresh restore does, every record checked again, into a vCPU that has
         * run: KVM's SET ioctls replace the state whole (registers, LAPIC with its timer, pending
         * events, MP state, MSRs), and the irqchip and clock are the VM's. */
        return sprout_vm_restore_state(vm, cfg, err);
}
