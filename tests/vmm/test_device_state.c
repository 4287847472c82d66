/* The devices section of a snapshot without KVM: each device's save/restore through its ops table,
 * the versioned UART record, the legacy record older snapshots hold, and forged records refused.
 * White-box: it builds a VM's device table by hand and calls the VMM core's private entry points.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check.h"
#include "sprout/abi.h"
#include "state_blob.h"
#include "vmm_internal.h"

/* A VM with the device table a real one has (UART, doorbell on a port and an MMIO page) and no
 * KVM behind it: save and restore never touch KVM. */
static void vm_with_devices(struct sprout_vm *vm)
{
        struct sprout_err err = {0};
        memset(vm, 0, sizeof(*vm));
        serial_init(&vm->com1, 4);
        int r = vm_add_io(vm, 0x3f8, 8, false, &serial_ops, &vm->com1, &err);
        r |= vm_add_io(vm, 0x60, 5, false, &i8042_ops, NULL, &err);
        r |= vm_add_io(vm, SPROUT_DOORBELL_PORT, 4, false, &sprout_db_ops, &vm->sdev, &err);
        r |= vm_add_io(vm, SPROUT_DOORBELL_MMIO_GPA, SPROUT_DOORBELL_MMIO_SIZE, true,
                       &sprout_db_ops, &vm->sdev, &err);
        CHECK(r == 0, "device table: %s", err.msg);
}

/* One record of type t holding len bytes of p, as a section. */
static struct blob one_record(uint32_t t, const void *p, size_t len)
{
        struct blob b = {0};
        blob_put(&b, t, p, len);
        return b;
}

static int restore(struct sprout_vm *vm, const struct blob *b, struct sprout_err *err)
{
        sprout_err_clear(err);
        return devices_restore(vm, b->data, b->len, err);
}

static void case_roundtrip(void)
{
        struct sprout_vm a, b;
        struct sprout_err err = {0};
        vm_with_devices(&a);
        a.com1 = (struct serial){.ier = 0x0d,
                                 .iir_thri_pending = 1,
                                 .lcr = 0x83,
                                 .mcr = 0x0b,
                                 .scr = 0x5a,
                                 .dll = 0x01,
                                 .dlm = 0x02,
                                 .irq = 4,
                                 .irq_level = 1};
        struct blob s = {0};
        CHECK(devices_save(&a, &s, &err) == 0, "save: %s", err.msg);

        /* Exactly one record: the UART's v1 layout, 8 bytes, host fields absent. */
        struct blob_reader rd = {.data = s.data, .len = s.len};
        uint32_t type = 0;
        const void *p = NULL;
        size_t n = 0;
        CHECK(blob_next(&rd, &type, &p, &n) == 1, "save wrote no record");
        CHECK(type == DREC_SERIAL_V1 && n == 8, "UART record: type %u, %zu bytes", type, n);
        static const uint8_t want[8] = {0x0d, 1, 0x83, 0x0b, 0x5a, 0x01, 0x02, 0};
        CHECK(p && n == 8 && memcmp(p, want, 8) == 0, "UART record bytes differ from the layout");
        CHECK(blob_next(&rd, &type, &p, &n) == 0,
              "a second record (type %u): the doorbell has "
              "no state and is saved once at most",
              type);

        vm_with_devices(&b);
        b.com1.irq = 7; /* the restoring VM's wiring, which the record must not change */
        CHECK(restore(&b, &s, &err) == 0, "restore: %s", err.msg);
        CHECK(b.com1.ier == 0x0d && b.com1.iir_thri_pending == 1 && b.com1.lcr == 0x83 &&
                  b.com1.mcr == 0x0b && b.com1.scr == 0x5a && b.com1.dll == 1 && b.com1.dlm == 2,
              "restored UART registers differ");
        CHECK(b.com1.irq == 7 && b.com1.irq_level == 0, "restore changed the IRQ wiring (%d, %d)",
              b.com1.irq, b.com1.irq_level);
        blob_free(&s);
}

