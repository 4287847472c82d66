/* A 16550A UART on COM1, output only: what the guest transmits goes to the VM's bounded console
 * log. The THR-empty interrupt is modelled because Linux's tty layer waits for it once user space
 * writes. */
#include <errno.h>
#include <string.h>

#include "state_blob.h"
#include "vmm_internal.h"

enum {
        UART_RBR_THR = 0,
        UART_IER = 1,
        UART_IIR_FCR = 2,
        UART_LCR = 3,
        UART_MCR = 4,
        UART_LSR = 5,
        UART_MSR = 6,
        UART_SCR = 7,
};

#define UART_LCR_DLAB   0x80
#define UART_IER_THRI   0x02
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI   0x02
#define UART_IIR_FIFO   0xc0
#define UART_LSR_THRE   0x20
#define UART_LSR_TEMT   0x40
#define UART_MCR_LOOP   0x10
#define UART_MSR_CTS    0x10
#define UART_MSR_DSR    0x20
#define UART_MSR_DCD    0x80

void serial_init(struct serial *s, int irq)
{
        memset(s, 0, sizeof(*s));
        s->irq = irq;
}

static void serial_update_irq(struct sprout_vm *vm, struct serial *s)
{
        int level = (s->ier & UART_IER_THRI) && s->iir_thri_pending;
        if (level != s->irq_level) {
                s->irq_level = level;
                vm_irq_line(vm, s->irq, level);
        }
}

static uint8_t serial_read(struct serial *s, uint64_t off)
{
        bool dlab = s->lcr & UART_LCR_DLAB;
        switch (off) {
        case UART_RBR_THR:
                return dlab ? s->dll : 0; /* no input: console input is not offered */
        case UART_IER:
                return dlab ? s->dlm : s->ier;
        case UART_IIR_FCR:
                if ((s->ier & UART_IER_THRI) && s->iir_thri_pending) {
                        s->iir_thri_pending = 0; /* reading IIR acknowledges THR empty */
                        return UART_IIR_FIFO | UART_IIR_THRI;
                }
                return UART_IIR_FIFO | UART_IIR_NO_INT;
        case UART_LCR:
                return s->lcr;
        case UART_MCR:
                return s->mcr;
        case UART_LSR:
                return UART_LSR_THRE | UART_LSR_TEMT; /* transmit is instant */
        case UART_MSR:
                if (s->mcr & UART_MCR_LOOP) /* loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD */
                        return (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
                                         ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
                return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
        case UART_SCR:
                return s->scr;
        default:
                return 0xff;
        }
}

static void serial_write(struct sprout_vm *vm, struct serial *s, uint64_t off, uint8_t v)
{
        bool dlab = s->lcr & UART_LCR_DLAB;
        switch (off) {
        case UART_RBR_THR:
                if (dlab) {
                        s->dll = v;
                } else if (!(s->mcr & UART_MCR_LOOP)) {
                        char c = (char)v;
                        console_log_put(&vm->console, &c, 1);
                        s->iir_thri_pending = 1;
                }
                break;
        case UART_IER:
                if (dlab) {
                        s->dlm = v;
                } else {
                        /* Enabling THRI with an empty THR raises the interrupt at once. */
                        if ((v & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
                                s->iir_thri_pending = 1;
                        s->ier = v & 0x0f;
                }
                break;
        case UART_LCR:
                s->lcr = v;
                break;
        case UART_MCR:
                s->mcr = v & 0x1f;
                break;
        case UART_SCR:
                s->scr = v;
                break;
        default: /* FCR, LSR and MSR writes change nothing we model */
                break;
        }
}

static void serial_io(struct sprout_vm *vm, void *dev, uint64_t offset, uint8_t *data, uint32_t len,
                      bool is_write)
{
        struct serial *s = dev;
        /* Wider accesses are treated as consecutive byte accesses, as the bus would. */
        for (uint32_t i = 0; i < len && offset + i < 8; i++) {
                if (is_write)
                        serial_write(vm, s, offset + i, data[i]);
                else
                        data[i] = serial_read(s, offset + i);
        }
        serial_update_irq(vm, s);
}

/* The UART's registers as a snapshot stores them (DREC_SERIAL_V1, docs/snapshot-format.md): a
 * fixed layout of guest-visible registers only; the IRQ wiring is the restoring VM's own. */
struct serial_state_v1 {
        uint8_t ier, iir_thri_pending, lcr, mcr, scr, dll, dlm;
        uint8_t reserved; /* 0 */
};
_Static_assert(sizeof(struct serial_state_v1) == 8, "serial record layout is on disk");

/* The legacy record was the host struct: these seven registers first, then host fields. */
#define SERIAL_RAW_LEN 16

static void serial_save(void *dev, struct blob *b)
{
        const struct serial *s = dev;
        struct serial_state_v1 r = {
            s->ier, s->iir_thri_pending, s->lcr, s->mcr, s->scr, s->dll, s->dlm, 0};
        blob_put(b, DREC_SERIAL_V1, &r, sizeof(r));
}

static int serial_restore(void *dev, uint32_t type, const void *data, size_t len,
                          struct sprout_err *err)
{
        struct serial *s = dev;
        struct serial_state_v1 r = {0};
        size_t want = type == DREC_SERIAL_V1 ? sizeof(r) : SERIAL_RAW_LEN;
        if (len != want)
                return sprout_err_set(err, -EINVAL, "device state: UART record of %zu bytes", len);
        memcpy(&r, data, 7);
        if (type == DREC_SERIAL_V1 && ((const uint8_t *)data)[7] != 0)
                return sprout_err_set(err, -EINVAL, "device state: UART record reserved byte set");
        /* Only bits the model gives meaning to: a forged file sets nothing else. */
        s->ier = r.ier & 0x0f;
        s->iir_thri_pending = r.iir_thri_pending ? 1 : 0;
        s->lcr = r.lcr;
        s->mcr = r.mcr & 0x1f;
        s->scr = r.scr;
        s->dll = r.dll;
        s->dlm = r.dlm;
        return 0;
}

const struct io_device_ops serial_ops = {
    .name = "serial",
    .io = serial_io,
    .state_rec = DREC_SERIAL_V1,
    .legacy_rec = DREC_SERIAL_RAW,
    .save = serial_save,
    .restore = serial_restore,
};
