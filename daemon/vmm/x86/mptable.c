/* An Intel MultiProcessor Specification 1.4 table: how a guest without ACPI learns its CPUs, its
 * IOAPIC and the ISA interrupt routing, so Linux drives the LAPIC timer instead of the PIC. */
#include <errno.h>
#include <string.h>

#include "boot_layout.h"
#include "vmm_internal.h"

#define MP_APIC_VERSION   0x14
#define MP_IOAPIC_VERSION 0x11

struct __attribute__((packed)) mpf_intel {
        char signature[4]; /* "_MP_" */
        uint32_t physptr;
        uint8_t length; /* in 16-byte units */
        uint8_t specification;
        uint8_t checksum;
        uint8_t feature[5];
};

struct __attribute__((packed)) mpc_table {
        char signature[4]; /* "PCMP" */
        uint16_t length;
        uint8_t spec;
        uint8_t checksum;
        char oem[8];
        char productid[12];
        uint32_t oemptr;
        uint16_t oemsize;
        uint16_t oemcount; /* entries */
        uint32_t lapic;
        uint16_t ext_length;
        uint8_t ext_checksum;
        uint8_t reserved;
};

struct __attribute__((packed)) mpc_cpu {
        uint8_t type; /* 0 */
        uint8_t apicid;
        uint8_t apicver;
        uint8_t cpuflag;
        uint32_t cpufeature;
        uint32_t featureflag;
        uint32_t reserved[2];
};

struct __attribute__((packed)) mpc_bus {
        uint8_t type; /* 1 */
        uint8_t busid;
        char bustype[6];
};

struct __attribute__((packed)) mpc_ioapic {
        uint8_t type; /* 2 */
        uint8_t apicid;
        uint8_t apicver;
        uint8_t flags;
        uint32_t apicaddr;
};

struct __attribute__((packed)) mpc_intsrc {
        uint8_t type; /* 3: I/O interrupt, 4: local interrupt */
        uint8_t irqtype;
        uint16_t irqflag;
        uint8_t srcbus;
        uint8_t srcbusirq;
        uint8_t dstapic;
        uint8_t dstirq;
};

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header is 44 bytes");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(struct mpc_bus) == 8, "MP bus entry is 8 bytes");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP IOAPIC entry is 8 bytes");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt entry is 8 bytes");

enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_CPU_ENABLED 0x1
#define MP_CPU_BSP     0x2
#define MP_ISA_BUS     0
#define MP_ISA_IRQS    16

static uint8_t mp_checksum(const void *p, size_t len)
{
        uint8_t sum = 0;
        for (size_t i = 0; i < len; i++)
                sum = (uint8_t)(sum + ((const uint8_t *)p)[i]);
        return (uint8_t)(0x100 - sum);
}

int mptable_write(struct sprout_vm *vm, unsigned ncpus, struct sprout_err *err)
{
        const size_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
                            ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
                            sizeof(struct mpc_ioapic) +
                            (MP_ISA_IRQS + 2) * sizeof(struct mpc_intsrc);
        if (size > BOOT_EBDA_END - BOOT_MPTABLE_ADDR)
                return sprout_err_set(err, -E2BIG, "%u vCPUs do not fit in the MP table area",
                                      ncpus);
        uint8_t *base = guest_ptr(vm, BOOT_MPTABLE_ADDR, size);
        if (!base)
                return sprout_err_set(err, -EFAULT, "guest RAM too small for the MP table");
        memset(base, 0, size);

        struct mpf_intel *mpf = (struct mpf_intel *)base;
        struct mpc_table *mpc = (struct mpc_table *)(mpf + 1);
        uint8_t *p = (uint8_t *)(mpc + 1);
        uint16_t count = 0;
        const uint8_t ioapic_id = (uint8_t)ncpus;

        for (unsigned i = 0; i < ncpus; i++) {
                struct mpc_cpu *cpu = (struct mpc_cpu *)p;
                cpu->type = 0;
                cpu->apicid = (uint8_t)i;
                cpu->apicver = MP_APIC_VERSION;
                cpu->cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
                cpu->cpufeature = 0x600;  /* family 6: what the guest CPUID says on our hosts */
                cpu->featureflag = 0x201; /* FPU, APIC */
                p += sizeof(*cpu);
                count++;
        }
        struct mpc_bus *bus = (struct mpc_bus *)p;
        bus->type = 1;
        bus->busid = MP_ISA_BUS;
        memcpy(bus->bustype, "ISA   ", 6);
        p += sizeof(*bus);
        count++;

        struct mpc_ioapic *io = (struct mpc_ioapic *)p;
        io->type = 2;
        io->apicid = ioapic_id;
        io->apicver = MP_IOAPIC_VERSION;
        io->flags = 1;
        io->apicaddr = (uint32_t)IOAPIC_ADDR;
        p += sizeof(*io);
        count++;

        /* KVM's default routing wires ISA IRQ n to IOAPIC pin n, so the table says exactly that. */
        for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
                struct mpc_intsrc *s = (struct mpc_intsrc *)p;
                s->type = 3;
                s->irqtype = MP_INT;
                s->srcbus = MP_ISA_BUS;
                s->srcbusirq = irq;
                s->dstapic = ioapic_id;
                s->dstirq = irq;
                p += sizeof(*s);
                count++;
        }
        static const uint8_t lint_type[2] = {MP_EXTINT, MP_NMI};
        for (uint8_t lint = 0; lint < 2; lint++) {
                struct mpc_intsrc *s = (struct mpc_intsrc *)p;
                s->type = 4;
                s->irqtype = lint_type[lint];
                s->srcbus = MP_ISA_BUS;
                s->dstapic = 0xff; /* every local APIC */
                s->dstirq = lint;
                p += sizeof(*s);
                count++;
        }

        memcpy(mpc->signature, "PCMP", 4);
        mpc->length = (uint16_t)(p - (uint8_t *)mpc);
        mpc->spec = 4;
        memcpy(mpc->oem, "SPROUT  ", 8);
        memcpy(mpc->productid, "MICROVM     ", 12);
        mpc->oemcount = count;
        mpc->lapic = (uint32_t)LAPIC_ADDR;
        mpc->checksum = mp_checksum(mpc, mpc->length);

        memcpy(mpf->signature, "_MP_", 4);
        mpf->physptr = (uint32_t)(BOOT_MPTABLE_ADDR + sizeof(*mpf));
        mpf->length = 1;
        mpf->specification = 4;
        mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
        return 0;
}
