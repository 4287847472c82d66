/* libFuzzer target: the sprout device as a hostile guest drives it, with no vCPU and no KVM: the
 * input writes the mailbox, rings the doorbell (directly, or through the port and MMIO buses with
 * any offset and width), touches the UART and i8042 on the same device table, and asks for new
 * clone identities. The mailbox is a heap buffer of exactly SPROUT_MAILBOX_SIZE here (the real
 * one is an mmap), so ASan sees any read outside it. White-box: the VMM core's private header.
 * The VM fd is -1, so a UART interrupt only logs a failed KVM_IRQ_LINE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/abi.h"
#include "fuzz_util.h"
#include "vmm_internal.h"

/* The part of the mailbox the device reads: the header page and the log area. */
#define GUEST_AREA (SPROUT_MB_LOG_OFF + SPROUT_MB_LOG_SIZE)

static struct sprout_vm vm;
static uint8_t *mailbox, fresh[SPROUT_MB_HDR_SIZE];
static char console_buf[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct sprout_dev d;
        struct sprout_err err = {0};
        (void)argc;
        (void)argv;
        fuzz_setup();
        /* The header as the VMM leaves it for a new guest. */
        if (sprout_dev_init(&d, &err) < 0)
                abort();
        memcpy(fresh, d.mailbox, sizeof(fresh));
        sprout_dev_free(&d);
        mailbox = calloc(1, SPROUT_MAILBOX_SIZE);
        return mailbox ? 0 : -1;
}

static void reset_vm(void)
{
        struct sprout_err err = {0};
        memset(&vm, 0, sizeof(vm));
        vm.fd = vm.vcpu_fd = -1;
        vm.console =
            (struct console_log){.buf = console_buf, .cap = sizeof(console_buf), .echo_fd = -1};
        serial_init(&vm.com1, 4);
        memset(mailbox, 0, GUEST_AREA);
        memcpy(mailbox, fresh, sizeof(fresh));
        vm.sdev.mailbox = mailbox;
        int r = vm_add_io(&vm, 0x3f8, 8, false, &serial_ops, &vm.com1, &err);
        r |= vm_add_io(&vm, 0x60, 5, false, &i8042_ops, NULL, &err);
        r |= vm_add_io(&vm, SPROUT_DOORBELL_PORT, 4, false, &sprout_db_ops, &vm.sdev, &err);
        r |= vm_add_io(&vm, SPROUT_DOORBELL_MMIO_GPA, SPROUT_DOORBELL_MMIO_SIZE, true,
                       &sprout_db_ops, &vm.sdev, &err);
        if (r)
                abort();
}

/* The run loop's side of a ring: each event handed back must be a complete one. */
static void handle(uint32_t db)
{
        struct sprout_vm_event ev;
        memset(&ev, 0x5a, sizeof(ev));
        int r = sprout_dev_handle(&vm, db, &ev);
        if (r != 0 && r != 1)
                abort();
        if (strnlen(ev.detail, sizeof(ev.detail)) == sizeof(ev.detail))
                abort();
        if (r == 1 && (ev.kind < SPROUT_EV_READY || ev.kind > SPROUT_EV_STOPPED))
                abort();
        if (r == 1 && ev.kind == SPROUT_EV_DONE && ev.arg > SPROUT_MB_RESP_SIZE)
                abort();
}

struct input {
        const uint8_t *p;
        size_t n;
};

static uint64_t take(struct input *in, unsigned bytes)
{
        uint64_t v = 0;
        for (unsigned i = 0; i < bytes && in->n; i++, in->n--)
                v |= (uint64_t)*in->p++ << (8 * i);
        return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct input in = {data, size};
        reset_vm();
        while (in.n) {
                switch (take(&in, 1) % 4) {
                case 0: { /* the guest writes len bytes of the mailbox at off */
                        size_t off = take(&in, 2) % GUEST_AREA, len = take(&in, 2);
                        if (len > in.n)
                                len = in.n;
                        if (len > GUEST_AREA - off)
                                len = GUEST_AREA - off;
                        memcpy(mailbox + off, in.p, len);
                        in.p += len;
                        in.n -= len;
                        break;
                }
                case 1: /* a doorbell value, as the run loop hands it over */
                        handle((uint32_t)take(&in, 4));
                        break;
                case 2: { /* an access on the buses: device, offset inside it, width, direction */
                        const struct io_range *r = &vm.io[take(&in, 1) % vm.nio];
                        uint64_t off = take(&in, 2) % r->len;
                        uint32_t len = 1u << (take(&in, 1) % (r->mmio ? 4 : 3));
                        bool write = take(&in, 1) & 1;
                        uint8_t buf[8];
                        uint64_t v = take(&in, 8);
                        memcpy(buf, &v, sizeof(buf));
                        r->ops->io(&vm, r->dev, off, buf, len, write);
                        if (vm.sdev.rang) {
                                vm.sdev.rang = false;
                                handle(vm.sdev.pending_db);
                        }
                        break;
                }
                default: { /* the host gives the clone a new identity */
                        uint8_t uuid[16] = {0};
                        struct sprout_err err = {0};
                        uuid[0] = (uint8_t)take(&in, 1);
                        if (sprout_dev_write_identity(&vm.sdev, uuid, &err) < 0)
                                abort();
                        break;
                }
                }
        }
        char tail[512];
        console_log_read(&vm.console, 0, 5, tail, sizeof(tail), NULL);
        return 0;
}
