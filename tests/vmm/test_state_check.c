/* The checks a snapshot's saved KVM state passes before restore's first KVM_SET_* ioctl
 * (daemon/vmm/state/state_check.c), without KVM. Each "valid" record is what a Linux 6.1 guest
 * typically has at READY on an Intel host (64-bit user mode, x2APIC, TSC-deadline LAPIC timer,
 * PIC masked behind the IOAPIC), built by hand because no KVM is there to read a real one: the
 * kvm-labelled clone tests restore real ones. Each forged variant must be refused with its reason.
 * The last cases run restore itself on a VM with no KVM fds: a forged record must be refused by
 * its check, and a valid one must get as far as the first ioctl. White-box, like vmm.device_state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check.h"
#include "state_blob.h"
#include "vmm_internal.h"

static struct sprout_err err;

/* A call refused with -EINVAL or -ENOTSUP and a message containing why. */
#define REFUSED(call, why, what)                                                                   \
        do {                                                                                       \
                sprout_err_clear(&err);                                                            \
                int r_ = (call);                                                                   \
                CHECK((r_ == -EINVAL || r_ == -ENOTSUP) && strstr(err.msg, why),                   \
                      "%s: r=%d '%s', want '%s'", what, r_, err.msg, why);                         \
        } while (0)
#define ACCEPTED(call, what)                                                                       \
        do {                                                                                       \
                sprout_err_clear(&err);                                                            \
                int r_ = (call);                                                                   \
                CHECK(r_ == 0, "%s refused: r=%d '%s'", what, r_, err.msg);                        \
        } while (0)

/* ---- a host: KVM's supported CPUID and MSR list on a typical Intel machine ---- */

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX
static const struct kvm_cpuid_entry2 host_leaves[] = {
    {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69},
    {.function = 1, .eax = 0x000906ea, .ebx = 0x00000800, .ecx = 0x77fa3203, .edx = 0x0f8bfbff},
    {.function = 7,
     .index = 0,
     .flags = SIG,
     .eax = 1,
     .ebx = 0x009c27ab,
     .ecx = 0x00000004,
     .edx = 0xbc000400},
    {.function = 7, .index = 1, .flags = SIG},
    {.function = 0xd, .index = 0, .flags = SIG, .eax = 0x7, .ebx = 0x340, .ecx = 0x340},
    {.function = 0xd, .index = 1, .flags = SIG, .eax = 0xf},
    {.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d},
    {.function = 0x40000001, .eax = 0x01007efb},
    {.function = 0x80000000, .eax = 0x80000008},
    {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
    {.function = 0x80000008, .eax = 0x3027},
};
#define NLEAVES (sizeof(host_leaves) / sizeof(host_leaves[0]))

static const uint32_t host_msrs[] = {0x10,       0x174,      0x175,      0x176,      0x1a0,
                                     0x277,      0x6e0,      0xc0000081, 0xc0000082, 0xc0000083,
                                     0xc0000084, 0xc0000102, 0xc0000103, 0x4b564d00, 0x4b564d01,
                                     0x4b564d02, 0x4b564d03, 0x4b564d04};
#define NHOST_MSRS (sizeof(host_msrs) / sizeof(host_msrs[0]))

static struct sprout_kvm host;

static void host_init(void)
{
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NLEAVES * sizeof(c->entries[0]));
        c->nent = NLEAVES;
        memcpy(c->entries, host_leaves, sizeof(host_leaves));
        host = (struct sprout_kvm){.fd = -1, .kind = SPROUT_HOST_VMX, .supported_cpuid = c};
        host.msr_index = malloc(sizeof(host_msrs));
        memcpy(host.msr_index, host_msrs, sizeof(host_msrs));
        host.nmsrs = NHOST_MSRS;
}

static size_t cpuid_size(const struct kvm_cpuid2 *c)
{
        return sizeof(*c) + c->nent * sizeof(c->entries[0]);
}

/* What the VMM gives vCPU 0 on this host, and so what a snapshot taken here records. */
static struct kvm_cpuid2 *profile(void)
{
        struct kvm_cpuid2 *c = NULL;
        int r = cpu_profile_cpuid(&host, 0, &c, &err);
        CHECK(r == 0 && c, "cpu_profile_cpuid: %s", err.msg);
        return c;
}

/* A record one entry longer than c, for adding a leaf. */
static struct kvm_cpuid2 *with_room(const struct kvm_cpuid2 *c)
{
        struct kvm_cpuid2 *n = calloc(1, cpuid_size(c) + sizeof(c->entries[0]));
        memcpy(n, c, cpuid_size(c));
        return n;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
        return (struct kvm_cpuid_entry2 *)state_cpuid_find(c, fn, idx);
}

