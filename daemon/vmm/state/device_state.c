/* The devices section of a snapshot: one record per device that has state, written and read by the
 * device's own save/restore ops (docs/snapshot-format.md, "Device state"). A record no device of
 * this VM claims is refused: the file is not one this VMM can restore faithfully. */
#include <errno.h>

#include "state_blob.h"
#include "vmm_internal.h"

/* Devices on several ranges (the doorbell on a port and an MMIO page) are saved once. */
static bool seen_before(const struct sprout_vm *vm, unsigned i)
{
        for (unsigned j = 0; j < i; j++)
                if (vm->io[j].dev == vm->io[i].dev && vm->io[j].ops == vm->io[i].ops)
                        return true;
        return false;
}

int devices_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err)
{
        for (unsigned i = 0; i < vm->nio; i++) {
                const struct io_device_ops *ops = vm->io[i].ops;
                if (!ops->save || seen_before(vm, i))
                        continue;
                ops->save(vm->io[i].dev, b);
        }
        return b->error ? sprout_err_set(err, b->error, "saving device state: out of memory") : 0;
}

int devices_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err)
{
        struct blob_reader rd = {.data = data, .len = len};
        uint32_t type;
        const void *p;
        size_t n;
        int r;
        while ((r = blob_next(&rd, &type, &p, &n)) == 1) {
                const struct io_range *owner = NULL;
                for (unsigned i = 0; i < vm->nio && !owner; i++) {
                        const struct io_device_ops *ops = vm->io[i].ops;
                        if (ops->restore && type &&
                            (type == ops->state_rec || type == ops->legacy_rec))
                                owner = &vm->io[i];
                }
                if (!owner)
                        return sprout_err_set(err, -EINVAL,
                                              "device state: no device takes record %u (%zu bytes)",
                                              type, n);
                r = owner->ops->restore(owner->dev, type, p, n, err);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return sprout_err_set(err, -EINVAL, "device state: a record runs past the section");
        return 0;
}
