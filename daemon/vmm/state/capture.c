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
        r = vcpu_complete_io(vm, "before the snapshot", err);
        if (r < 0)
                return r;

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