static void case_cpuid(void)
{
        struct kvm_cpuid2 *offer = profile(), *rec = profile();
        ACCEPTED(state_check_cpuid(rec, offer, &err), "this host's own profile");

        /* A snapshot from a host with fewer features is fine here. */
        leaf(rec, 7, 0)->ebx &= ~(1u << 5); /* AVX2 */
        leaf(rec, 0x80000008, 0)->eax = 0x3024;
        ACCEPTED(state_check_cpuid(rec, offer, &err), "a subset");
        free(rec);

#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_cpuid2 *c = with_room(offer);                                           \
                stmt;                                                                              \
                REFUSED(state_check_cpuid(c, offer, &err), why, what);                             \
                free(c);                                                                           \
        } while (0)
        FORGE(leaf(c, 7, 0)->ebx |= 1u << 16, "leaf 0x7.0 EBX bit 16", "AVX-512F not offered");
        FORGE(leaf(c, 1, 0)->ecx |= 1u << 5, "leaf 0x1.0 ECX bit 5", "VMX not offered");
        FORGE(leaf(c, 0xd, 0)->eax |= 0xe0, "leaf 0xd.0 EAX bit 5", "an XCR0 bit not offered");
        FORGE(leaf(c, 0x40000001, 0)->eax |= 1u << 4, "leaf 0x40000001.0 EAX bit 4",
              "async PF, which the profile hides");
        FORGE(leaf(c, 0x80000001, 0)->ecx |= 1u << 2, "leaf 0x80000001.0 ECX bit 2",
              "SVM on an Intel host");
        FORGE(leaf(c, 0, 0)->ebx = 0x68747541, "another vendor", "AuthenticAMD's vendor");
        FORGE(leaf(c, 0x40000000, 0)->ecx = 0x12345678, "another vendor or hypervisor",
              "another hypervisor signature");
        FORGE(leaf(c, 0, 0)->eax = 0x20, "exceeds this host's", "a larger max leaf");
        FORGE(leaf(c, 0x80000008, 0)->eax = 0x3034, "0x34 exceeds this host's 0x27",
              "more physical address bits than the host");
        FORGE((c->entries[c->nent++] = (struct kvm_cpuid_entry2){.function = 0x14}),
              "leaf 0x14.0 is not offered", "a leaf the host lacks");
        FORGE((c->entries[c->nent] = c->entries[1], c->nent++), "appears twice",
              "a duplicate leaf");
        FORGE(leaf(c, 7, 0)->flags = 0, "flags 0x0", "flags that differ from the host's");
        FORGE(leaf(c, 1, 0)->padding[1] = 1, "padding", "entry padding");
        FORGE(c->padding = 1, "padding", "header padding");
        FORGE(c->nent = 0, "0 entries", "no entries");
#undef FORGE
        /* Mirrors of guest state are not capabilities: OSXSAVE, OSPKE and the APIC ID differ
         * from the profile in a real guest's CPUID. */
        rec = profile();
        leaf(rec, 1, 0)->ecx |= 1u << 27;
        leaf(rec, 7, 0)->ecx |= 1u << 4;
        leaf(rec, 1, 0)->ebx ^= 0x0f000000;
        ACCEPTED(state_check_cpuid(rec, offer, &err), "OSXSAVE, OSPKE and APIC ID");
        free(rec);
        free(offer);
}

/* ---- MSRs ---- */

static struct kvm_msrs *msrs_valid(uint32_t extra, size_t *len)
{
        static const struct kvm_msr_entry e[] = {
            {.index = 0x10, .data = 0x1234567890},
            {.index = 0x174, .data = 0x10},
            {.index = 0x175, .data = 0xfffffe0000003000},
            {.index = 0x176, .data = 0xffffffff81c01560},
            {.index = 0xc0000081, .data = 0x0023001000000000},
            {.index = 0xc0000082, .data = 0xffffffff81c00080},
            {.index = 0xc0000084, .data = 0x47700},
            {.index = 0xc0000102, .data = 0},
            {.index = 0x6e0, .data = 0x1234567999},
            {.index = 0x4b564d01, .data = 0x2a01001},
        };
        size_t n = sizeof(e) / sizeof(e[0]);
        *len = sizeof(struct kvm_msrs) + n * sizeof(e[0]);
        struct kvm_msrs *m = calloc(1, *len + extra * sizeof(e[0]));
        m->nmsrs = (uint32_t)n;
        memcpy(m->entries, e, sizeof(e));
        return m;
}

static void case_msrs(void)
{
        size_t len;
        struct kvm_msrs *m = msrs_valid(0, &len);
        ACCEPTED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "Linux's MSRs");
        m->nmsrs = 0;
        ACCEPTED(state_check_msrs(m, sizeof(*m), host_msrs, NHOST_MSRS, &err), "no MSRs");
        free(m);

        m = msrs_valid(0, &len);
        m->entries[3].index = 0xc0010117; /* an AMD MSR this host does not list */
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err),
                "MSR 0xc0010117, which this host's KVM does not list", "an MSR outside the list");
        free(m);
        m = msrs_valid(0, &len);
        m->entries[7].index = 0x10;
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "MSR 0x10 appears twice",
                "a duplicate MSR");
        free(m);
        m = msrs_valid(0, &len);
        m->nmsrs += 1;
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "do not fit",
                "nmsrs beyond the record");
        m->nmsrs = 0xffffffffu;
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "do not fit",
                "nmsrs that would overflow");
        free(m);
        m = msrs_valid(0, &len);
        m->entries[0].reserved = 1;
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "reserved",
                "an entry's reserved field");
        m->entries[0].reserved = 0;
        m->pad = 1;
        REFUSED(state_check_msrs(m, len, host_msrs, NHOST_MSRS, &err), "padding", "header pad");
        free(m);
}

/* ---- PIT, PIC, IOAPIC ---- */

static struct kvm_pit_state2 pit_valid(void)
{
        struct kvm_pit_state2 p;
        memset(&p, 0, sizeof(p));
        /* Channel 0 shut down by Linux (mode 0, count 0 -> 65536), channel 1 never programmed
         * (KVM's 0xff), channel 2 left by TSC calibration with its gate closed. */
        p.channels[0] = (struct kvm_pit_channel_state){.count = 0x10000,
                                                       .rw_mode = 3,
                                                       .read_state = 3,
                                                       .write_state = 3,
                                                       .mode = 0,
                                                       .gate = 1};
        p.channels[1] = (struct kvm_pit_channel_state){.count = 0x10000, .mode = 0xff, .gate = 1};
        p.channels[2] = (struct kvm_pit_channel_state){.count = 0xffff,
                                                       .rw_mode = 3,
                                                       .read_state = 3,
                                                       .write_state = 3,
                                                       .mode = 0,
                                                       .gate = 0,
                                                       .count_load_time = 123456789};
        return p;
}

