/* Just enough of the i8042 keyboard controller for the guest to reset the machine (reboot=k): a CPU
 * reset request (0xfe to port 0x64) stops the VM. No keyboard is offered. */
#include <stdio.h>

#include "vmm_internal.h"

#define I8042_CMD_PORT_OFFSET 4 /* the device spans 0x60..0x64 */
#define I8042_CMD_RESET       0xfe

static void i8042_io(struct sprout_vm *vm, void *dev, uint64_t offset, uint8_t *data, uint32_t len,
                     bool is_write)
{
        (void)dev;
        if (!is_write) {
                /* Status 0: output buffer empty, input buffer empty, so kb_wait() never spins. */
                for (uint32_t i = 0; i < len; i++)
                        data[i] = 0;
                return;
        }
        if (offset == I8042_CMD_PORT_OFFSET && len >= 1 && data[0] == I8042_CMD_RESET) {
                vm->stopped = true;
                snprintf(vm->stop_reason, sizeof(vm->stop_reason),
                         "guest reset the machine (reboot)");
        }
}

const struct io_device_ops i8042_ops = {
    .name = "i8042",
    .io = i8042_io,
};
