/* Capturing a VM at READY into the snapshot's state sections: vCPU, VM-wide KVM state, devices. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "state_blob.h"
#include "vmm_internal.h"

int sprout_vm_capture(struct sprout_vm *vm, struct sprout_vm_capture *cap, struct sprout_err *err)
{
        struct blob b[3] = {0};
        int r;

        memset(cap, 0, sizeof(*cap));
        if (vm->broken || vm->stopped)
                return sprout_err_set(err, -EINVAL, "the VM is not running: nothing to capture");
        /* The ring that stopped us is a port I/O KVM has not finished; entering with immediate_exit
         * completes it (RIP moves past the OUT) and returns at once (api.rst, KVM_RUN). */
        vm->run->immediate_exit = 1;
        r = ioctl(vm->vcpu_fd, KVM_RUN, 0);
        int e = errno;
        vm->run->immediate_exit = 0;
        if (r == 0 || e != EINTR)
                return sprout_err_set(err, -EIO,
                                      "completing the pending I/O before the snapshot: %s",
                                      r == 0 ? "the guest ran on" : strerror(e));

        r = vcpu_save(vm, &b[0], err);
        if (r == 0)
                r = vm_state_save(vm, &b[1], err);
        if (r == 0)
                r = devices_save(vm, &b[2], err);
        if (r < 0) {
                for (int i = 0; i < 3; i++)
                        blob_free(&b[i]);
                return r;
        }
        static const uint32_t tags[3] = {SPROUT_SEC_VCPU, SPROUT_SEC_VM, SPROUT_SEC_DEVICES};
        for (int i = 0; i < 3; i++) {
                cap->sections[i] = (struct sprout_vm_section){tags[i], b[i].data, b[i].len};
                cap->owned[i] = b[i].data;
        }
        cap->nsections = 3;
        cap->ram = vm->ram;
        cap->ram_size = vm->ram_size;
        return 0;
}

void sprout_vm_capture_free(struct sprout_vm_capture *cap)
{
        for (unsigned i = 0; i < SPROUT_VM_MAX_SECTIONS; i++)
                free(cap->owned[i]);
        memset(cap, 0, sizeof(*cap));
}