static void case_pit(void)
{
        struct kvm_pit_state2 p = pit_valid();
        ACCEPTED(state_check_pit(&p, &err), "Linux's PIT");
        p.channels[0].mode = 2;
        p.channels[0].count = 1193;
        p.flags = KVM_PIT_FLAGS_HPET_LEGACY;
        ACCEPTED(state_check_pit(&p, &err), "a periodic channel 0 at 1 kHz, HPET legacy");

#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_pit_state2 f = pit_valid();                                             \
                stmt;                                                                              \
                REFUSED(state_check_pit(&f, &err), why, what);                                     \
        } while (0)
        FORGE(f.channels[0].mode = 7, "PIT channel 0 mode 7 is not a mode", "mode 7");
        FORGE(f.channels[2].mode = 6, "PIT channel 2 mode 6 is not a mode", "mode 6");
        FORGE(f.channels[1].count = 0, "PIT channel 1 count 0", "count 0 (CVE-2015-7513)");
        FORGE(f.channels[0].count = 0x10001, "count 65537", "a count past 16 bits");
        FORGE(f.channels[0].rw_mode = 4, "access state", "rw_mode 4");
        FORGE(f.channels[0].read_state = 9, "access state", "read_state 9");
        FORGE(f.channels[0].count_latched = 5, "access state", "count_latched 5");
        FORGE(f.channels[2].gate = 2, "are flags", "gate 2");
        FORGE(f.channels[2].bcd = 7, "are flags", "bcd 7");
        FORGE(f.flags = 0x80, "PIT flags 0x80", "unknown flags");
        FORGE(f.reserved[4] = 1, "reserved word 4", "a reserved word");
#undef FORGE
}

static struct kvm_irqchip pic_valid(uint32_t chip)
{
        struct kvm_irqchip c;
        memset(&c, 0, sizeof(c));
        c.chip_id = chip;
        bool master = chip == KVM_IRQCHIP_PIC_MASTER;
        c.chip.pic = (struct kvm_pic_state){.imr = master ? 0xfb : 0xff,
                                            .irq_base = master ? 0x30 : 0x38,
                                            .init4 = 1,
                                            .elcr_mask = master ? 0xf8 : 0xde};
        return c;
}

static void case_pic(void)
{
        struct kvm_irqchip m = pic_valid(KVM_IRQCHIP_PIC_MASTER),
                           s = pic_valid(KVM_IRQCHIP_PIC_SLAVE);
        ACCEPTED(state_check_pic(&m, &err), "Linux's master PIC");
        ACCEPTED(state_check_pic(&s, &err), "Linux's slave PIC");
        m.chip.pic.isr = 0x01;
        m.chip.pic.irr = 0x10;
        m.chip.pic.elcr = 0x08;
        ACCEPTED(state_check_pic(&m, &err), "an IRQ in service, one requested, IRQ3 level");
        m.chip.pic.isr = m.chip.pic.irr = m.chip.pic.imr = m.chip.pic.last_irr = 0xff;
        m.chip.pic.auto_eoi = 1;
        ACCEPTED(state_check_pic(&m, &err), "any ISR/IRR/IMR, even in auto-EOI mode");

#define FORGE(id, stmt, why, what)                                                                 \
        do {                                                                                       \
                struct kvm_irqchip c = pic_valid(id);                                              \
                struct kvm_pic_state *p = &c.chip.pic;                                             \
                (void)p;                                                                           \
                stmt;                                                                              \
                REFUSED(state_check_pic(&c, &err), why, what);                                     \
        } while (0)
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->irq_base = 0x31, "not a multiple of 8", "irq_base 0x31");
        FORGE(KVM_IRQCHIP_PIC_SLAVE, p->irq_base = 0x3c, "not a multiple of 8", "irq_base 0x3c");
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->elcr_mask = 0xff, "KVM's mask is 0xf8", "elcr_mask 0xff");
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->elcr = 0x01, "ELCR 0x01", "IRQ0 level-triggered");
        FORGE(KVM_IRQCHIP_PIC_SLAVE, p->elcr = 0x01, "KVM's mask is 0xde", "IRQ8 level-triggered");
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->priority_add = 8, "priority 8", "priority_add 8");
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->init_state = 4, "init state 4", "init_state 4");
        FORGE(KVM_IRQCHIP_PIC_MASTER, p->read_reg_select = 2, "mode flag", "read_reg_select 2");
        FORGE(KVM_IRQCHIP_PIC_SLAVE, p->special_fully_nested_mode = 3, "mode flag", "sfnm 3");
        FORGE(KVM_IRQCHIP_PIC_MASTER, c.chip.dummy[100] = 1, "past its state", "a tail byte");
        FORGE(KVM_IRQCHIP_PIC_MASTER, c.pad = 1, "padding", "irqchip padding");
        FORGE(KVM_IRQCHIP_PIC_MASTER, c.chip_id = 2, "not a PIC", "the IOAPIC as a PIC");
#undef FORGE
}

static struct kvm_irqchip ioapic_valid(void)
{
        struct kvm_irqchip c;
        memset(&c, 0, sizeof(c));
        c.chip_id = KVM_IRQCHIP_IOAPIC;
        struct kvm_ioapic_state *s = &c.chip.ioapic;
        s->base_address = 0xfec00000;
        s->ioregsel = 0x19;
        for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
                s->redirtbl[i].bits = 1ull << 16;  /* masked */
        s->redirtbl[4].bits = 0x21;                /* COM1: vector 0x21, edge, physical, CPU 0 */
        s->redirtbl[9].bits = 0x0000000000008022;  /* a level-triggered line */
        s->redirtbl[9].bits |= 1ull << 14;         /* its remote IRR: in service */
        s->redirtbl[10].bits = 0x00fe000000010031; /* masked, ext dest ID bits, CPU 0 */
        return c;
}