static void case_legacy(void)
{
        /* sprout 0.1 stored the host struct: seven registers, padding, then irq and irq_level. */
        uint8_t raw[16];
        memset(raw, 0xee, sizeof(raw));
        const uint8_t regs[7] = {0x02, 1, 0x03, 0x08, 0x11, 0x0c, 0x00};
        memcpy(raw, regs, sizeof(regs));
        struct blob s = one_record(DREC_SERIAL_RAW, raw, sizeof(raw));
        struct sprout_vm vm;
        struct sprout_err err = {0};
        vm_with_devices(&vm);
        CHECK(restore(&vm, &s, &err) == 0, "legacy record refused: %s", err.msg);
        CHECK(vm.com1.ier == 0x02 && vm.com1.lcr == 0x03 && vm.com1.mcr == 0x08 &&
                  vm.com1.scr == 0x11 && vm.com1.dll == 0x0c,
              "legacy registers not restored");
        CHECK(vm.com1.irq == 4 && vm.com1.irq_level == 0,
              "legacy host fields were taken from the file (irq %d, level %d)", vm.com1.irq,
              vm.com1.irq_level);
        blob_free(&s);
}

static void case_forged(void)
{
        struct sprout_vm vm;
        struct sprout_err err = {0};
        vm_with_devices(&vm);

        /* Bits the model gives no meaning to are dropped, not stored. */
        const uint8_t wild[8] = {0xff, 0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
        struct blob s = one_record(DREC_SERIAL_V1, wild, 8);
        CHECK(restore(&vm, &s, &err) == 0, "a record with every bit set: %s", err.msg);
        CHECK(vm.com1.ier == 0x0f && vm.com1.mcr == 0x1f && vm.com1.iir_thri_pending == 1,
              "masks not applied: ier %#x mcr %#x thri %u", vm.com1.ier, vm.com1.mcr,
              vm.com1.iir_thri_pending);
        blob_free(&s);

        const uint8_t reserved[8] = {0, 0, 0, 0, 0, 0, 0, 1};
        s = one_record(DREC_SERIAL_V1, reserved, 8);
        CHECK(restore(&vm, &s, &err) == -EINVAL && strstr(err.msg, "reserved"),
              "reserved byte set: '%s'", err.msg);
        blob_free(&s);

        s = one_record(DREC_SERIAL_V1, wild, 7);
        CHECK(restore(&vm, &s, &err) == -EINVAL && strstr(err.msg, "7 bytes"),
              "short UART record: '%s'", err.msg);
        blob_free(&s);

        s = one_record(DREC_SERIAL_RAW, wild, 8);
        CHECK(restore(&vm, &s, &err) == -EINVAL, "legacy record of the wrong size: '%s'", err.msg);
        blob_free(&s);

        s = one_record(9, wild, 8);
        CHECK(restore(&vm, &s, &err) == -EINVAL && strstr(err.msg, "record 9"),
              "a record no device takes: '%s'", err.msg);
        blob_free(&s);

        s = one_record(0, wild, 8);
        CHECK(restore(&vm, &s, &err) == -EINVAL, "record type 0: '%s'", err.msg);
        blob_free(&s);

        /* A section cut inside a record's header and inside its data. */
        s = one_record(DREC_SERIAL_V1, reserved, 8);
        for (size_t cut = 1; cut < s.len; cut++) {
                sprout_err_clear(&err);
                int r = devices_restore(&vm, s.data, cut, &err);
                CHECK(r == -EINVAL, "section cut at %zu of %zu: r=%d '%s'", cut, s.len, r, err.msg);
        }
        blob_free(&s);

        /* An empty section is a VM whose devices had nothing to save: nothing changes. */
        sprout_err_clear(&err);
        CHECK(devices_restore(&vm, NULL, 0, &err) == 0, "empty section: '%s'", err.msg);
}

int main(void)
{
        case_roundtrip();
        case_legacy();
        case_forged();
        return check_finish();
}