static void case_ioapic(void)
{
        struct kvm_irqchip c = ioapic_valid();
        ACCEPTED(state_check_ioapic(&c, &err), "Linux's IOAPIC");
#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_irqchip f = ioapic_valid();                                             \
                struct kvm_ioapic_state *s = &f.chip.ioapic;                                       \
                (void)s;                                                                           \
                stmt;                                                                              \
                REFUSED(state_check_ioapic(&f, &err), why, what);                                  \
        } while (0)
        FORGE(s->base_address = 0xfee00000, "IOAPIC base 0xfee00000", "the IOAPIC over the LAPIC");
        FORGE(s->ioregsel = 0x100, "wider than 8 bits", "IOREGSEL 0x100");
        FORGE(s->id = 16, "id 16", "id 16");
        FORGE(s->irr = 1u << 24, "beyond 23", "IRR of pin 24");
        FORGE(s->pad = 1, "padding", "pad");
        FORGE(s->redirtbl[3].bits |= 1ull << 17, "pin 3: reserved bits", "RTE bit 17");
        FORGE(s->redirtbl[3].bits |= 1ull << 40, "pin 3: reserved bits", "RTE bit 40");
        FORGE(s->redirtbl[4].bits |= 3ull << 8, "pin 4: delivery mode 3 is reserved", "mode 3");
        FORGE(s->redirtbl[5].bits = (6ull << 8) | (1ull << 16), "delivery mode 6", "masked mode 6");
        FORGE(s->redirtbl[4].bits = 0x05, "pin 4: vector 5 is illegal", "unmasked vector 5");
        FORGE(s->redirtbl[4].bits |= 1ull << 14, "remote IRR on an edge-triggered pin",
              "remote IRR, edge");
        FORGE(f.chip_id = 0, "not the IOAPIC", "a PIC as the IOAPIC");
        FORGE(f.chip.dummy[sizeof(struct kvm_ioapic_state) + 3] = 1, "past its state", "tail");
#undef FORGE
}

/* ---- LAPIC ---- */

static void apic_set(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
        memcpy(l->regs + off, &v, sizeof(v));
}

static struct kvm_lapic_state lapic_valid(void)
{
        struct kvm_lapic_state l;
        memset(&l, 0, sizeof(l));
        apic_set(&l, 0x30, 0x00050014); /* KVM's version, 6 LVT entries */
        apic_set(&l, 0xd0, 0x00000001); /* x2APIC logical ID of CPU 0 */
        apic_set(&l, 0xe0, 0xffffffff);
        apic_set(&l, 0xf0, 0x000001ff);  /* enabled, spurious vector 0xff */
        apic_set(&l, 0x320, 0x000400ec); /* TSC-deadline, LOCAL_TIMER_VECTOR */
        apic_set(&l, 0x330, 0x00010000);
        apic_set(&l, 0x340, 0x00000400); /* perf counters: NMI */
        apic_set(&l, 0x350, 0x00010700); /* LINT0: masked ExtINT */
        apic_set(&l, 0x360, 0x00000400); /* LINT1: NMI */
        apic_set(&l, 0x370, 0x000000fe); /* ERROR_APIC_VECTOR */
        apic_set(&l, 0x3e0, 0x00000003);
        apic_set(&l, 0x200 + 0x70, 1u << 12); /* IRR: vector 0xec pending */
        return l;
}

#define X2APIC_BASE 0xfee00d00ull
#define XAPIC_BASE  0xfee00900ull

static void case_lapic(void)
{
        struct kvm_lapic_state l = lapic_valid();
        ACCEPTED(state_check_lapic(&l, 0, X2APIC_BASE, &err), "Linux's LAPIC, x2APIC");
        apic_set(&l, 0x30, 0x00060014);
        REFUSED(state_check_lapic(&l, 0, X2APIC_BASE, &err), "LVT CMCI: vector 0 is illegal",
                "7 LVT entries with an unmasked CMCI vector 0");
        apic_set(&l, 0x2f0, 0x00010000);
        ACCEPTED(state_check_lapic(&l, 0, X2APIC_BASE, &err), "a newer KVM's 7 LVT entries");
        l = lapic_valid();
        apic_set(&l, 0xd0, 0x01000000);
        apic_set(&l, 0x310, 0xff000000);
        ACCEPTED(state_check_lapic(&l, 0, XAPIC_BASE, &err), "xAPIC, flat logical ID 1");

#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_lapic_state f = lapic_valid();                                          \
                stmt;                                                                              \
                REFUSED(state_check_lapic(&f, 0, X2APIC_BASE, &err), why, what);                   \
        } while (0)
        FORGE(apic_set(&f, 0x20, 5u << 24), "is not vCPU 0's", "APIC ID 5");
        FORGE(apic_set(&f, 0x20, 1), "is not vCPU 0's", "ID in the low bits");
        FORGE(apic_set(&f, 0x30, 0x00050015), "version register 0x00050015", "version 0x15");
        FORGE(apic_set(&f, 0x30, 0x00ff0014), "version register", "255 LVT entries");
        FORGE(apic_set(&f, 0x320, 0x000c00ec), "LVT timer 0x000c00ec sets reserved bits",
              "timer bit 19");
        FORGE(apic_set(&f, 0x320, 0x000600ec), "timer mode 3", "timer mode 3");
        FORGE(apic_set(&f, 0x350, 0x00000100), "LVT LINT0 delivery mode 1 is reserved",
              "LINT0 mode 1");
        FORGE(apic_set(&f, 0x340, 0x00000600), "LVT performance delivery mode 6", "perf mode 6");
        FORGE(apic_set(&f, 0x370, 0x00000003), "LVT error: vector 3 is illegal",
              "unmasked error vector 3");
        FORGE(apic_set(&f, 0x370, 0x000020fe), "LVT error 0x000020fe sets reserved bits",
              "error LVT bit 13");
        FORGE(apic_set(&f, 0x3e0, 0x4), "divide configuration 0x4", "TDCR bit 2");
        FORGE(apic_set(&f, 0xf0, 0x81ff), "spurious vector register", "SVR bit 15");
        FORGE(apic_set(&f, 0x80, 0x100), "TPR 0x100", "TPR bit 8");
        FORGE(apic_set(&f, 0x280, 0x100), "ESR 0x100", "ESR bit 8");
        FORGE(apic_set(&f, 0xe0, 0x7fffffff), "DFR 0x7fffffff", "DFR model 7");
        FORGE(apic_set(&f, 0x100, 0x8), "ISR has vectors 0..15", "ISR vector 3");
        FORGE(apic_set(&f, 0x200, 0x4), "IRR has vectors 0..15", "IRR vector 2");
#undef FORGE
        l = lapic_valid();
        REFUSED(state_check_lapic(&l, 0, XAPIC_BASE, &err), "bits below 24 in xAPIC mode",
                "an x2APIC LDR in xAPIC mode");
}

/* ---- vCPU events and mp_state ---- */

static struct kvm_vcpu_events events_valid(void)
{
        struct kvm_vcpu_events e;
        memset(&e, 0, sizeof(e));
        e.flags =
            KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
        return e;
}

static void case_events(void)
{
        struct kvm_vcpu_events e = events_valid();
        ACCEPTED(state_check_events(&e, &err), "nothing pending");
        e.exception =
            (typeof(e.exception)){.injected = 1, .nr = 14, .has_error_code = 1, .error_code = 6};
        e.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
        e.nmi.masked = 1;
        ACCEPTED(state_check_events(&e, &err), "a page fault being delivered, STI shadow");
        e = events_valid();
        e.interrupt = (typeof(e.interrupt)){.injected = 1, .nr = 0xec};
        e.nmi.pending = 1;
        ACCEPTED(state_check_events(&e, &err), "the timer interrupt injected, an NMI pending");

#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_vcpu_events f = events_valid();                                         \
                stmt;                                                                              \
                REFUSED(state_check_events(&f, &err), why, what);                                  \
        } while (0)
        FORGE((f.exception.injected = 1, f.exception.nr = 40), "exception 40 is not an exception",
              "exception 40");
        FORGE(f.exception.nr = 32, "exception 32 is not an exception", "stale nr 32");
        FORGE((f.exception.injected = 1, f.exception.nr = 3, f.exception.has_error_code = 1),
              "exception 3 has no error code", "#BP with an error code");
        FORGE((f.exception.injected = 1, f.exception.nr = 2), "vector 2 is the NMI", "#NMI");
        FORGE(f.exception.injected = 2, "exception flags", "injected 2");
        FORGE(f.exception.pending = 3, "exception flags", "pending 3");
        FORGE((f.interrupt.injected = 1, f.interrupt.nr = 14), "external interrupt vector 14",
              "an injected interrupt on an exception's vector");
        FORGE(f.interrupt.shadow = 4, "interrupt flags", "shadow 4");
        FORGE(f.interrupt.soft = 2, "interrupt flags", "soft 2");
        FORGE(f.nmi.pad = 1, "NMI state", "NMI pad");
        FORGE(f.nmi.pending = 3, "NMI state", "3 NMIs pending");
        FORGE(f.nmi.masked = 2, "NMI state", "masked 2");
        FORGE(f.sipi_vector = 0x100, "SIPI vector 0x100", "SIPI vector");
        FORGE(f.smi.smm = 1, "no SMM", "in SMM");
        FORGE(f.smi.pending = 1, "no SMM", "an SMI pending");
        FORGE(f.flags |= KVM_VCPUEVENT_VALID_PAYLOAD, "flags 0x1d", "the payload flag");
        FORGE(f.flags |= 0x100, "unknown bits", "an unknown flag");
        FORGE(f.triple_fault.pending = 1, "triple-fault", "a pending triple fault");
        FORGE(f.exception_payload = 0xdead, "payload", "a payload");
        FORGE(f.reserved[25] = 1, "reserved byte 25", "a reserved byte");
#undef FORGE

        struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
        ACCEPTED(state_check_mp_state(&mp, &err), "runnable");
        mp.mp_state = KVM_MP_STATE_HALTED;
        ACCEPTED(state_check_mp_state(&mp, &err), "halted");
        mp.mp_state = KVM_MP_STATE_INIT_RECEIVED;
        REFUSED(state_check_mp_state(&mp, &err), "mp_state 2", "INIT received on the BSP");
        mp.mp_state = 77;
        REFUSED(state_check_mp_state(&mp, &err), "mp_state 77", "mp_state 77");
}

/* ---- regs and sregs ---- */

static struct kvm_segment seg(uint16_t sel, uint8_t type, uint8_t dpl, bool code)
{
        return (struct kvm_segment){.base = 0,
                                    .limit = 0xffffffff,
                                    .selector = sel,
                                    .type = type,
                                    .present = 1,
                                    .dpl = dpl,
                                    .db = code ? 0 : 1,
                                    .s = 1,
                                    .l = code ? 1 : 0,
                                    .g = 1};
}

/* The handler's process rang READY: 64-bit user mode, Linux's GDT and TSS in the CPU entry area,
 * x2APIC, CR4 with what this CPU offers. */
static struct kvm_sregs sregs_valid(void)
{
        struct kvm_sregs s;
        memset(&s, 0, sizeof(s));
        s.cs = seg(0x33, 11, 3, true);
        s.ss = seg(0x2b, 3, 3, false);
        s.ds = s.es = s.ss;
        s.fs = (struct kvm_segment){.base = 0x7f3a1c2d4740, .limit = 0xffffffff, .unusable = 1};
        s.gs = (struct kvm_segment){.limit = 0xffffffff, .unusable = 1};
        s.tr = (struct kvm_segment){.base = 0xfffffe0000003000,
                                    .limit = 0x4087,
                                    .selector = 0x40,
                                    .type = 11,
                                    .present = 1};
        s.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .unusable = 1};
        s.gdt = (struct kvm_dtable){.base = 0xfffffe0000001000, .limit = 0x7f};
        s.idt = (struct kvm_dtable){.base = 0xfffffe0000000000, .limit = 0xfff};
        s.cr0 = 0x80050033;
        s.cr2 = 0x7f3a1c000000;
        s.cr3 = 0x10a5000;
        s.cr4 =
            0x370ef0; /* PSE PAE MCE PGE OSFXSR OSXMMEXCPT UMIP FSGSBASE PCIDE OSXSAVE SMEP SMAP */
        s.efer = 0xd01; /* SCE LME LMA NXE */
        s.apic_base = X2APIC_BASE;
        return s;
}

static struct kvm_regs regs_valid(void)
{
        struct kvm_regs r;
        memset(&r, 0, sizeof(r));
        r.rip = 0x401a2c;
        r.rsp = 0x7ffc8e2d1f60;
        r.rflags = 0x246;
        r.rax = 0x10001;
        return r;
}

static void case_sregs(void)
{
        struct kvm_cpuid2 *cpuid = profile();
        struct kvm_sregs s = sregs_valid();
        struct kvm_regs r = regs_valid();
        ACCEPTED(state_check_sregs(&s, cpuid, 0, &err), "Linux user mode");
        ACCEPTED(state_check_regs(&r, &s, &err), "Linux user registers");
        s.cs = seg(0x10, 11, 0, true);
        s.ss = seg(0x18, 3, 0, false);
        s.gs.base = 0xffff88803ec00000;
        s.gs.unusable = 0;
        s.gs.present = 1;
        s.gs.type = 3;
        s.gs.s = 1;
        s.gs.g = 1;
        r.rip = 0xffffffff81e3c2b1;
        ACCEPTED(state_check_sregs(&s, cpuid, 0, &err), "Linux kernel mode");
        ACCEPTED(state_check_regs(&r, &s, &err), "a kernel RIP");
        s = sregs_valid();
        s.apic_base = XAPIC_BASE;
        ACCEPTED(state_check_sregs(&s, cpuid, 0, &err), "xAPIC");
        /* A PVM host reports its own FSGSBASE and SMEP in the guest's CR4 with CPUID hiding both:
         * accepted there (cpu_profile_host_cr4), refused on a host that does no such thing. */
        s = sregs_valid();
        leaf(cpuid, 7, 0)->ebx &= ~((1u << 0) | (1u << 7));
        REFUSED(state_check_sregs(&s, cpuid, 0, &err), "CR4.FSGSBASE is set (CR4 0x370ef0)",
                "FSGSBASE hidden by CPUID");
        struct sprout_kvm pvm = host;
        pvm.kind = SPROUT_HOST_PVM;
        ACCEPTED(state_check_sregs(&s, cpuid, cpu_profile_host_cr4(&pvm), &err),
                 "FSGSBASE and SMEP on a PVM host");
        free(cpuid);
        cpuid = profile();

#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_sregs f = sregs_valid();                                                \
                stmt;                                                                              \
                REFUSED(state_check_sregs(&f, cpuid, 0, &err), why, what);                         \
        } while (0)
        FORGE(f.cr0 |= 1ull << 6, "CR0 0x80050073 sets reserved bits 0x40", "CR0 bit 6");
        FORGE(f.cr0 |= 1ull << 32, "sets reserved bits", "CR0 bit 32");
        FORGE((f.cr0 &= ~1ull, f.efer &= ~0x500ull), "paging without protected mode", "PG, no PE");
        FORGE(f.cr0 |= 1ull << 29, "NW without CD", "NW alone");
        FORGE(f.cr4 |= 1ull << 15, "CR4 0x378ef0 sets reserved bits 0x8000", "CR4 bit 15");
        FORGE(f.cr4 |= 1ull << 14, "reserved bits 0x4000", "CR4.SMXE");
        FORGE(f.cr4 |= 1ull << 12, "CR4.LA57 is set (CR4 0x371ef0) but the vCPU's CPUID lacks",
              "LA57");
        FORGE(f.cr4 |= 1ull << 22, "CR4.PKE is set", "PKE without PKU");
        FORGE(f.cr4 |= 1ull << 13, "CR4.VMXE is set", "VMXE without VMX");
        FORGE(f.cr4 &= ~0x20ull, "long mode without CR4.PAE", "long mode without PAE");
        FORGE(f.efer &= ~0x400ull, "EFER.LMA is 0 but LME 1 with CR0.PG 1 makes it 1", "no LMA");
        FORGE(f.efer &= ~0x100ull, "EFER.LMA is 1 but LME 0", "LMA without LME");
        FORGE(f.efer |= 1ull << 9, "EFER 0xf01 sets reserved bits 0x200", "EFER bit 9");
        FORGE(f.efer |= 1ull << 12, "EFER.SVME is set", "SVME on Intel");
        FORGE((f.cr0 &= ~(1ull << 31), f.efer &= ~0x400ull, f.cr4 &= ~(1ull << 17)),
              "a 64-bit code segment outside long mode", "CS.L, paging off");
        FORGE(f.cr3 = 1ull << 40, "beyond 39 physical address bits", "CR3 above MAXPHYADDR");
        FORGE(f.cr8 = 16, "CR8 16", "CR8 16");
        FORGE(f.ss.limit = 0xfffff000, "segment SS limit 0xfffff000 does not fit",
              "an unscaled limit with G");
        FORGE((f.ds.g = 0, f.ds.limit = 0x100000), "segment DS limit 0x100000",
              "20 bits without G");
        FORGE(f.cs.dpl = 4, "segment CS: a descriptor field", "DPL 4");
        FORGE(f.es.padding = 1, "segment ES: a descriptor field", "segment padding");
        FORGE(f.cs.type = 3, "CS (type 3, S 1) is not a present code segment", "a data CS");
        FORGE(f.cs.db = 1, "both L and D/B", "CS.L with D/B");
        FORGE(f.ss.type = 11, "SS (type 11)", "a code SS");
        FORGE(f.ds.type = 9, "DS (type 9) is neither data nor readable code", "exec-only DS");
        FORGE(f.tr.type = 9, "TR (type 9, S 0) is not a busy TSS", "an available TSS");
        FORGE(f.tr.unusable = 1, "is not a busy TSS", "no TR");
        FORGE((f.ldt.unusable = 0, f.ldt.present = 1, f.ldt.type = 3), "LDTR (type 3)", "LDT type");
        FORGE(f.tr.base = 0x0000800000000000, "segment TR base 0x800000000000 is not canonical",
              "a non-canonical TSS");
        FORGE(f.ss.base = 0x100000000, "is not a 32-bit address", "an SS base above 4 GiB");
        FORGE(f.idt.base = 0x00ff000000000000, "IDTR base", "a non-canonical IDT");
        FORGE(f.gdt.padding[2] = 1, "GDTR padding", "GDT padding");
        FORGE(f.apic_base = 0xfed00d00, "is not relocated", "a relocated LAPIC");
        FORGE(f.apic_base = 0xfee00c00, "is not relocated", "not the BSP");
        FORGE(f.apic_base = 0xfee00500, "x2APIC mode needs the APIC enabled", "EXTD without EN");
        FORGE(f.apic_base |= 1ull << 9, "is not relocated", "APIC base bit 9");
        FORGE((f.interrupt_bitmap[3] = 1ull << 44 | 1), "2 interrupts pending",
              "two pending interrupts");
#undef FORGE
        s = sregs_valid();
#define FORGE(stmt, why, what)                                                                     \
        do {                                                                                       \
                struct kvm_regs f = regs_valid();                                                  \
                stmt;                                                                              \
                REFUSED(state_check_regs(&f, &s, &err), why, what);                                \
        } while (0)
        FORGE(f.rflags = 0x244, "RFLAGS 0x244", "bit 1 clear");
        FORGE(f.rflags |= 1ull << 3, "RFLAGS 0x24e", "bit 3");
        FORGE(f.rflags |= 1ull << 40, "RFLAGS", "bit 40");
        FORGE(f.rflags |= 1ull << 17, "virtual-8086", "VM in long mode");
        FORGE(f.rip = 0x0000800000000000, "RIP 0x800000000000 is not a canonical address",
              "a non-canonical RIP");
#undef FORGE
        free(cpuid);
}

/* ---- restore itself: checks before the first ioctl ---- */

/* The record types are the VMM's own (enum vcpu_rec, vmm_internal.h). */

struct vcpu_parts {
        struct kvm_mp_state mp;
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_fpu fpu;
        struct kvm_debugregs dbg;
        struct kvm_lapic_state lapic;
        struct kvm_vcpu_events ev;
};

static struct vcpu_parts parts_valid(void)
{
        struct vcpu_parts p;
        memset(&p, 0, sizeof(p));
        p.regs = regs_valid();
        p.sregs = sregs_valid();
        p.fpu.fcw = 0x37f;
        p.fpu.mxcsr = 0x1f80;
        p.dbg.dr6 = 0xffff0ff0;
        p.dbg.dr7 = 0x400;
        p.lapic = lapic_valid();
        p.ev = events_valid();
        return p;
}

static struct blob vcpu_section(const struct vcpu_parts *p)
{
        struct blob b = {0};
        size_t mlen;
        struct kvm_msrs *m = msrs_valid(0, &mlen);
        struct kvm_cpuid2 *c = profile();
        blob_put(&b, VREC_MP_STATE, &p->mp, sizeof(p->mp));
        blob_put(&b, VREC_REGS, &p->regs, sizeof(p->regs));
        blob_put(&b, VREC_SREGS, &p->sregs, sizeof(p->sregs));
        blob_put(&b, VREC_FPU, &p->fpu, sizeof(p->fpu));
        blob_put(&b, VREC_DEBUGREGS, &p->dbg, sizeof(p->dbg));
        blob_put(&b, VREC_LAPIC, &p->lapic, sizeof(p->lapic));
        blob_put(&b, VREC_MSRS, m, mlen);
        blob_put(&b, VREC_EVENTS, &p->ev, sizeof(p->ev));
        blob_put(&b, VREC_CPUID, c, cpuid_size(c));
        free(m);
        free(c);
        return b;
}

static void case_restore_order(void)
{
        /* No KVM: every ioctl on these fds fails with EBADF, so the first one reached names
         * itself. A valid section gets there; a forged one stops at its check. */
        struct sprout_vm vm;
        memset(&vm, 0, sizeof(vm));
        vm.kvm = &host;
        vm.fd = -1;
        vm.vcpu_fd = -1;

        struct vcpu_parts p = parts_valid();
        struct blob b = vcpu_section(&p);
        sprout_err_clear(&err);
        int r = vcpu_restore(&vm, b.data, b.len, &err);
        CHECK(r == -EBADF && strstr(err.msg, "KVM_SET_CPUID2"),
              "a valid vCPU section stopped before its first ioctl: r=%d '%s'", r, err.msg);
        blob_free(&b);

        p = parts_valid();
        p.ev.exception.nr = 99;
        b = vcpu_section(&p);
        REFUSED(vcpu_restore(&vm, b.data, b.len, &err), "exception 99", "vCPU: forged events");
        blob_free(&b);
        p = parts_valid();
        apic_set(&p.lapic, 0x320, 0x000600ec);
        b = vcpu_section(&p);
        REFUSED(vcpu_restore(&vm, b.data, b.len, &err), "timer mode 3", "vCPU: forged LAPIC");
        blob_free(&b);
        p = parts_valid();
        p.sregs.cr4 |= 1ull << 15;
        b = vcpu_section(&p);
        REFUSED(vcpu_restore(&vm, b.data, b.len, &err), "CR4", "vCPU: forged sregs");
        blob_free(&b);
        p = parts_valid();
        p.mp.mp_state = 9;
        b = vcpu_section(&p);
        REFUSED(vcpu_restore(&vm, b.data, b.len, &err), "mp_state 9", "vCPU: forged mp_state");
        blob_free(&b);
        free(vm.cpuid);

        /* The compatibility check names the same CPUID rule. */
        p = parts_valid();
        b = vcpu_section(&p);
        struct sprout_vm_section sec = {SPROUT_SEC_VCPU, b.data, b.len};
        ACCEPTED(sprout_vm_check_compat(&host, SPROUT_HOST_VMX, &sec, 1, &err), "compat, valid");
        host.supported_cpuid->entries[2].ebx &= ~(1u << 20); /* a host without SMAP */
        REFUSED(sprout_vm_check_compat(&host, SPROUT_HOST_VMX, &sec, 1, &err),
                "leaf 0x7.0 EBX bit 20", "compat, a missing feature");
        /* ... and so does restore itself: it does not rely on compat having run. */
        REFUSED(vcpu_restore(&vm, b.data, b.len, &err), "leaf 0x7.0 EBX bit 20",
                "restore, a missing feature");
        host.supported_cpuid->entries[2].ebx |= 1u << 20;
        blob_free(&b);

        /* The VM section: PIT, PICs, IOAPIC checked before KVM_SET_PIT2. */
        struct kvm_pit_state2 pit = pit_valid();
        struct kvm_irqchip chips[3] = {pic_valid(0), pic_valid(1), ioapic_valid()};
        struct kvm_clock_data clk = {.clock = 5000000000ull};
        uint64_t now = 1;
        int64_t skew = 0;
        for (int forge = 0; forge < 5; forge++) {
                struct kvm_pit_state2 fp = pit;
                struct kvm_irqchip fc[3] = {chips[0], chips[1], chips[2]};
                const char *why = "KVM_SET_IRQCHIP"; /* a clone has no PIT: the first ioctl */
                if (forge == 1)
                        fp.channels[0].mode = 7, why = "PIT channel 0 mode 7 is not a mode";
                if (forge == 2)
                        fc[0].chip.pic.irq_base = 0x33, why = "PIC master irq_base 0x33";
                if (forge == 3)
                        fc[1].chip.pic.elcr_mask = 0xff, why = "PIC slave ELCR";
                if (forge == 4)
                        fc[2].chip.ioapic.base_address = 0, why = "IOAPIC base 0x0";
                struct blob v = {0};
                for (int i = 0; i < 3; i++)
                        blob_put(&v, (uint32_t)i + 1, &fc[i], sizeof(fc[i]));
                blob_put(&v, 4, &fp, sizeof(fp));
                blob_put(&v, 5, &clk, sizeof(clk));
                blob_put(&v, 6, &now, sizeof(now));
                blob_put(&v, 7, &skew, sizeof(skew));
                sprout_err_clear(&err);
                r = vm_state_restore(&vm, v.data, v.len, &err);
                CHECK(r < 0 && strstr(err.msg, why), "VM section, case %d: r=%d '%s', want '%s'",
                      forge, r, err.msg, why);
                if (forge == 0) {
                        /* The whole restore: a forged vCPU section is refused before the VM
                         * section's first ioctl, not after it. */
                        struct vcpu_parts fpv = parts_valid();
                        fpv.ev.nmi.pending = 9;
                        struct blob vb = vcpu_section(&fpv), db = {0};
                        struct sprout_vm_section secs[3] = {{SPROUT_SEC_VCPU, vb.data, vb.len},
                                                            {SPROUT_SEC_VM, v.data, v.len},
                                                            {SPROUT_SEC_DEVICES, db.data, 0}};
                        struct sprout_restore_config cfg = {.sections = secs, .nsections = 3};
                        REFUSED(sprout_vm_restore_state(&vm, &cfg, &err), "NMI state",
                                "restore: forged vCPU, valid VM section");
                        CHECK(vm.broken, "a refused restore left the VM usable");
                        vm.broken = false;
                        blob_free(&vb);
                }
                blob_free(&v);
        }
}

int main(void)
{
        host_init();
        case_cpuid();
        case_msrs();
        case_pit();
        case_pic();
        case_ioapic();
        case_lapic();
        case_events();
        case_sregs();
        case_restore_order();
        free(host.supported_cpuid);
        free(host.msr_index);
        return check_finish();
}
