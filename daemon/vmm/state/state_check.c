/* The checks a snapshot's saved KVM state passes before any KVM_SET_* ioctl sees it: pure functions
 * over the records, each naming what it refused and why. The file is untrusted input all the way to
 * the host kernel (a restored PIT once crashed hosts, CVE-2015-7513), so each record is held to
 * what the hardware and KVM can produce, not to what KVM happens to accept today. */
#include <errno.h>
#include <string.h>

#include "vmm_internal.h"

/* ---- MSRs ---- */

int state_check_msrs(const struct kvm_msrs *m, size_t len, const uint32_t *host, uint32_t nhost,
                     struct sprout_err *err)
{
        if (len < sizeof(*m) || m->nmsrs > SPROUT_MAX_MSRS ||
            len != sizeof(*m) + (size_t)m->nmsrs * sizeof(m->entries[0]))
                return sprout_err_set(
                    err, -EINVAL, "MSRs: %u entries do not fit the %zu-byte record", m->nmsrs, len);
        if (m->pad)
                return sprout_err_set(err, -EINVAL, "MSRs: the header's padding is not zero");
        /* seen[j]: host MSR j was already restored once, so a repeat is found in O(1). */
        uint8_t seen[SPROUT_MAX_MSRS] = {0};
        if (nhost > SPROUT_MAX_MSRS)
                nhost = SPROUT_MAX_MSRS;
        for (uint32_t i = 0; i < m->nmsrs; i++) {
                const struct kvm_msr_entry *e = &m->entries[i];
                uint32_t j = 0;
                while (j < nhost && host[j] != e->index)
                        j++;
                /* Refused, not dropped: the saver records only MSRs the host lists, so one
                 * outside the list is a forged file or another host's state, and a guest resumed
                 * without an MSR it had set would run on in a state nobody saved. */
                if (j == nhost)
                        return sprout_err_set(err, -EINVAL,
                                              "MSRs: entry %u is MSR 0x%x, which this host's KVM "
                                              "does not list (KVM_GET_MSR_INDEX_LIST)",
                                              i, e->index);
                if (seen[j])
                        return sprout_err_set(err, -EINVAL, "MSRs: MSR 0x%x appears twice",
                                              e->index);
                seen[j] = 1;
                if (e->reserved)
                        return sprout_err_set(
                            err, -EINVAL, "MSRs: MSR 0x%x has its reserved field set", e->index);
        }
        return 0;
}

/* ---- CPUID ---- */

const struct kvm_cpuid_entry2 *state_cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
                                                uint32_t idx)
{
        for (uint32_t i = 0; i < c->nent; i++)
                if (c->entries[i].function == fn &&
                    (c->entries[i].index == idx ||
                     !(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)))
                        return &c->entries[i];
        return NULL;
}

enum { R_EAX, R_EBX, R_ECX, R_EDX };
static const char *const reg_names[] = {"EAX", "EBX", "ECX", "EDX"};

static uint32_t cpuid_reg(const struct kvm_cpuid_entry2 *e, int reg)
{
        return reg == R_EAX ? e->eax : reg == R_EBX ? e->ebx : reg == R_ECX ? e->ecx : e->edx;
}

/* How a register of a leaf compares with the host's. SUBSET: feature bits, each recorded one must
 * be offered. LE: a count or a size (max leaf, address bits), no more than the host's. EQUAL: an
 * identity (the vendor, the hypervisor signature). A register not listed is information (family,
 * cache and topology descriptions, the brand): it tells the guest about a CPU, it enables nothing.
 */
enum cpuid_rule { SUBSET, LE, EQUAL };
static const struct {
        uint32_t fn, idx;
        int reg;
        enum cpuid_rule rule;
        uint32_t mask; /* the bits the rule covers */
} cpuid_rules[] = {
    {0, 0, R_EAX, LE, ~0u},
    {0, 0, R_EBX, EQUAL, ~0u},
    {0, 0, R_ECX, EQUAL, ~0u},
    {0, 0, R_EDX, EQUAL, ~0u},
    /* Leaf 1 ECX bit 27 (OSXSAVE) mirrors the guest's CR4, not a host capability. */
    {1, 0, R_ECX, SUBSET, ~(1u << 27)},
    {1, 0, R_EDX, SUBSET, ~0u},
    {6, 0, R_EAX, SUBSET, ~0u},
    {7, 0, R_EAX, LE, ~0u},
    {7, 0, R_EBX, SUBSET, ~0u},
    /* Leaf 7 ECX bit 4 (OSPKE) mirrors CR4.PKE. */
    {7, 0, R_ECX, SUBSET, ~(1u << 4)},
    {7, 0, R_EDX, SUBSET, ~0u},
    {7, 1, R_EAX, SUBSET, ~0u},
    {7, 1, R_EDX, SUBSET, ~0u},
    {7, 2, R_EDX, SUBSET, ~0u},
    {0xd, 0, R_EAX, SUBSET, ~0u}, /* XCR0 bits */
    {0xd, 0, R_ECX, LE, ~0u},     /* XSAVE area for every XCR0 bit */
    {0xd, 0, R_EDX, SUBSET, ~0u},
    {0xd, 1, R_EAX, SUBSET, ~0u},
    {0xd, 1, R_ECX, SUBSET, ~0u}, /* IA32_XSS bits */
    {0xd, 1, R_EDX, SUBSET, ~0u},
    {0x40000000, 0, R_EAX, LE, ~0u},
    {0x40000000, 0, R_EBX, EQUAL, ~0u},
    {0x40000000, 0, R_ECX, EQUAL, ~0u},
    {0x40000000, 0, R_EDX, EQUAL, ~0u},
    {0x40000001, 0, R_EAX, SUBSET, ~0u}, /* KVM paravirtual features */
    {0x40000001, 0, R_EDX, SUBSET, ~0u}, /* KVM hints */
    {0x80000000, 0, R_EAX, LE, ~0u},
    {0x80000001, 0, R_ECX, SUBSET, ~0u},
    {0x80000001, 0, R_EDX, SUBSET, ~0u},
    {0x80000007, 0, R_EDX, SUBSET, ~0u},
    {0x80000008, 0, R_EAX, LE, 0xffu},   /* physical address bits */
    {0x80000008, 0, R_EAX, LE, 0xff00u}, /* linear address bits */
    {0x80000008, 0, R_EBX, SUBSET, ~0u},
    {0x8000000a, 0, R_EDX, SUBSET, ~0u},
    {0x8000001f, 0, R_EAX, SUBSET, ~0u},
    {0x80000021, 0, R_EAX, SUBSET, ~0u},
};

int state_check_cpuid(const struct kvm_cpuid2 *rec, const struct kvm_cpuid2 *offer,
                      struct sprout_err *err)
{
        if (rec->nent == 0 || rec->nent > SPROUT_MAX_CPUID_ENTRIES)
                return sprout_err_set(err, -EINVAL, "CPUID: %u entries", rec->nent);
        if (rec->padding)
                return sprout_err_set(err, -EINVAL, "CPUID: the header's padding is not zero");
        for (uint32_t i = 0; i < rec->nent; i++) {
                const struct kvm_cpuid_entry2 *e = &rec->entries[i];
                if (e->padding[0] || e->padding[1] || e->padding[2])
                        return sprout_err_set(err, -EINVAL,
                                              "CPUID leaf 0x%x.%u: padding is not zero",
                                              e->function, e->index);
                for (uint32_t j = 0; j < i; j++)
                        if (rec->entries[j].function == e->function &&
                            rec->entries[j].index == e->index)
                                return sprout_err_set(err, -EINVAL,
                                                      "CPUID leaf 0x%x.%u appears twice",
                                                      e->function, e->index);
                const struct kvm_cpuid_entry2 *h = state_cpuid_find(offer, e->function, e->index);
                if (!h)
                        return sprout_err_set(err, -ENOTSUP,
                                              "CPUID leaf 0x%x.%u is not offered on this host",
                                              e->function, e->index);
                if (e->flags != h->flags)
                        return sprout_err_set(err, -EINVAL,
                                              "CPUID leaf 0x%x.%u: flags 0x%x, this host's 0x%x",
                                              e->function, e->index, e->flags, h->flags);
        }
        for (size_t k = 0; k < sizeof(cpuid_rules) / sizeof(cpuid_rules[0]); k++) {
                const struct kvm_cpuid_entry2 *se =
                    state_cpuid_find(rec, cpuid_rules[k].fn, cpuid_rules[k].idx);
                if (!se)
                        continue; /* the guest was never told of the leaf */
                const struct kvm_cpuid_entry2 *he =
                    state_cpuid_find(offer, cpuid_rules[k].fn, cpuid_rules[k].idx);
                uint32_t m = cpuid_rules[k].mask;
                uint32_t sv = cpuid_reg(se, cpuid_rules[k].reg) & m;
                uint32_t hv = he ? cpuid_reg(he, cpuid_rules[k].reg) & m : 0;
                const char *name = reg_names[cpuid_rules[k].reg];
                switch (cpuid_rules[k].rule) {
                case SUBSET:
                        if (sv & ~hv)
                                return sprout_err_set(
                                    err, -ENOTSUP,
                                    "this host's CPU lacks a feature the snapshot recorded: CPUID "
                                    "leaf 0x%x.%u %s bit %d (snapshot 0x%08x, host 0x%08x)",
                                    se->function, cpuid_rules[k].idx, name, __builtin_ctz(sv & ~hv),
                                    sv, hv);
                        break;
                case LE:
                        if (sv > hv)
                                return sprout_err_set(
                                    err, -ENOTSUP,
                                    "CPUID leaf 0x%x.%u %s: the snapshot's 0x%x exceeds this "
                                    "host's 0x%x",
                                    se->function, cpuid_rules[k].idx, name, sv, hv);
                        break;
                case EQUAL:
                        if (sv != hv)
                                return sprout_err_set(
                                    err, -ENOTSUP,
                                    "CPUID leaf 0x%x.%u %s: the snapshot's 0x%08x is not this "
                                    "host's 0x%08x (another vendor or hypervisor)",
                                    se->function, cpuid_rules[k].idx, name, sv, hv);
                        break;
                }
        }
        return 0;
}

static bool cpuid_has(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, int reg, int bit)
{
        const struct kvm_cpuid_entry2 *e = state_cpuid_find(c, fn, idx);
        return e && (cpuid_reg(e, reg) >> bit) & 1;
}

/* ---- PIT ---- */

#define PIT_MODE_NEVER_SET 0xff /* what KVM's reset leaves until the guest programs a channel */

int state_check_pit(const struct kvm_pit_state2 *p, struct sprout_err *err)
{
        for (int i = 0; i < 3; i++) {
                const struct kvm_pit_channel_state *c = &p->channels[i];
                if (c->mode > 5 && c->mode != PIT_MODE_NEVER_SET)
                        return sprout_err_set(err, -EINVAL, "PIT channel %d mode %u is not a mode",
                                              i, c->mode);
                /* KVM keeps an initial count of 0 as 0x10000; a 0 is what divided by zero in the
                 * host before CVE-2015-7513 was fixed, and above 0x10000 no 16-bit counter goes. */
                if (c->count == 0 || c->count > 0x10000)
                        return sprout_err_set(err, -EINVAL,
                                              "PIT channel %d count %u is outside 1..65536", i,
                                              c->count);
                if (c->rw_mode > 3 || c->read_state > 4 || c->write_state > 4 ||
                    c->count_latched > 3)
                        return sprout_err_set(err, -EINVAL,
                                              "PIT channel %d access state (rw %u, read %u, write "
                                              "%u, latched %u) is not one the 8254 has",
                                              i, c->rw_mode, c->read_state, c->write_state,
                                              c->count_latched);
                if (c->bcd > 1 || c->gate > 1 || c->status_latched > 1)
                        return sprout_err_set(err, -EINVAL,
                                              "PIT channel %d: bcd %u, gate %u, status_latched %u "
                                              "are flags (0 or 1)",
                                              i, c->bcd, c->gate, c->status_latched);
        }
        if (p->flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON))
                return sprout_err_set(err, -EINVAL, "PIT flags 0x%x hold unknown bits", p->flags);
        for (size_t i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++)
                if (p->reserved[i])
                        return sprout_err_set(err, -EINVAL, "PIT reserved word %zu is not zero", i);
        return 0;
}

/* ---- irqchip: PIC and IOAPIC ---- */

/* The bytes of the chip union past the state a chip uses: KVM never fills them. */
static int irqchip_tail_zero(const struct kvm_irqchip *c, size_t used, struct sprout_err *err)
{
        const uint8_t *b = (const uint8_t *)&c->chip;
        for (size_t i = used; i < sizeof(c->chip); i++)
                if (b[i])
                        return sprout_err_set(err, -EINVAL,
                                              "irqchip %u: byte %zu past its state is not zero",
                                              c->chip_id, i);
        return c->pad ? sprout_err_set(err, -EINVAL, "irqchip %u: padding is not zero", c->chip_id)
                      : 0;
}

int state_check_pic(const struct kvm_irqchip *c, struct sprout_err *err)
{
        if (c->chip_id != KVM_IRQCHIP_PIC_MASTER && c->chip_id != KVM_IRQCHIP_PIC_SLAVE)
                return sprout_err_set(err, -EINVAL, "irqchip %u is not a PIC", c->chip_id);
        const struct kvm_pic_state *p = &c->chip.pic;
        const char *who = c->chip_id == KVM_IRQCHIP_PIC_MASTER ? "master" : "slave";
        /* KVM's fixed edge/level masks: IRQ 0-2 (master) and 8, 13 (slave) are edge only. */
        uint8_t elcr_mask = c->chip_id == KVM_IRQCHIP_PIC_MASTER ? 0xf8 : 0xde;
        int r = irqchip_tail_zero(c, sizeof(*p), err);
        if (r < 0)
                return r;
        if (p->irq_base & 7)
                return sprout_err_set(err, -EINVAL,
                                      "PIC %s irq_base 0x%x is not a multiple of 8 (ICW2 sets bits "
                                      "7..3)",
                                      who, p->irq_base);
        if (p->elcr_mask != elcr_mask || (p->elcr & ~elcr_mask))
                return sprout_err_set(err, -EINVAL,
                                      "PIC %s ELCR 0x%02x / mask 0x%02x: KVM's mask is 0x%02x", who,
                                      p->elcr, p->elcr_mask, elcr_mask);
        if (p->priority_add > 7 || p->init_state > 3)
                return sprout_err_set(err, -EINVAL, "PIC %s priority %u / init state %u", who,
                                      p->priority_add, p->init_state);
        if (p->read_reg_select > 1 || p->poll > 1 || p->special_mask > 1 || p->auto_eoi > 1 ||
            p->rotate_on_auto_eoi > 1 || p->special_fully_nested_mode > 1 || p->init4 > 1)
                return sprout_err_set(err, -EINVAL, "PIC %s: a mode flag is neither 0 nor 1", who);
        /* ISR, IRR, IMR and last_irr are left alone: the 8259A model reaches every 8-bit value of
         * each (ICW1 does not clear ISR), and KVM recomputes the output line from them, so a forged
         * one can only misdeliver the guest's own interrupts. */
        return 0;
}

#define IOAPIC_BASE           0xfec00000ull
#define RTE_RESERVED          0x0001fffffffe0000ull /* bits 17..48; 49..55: extended dest ID */
#define RTE_DM(b)             (((b) >> 8) & 7)
#define RTE_REMOTE_IRR        (1ull << 14)
#define RTE_LEVEL             (1ull << 15)
#define RTE_MASKED            (1ull << 16)
#define DM_RESERVED(dm)       ((dm) == 3 || (dm) == 6)
#define DM_FIXED_OR_LOWEST(d) ((d) <= 1)

int state_check_ioapic(const struct kvm_irqchip *c, struct sprout_err *err)
{
        if (c->chip_id != KVM_IRQCHIP_IOAPIC)
                return sprout_err_set(err, -EINVAL, "irqchip %u is not the IOAPIC", c->chip_id);
        const struct kvm_ioapic_state *s = &c->chip.ioapic;
        int r = irqchip_tail_zero(c, sizeof(*s), err);
        if (r < 0)
                return r;
        /* KVM dispatches MMIO by this field: another value would move the IOAPIC over RAM. */
        if (s->base_address != IOAPIC_BASE)
                return sprout_err_set(err, -EINVAL, "IOAPIC base 0x%llx is not 0x%llx",
                                      (unsigned long long)s->base_address, IOAPIC_BASE);
        if (s->ioregsel > 0xff)
                return sprout_err_set(err, -EINVAL, "IOAPIC IOREGSEL 0x%x is wider than 8 bits",
                                      s->ioregsel);
        if (s->id > 0xf)
                return sprout_err_set(err, -EINVAL, "IOAPIC id %u is wider than 4 bits", s->id);
        if (s->irr >> KVM_IOAPIC_NUM_PINS)
                return sprout_err_set(err, -EINVAL, "IOAPIC IRR 0x%x names pins beyond %d", s->irr,
                                      KVM_IOAPIC_NUM_PINS - 1);
        if (s->pad)
                return sprout_err_set(err, -EINVAL, "IOAPIC padding is not zero");
        for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++) {
                uint64_t b = s->redirtbl[i].bits;
                unsigned dm = RTE_DM(b), vec = b & 0xff;
                if (b & RTE_RESERVED)
                        return sprout_err_set(err, -EINVAL,
                                              "IOAPIC pin %d: reserved bits set (0x%016llx)", i,
                                              (unsigned long long)b);
                if (DM_RESERVED(dm))
                        return sprout_err_set(err, -EINVAL,
                                              "IOAPIC pin %d: delivery mode %u is reserved", i, dm);
                if (!(b & RTE_MASKED) && DM_FIXED_OR_LOWEST(dm) && vec < 0x10)
                        return sprout_err_set(err, -EINVAL,
                                              "IOAPIC pin %d: vector %u is illegal (0..15 are "
                                              "reserved)",
                                              i, vec);
                if ((b & RTE_REMOTE_IRR) && !(b & RTE_LEVEL))
                        return sprout_err_set(
                            err, -EINVAL, "IOAPIC pin %d: remote IRR on an edge-triggered pin", i);
        }
        return 0;
}

/* ---- LAPIC ---- */

#define MSR_APIC_BASE_BSP  (1ull << 8)
#define MSR_APIC_BASE_EXTD (1ull << 10)
#define MSR_APIC_BASE_EN   (1ull << 11)
#define APIC_DEFAULT_BASE  0xfee00000ull

static uint32_t apic_reg(const struct kvm_lapic_state *l, unsigned off)
{
        uint32_t v;
        memcpy(&v, l->regs + off, sizeof(v));
        return v;
}

int state_check_lapic(const struct kvm_lapic_state *l, uint32_t vcpu_id, uint64_t apic_base,
                      struct sprout_err *err)
{
        bool x2apic = apic_base & MSR_APIC_BASE_EXTD;
        uint32_t id = apic_reg(l, 0x20), ver = apic_reg(l, 0x30);
        /* KVM's legacy layout puts the ID in bits 31..24 in both modes. */
        if (id != vcpu_id << 24)
                return sprout_err_set(err, -EINVAL, "LAPIC ID register 0x%08x is not vCPU %u's", id,
                                      vcpu_id);
        unsigned maxlvt = (ver >> 16) & 0xff;
        if ((ver & 0xff) != 0x14 || maxlvt < 5 || maxlvt > 6 || (ver & ~0x01ff00ffu))
                return sprout_err_set(err, -EINVAL,
                                      "LAPIC version register 0x%08x is not KVM's (0x14, 5 or 6 "
                                      "LVT entries)",
                                      ver);
        static const struct {
                unsigned off;
                uint32_t valid;
                bool has_mode; /* bits 10..8 are a delivery mode */
                const char *name;
        } lvt[] = {
            {0x2f0, 0x000117ff, true, "CMCI"},    {0x320, 0x000710ff, false, "timer"},
            {0x330, 0x000117ff, true, "thermal"}, {0x340, 0x000117ff, true, "performance"},
            {0x350, 0x0001f7ff, true, "LINT0"},   {0x360, 0x0001f7ff, true, "LINT1"},
            {0x370, 0x000110ff, false, "error"},
        };
        for (size_t i = 0; i < sizeof(lvt) / sizeof(lvt[0]); i++) {
                /* With 5 LVT entries (KVM before 6.2, or no CMCI) the CMCI register is not one:
                 * KVM leaves it 0, which as an LVT would be an unmasked vector 0. */
                if (lvt[i].off == 0x2f0 && maxlvt < 6)
                        continue;
                uint32_t v = apic_reg(l, lvt[i].off);
                unsigned dm = lvt[i].has_mode ? (v >> 8) & 7 : 0;
                if (v & ~lvt[i].valid)
                        return sprout_err_set(err, -EINVAL,
                                              "LAPIC LVT %s 0x%08x sets reserved bits 0x%08x",
                                              lvt[i].name, v, v & ~lvt[i].valid);
                if (DM_RESERVED(dm) || dm == 1)
                        return sprout_err_set(err, -EINVAL,
                                              "LAPIC LVT %s delivery mode %u is reserved",
                                              lvt[i].name, dm);
                if (lvt[i].off == 0x320 && ((v >> 17) & 3) == 3)
                        return sprout_err_set(err, -EINVAL, "LAPIC timer mode 3 is reserved");
                if (!(v & (1u << 16)) && dm == 0 && (v & 0xff) < 0x10)
                        return sprout_err_set(err, -EINVAL,
                                              "LAPIC LVT %s: vector %u is illegal (0..15 are "
                                              "reserved)",
                                              lvt[i].name, v & 0xff);
        }
        uint32_t tpr = apic_reg(l, 0x80), svr = apic_reg(l, 0xf0), tdcr = apic_reg(l, 0x3e0);
        uint32_t esr = apic_reg(l, 0x280), dfr = apic_reg(l, 0xe0), ldr = apic_reg(l, 0xd0);
        uint32_t icr2 = apic_reg(l, 0x310);
        if (tpr & ~0xffu)
                return sprout_err_set(err, -EINVAL, "LAPIC TPR 0x%x is wider than 8 bits", tpr);
        if (svr & ~0x13ffu)
                return sprout_err_set(err, -EINVAL,
                                      "LAPIC spurious vector register 0x%x sets "
                                      "reserved bits",
                                      svr);
        if (tdcr & ~0xbu)
                return sprout_err_set(err, -EINVAL,
                                      "LAPIC divide configuration 0x%x sets bits other than 0, 1, "
                                      "3",
                                      tdcr);
        if (esr & ~0xffu)
                return sprout_err_set(err, -EINVAL, "LAPIC ESR 0x%x sets reserved bits", esr);
        if ((dfr & 0x0fffffffu) != 0x0fffffffu || ((dfr >> 28) != 0 && (dfr >> 28) != 0xf))
                return sprout_err_set(err, -EINVAL,
                                      "LAPIC DFR 0x%08x is neither the flat nor the cluster model",
                                      dfr);
        /* In x2APIC mode KVM computes the LDR and ICR2 holds a 32-bit destination. */
        if (!x2apic && ((ldr & 0x00ffffffu) || (icr2 & 0x00ffffffu)))
                return sprout_err_set(err, -EINVAL,
                                      "LAPIC LDR 0x%08x / ICR2 0x%08x set bits below 24 in xAPIC "
                                      "mode",
                                      ldr, icr2);
        /* Vectors 0..15 can never be requested, in service or level-triggered. */
        static const struct {
                unsigned off;
                const char *name;
        } vec0[] = {{0x100, "ISR"}, {0x180, "TMR"}, {0x200, "IRR"}};
        for (size_t i = 0; i < 3; i++)
                if (apic_reg(l, vec0[i].off) & 0xffffu)
                        return sprout_err_set(err, -EINVAL, "LAPIC %s has vectors 0..15 set",
                                              vec0[i].name);
        return 0;
}

/* ---- vCPU events and mp_state ---- */

/* The exceptions that push an error code (SDM vol. 3, table 6-1). */
static bool has_error_code(unsigned nr)
{
        return nr == 8 || (nr >= 10 && nr <= 14) || nr == 17 || nr == 21 || nr == 29 || nr == 30;
}

int state_check_events(const struct kvm_vcpu_events *e, struct sprout_err *err)
{
        /* What KVM_GET_VCPU_EVENTS reports without the payload and triple-fault capabilities,
         * which sprout does not enable; SIPI_VECTOR is accepted as KVM accepts it. */
        const uint32_t known = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                               KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
        if (e->flags & ~known)
                return sprout_err_set(err, -EINVAL, "vCPU events: flags 0x%x hold unknown bits",
                                      e->flags);
        if (e->exception.nr >= 32)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: exception %u is not an exception (0..31)",
                                      e->exception.nr);
        if (e->exception.injected > 1 || e->exception.has_error_code > 1 ||
            e->exception.pending > 1)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: exception flags (injected %u, error code %u, "
                                      "pending %u) are not KVM's",
                                      e->exception.injected, e->exception.has_error_code,
                                      e->exception.pending);
        if ((e->exception.injected || e->exception.pending) && e->exception.nr == 2)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: vector 2 is the NMI, not an exception");
        if (e->exception.injected && e->exception.has_error_code &&
            !has_error_code(e->exception.nr))
                return sprout_err_set(err, -EINVAL, "vCPU events: exception %u has no error code",
                                      e->exception.nr);
        if (e->interrupt.injected > 1 || e->interrupt.soft > 1 ||
            (e->interrupt.shadow & ~(KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI)))
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: interrupt flags (injected %u, soft %u, shadow "
                                      "0x%x) are not KVM's",
                                      e->interrupt.injected, e->interrupt.soft,
                                      e->interrupt.shadow);
        if (e->interrupt.injected && !e->interrupt.soft && e->interrupt.nr < 32)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: external interrupt vector %u is an "
                                      "exception's (0..31)",
                                      e->interrupt.nr);
        if (e->nmi.injected > 1 || e->nmi.pending > 2 || e->nmi.masked > 1 || e->nmi.pad)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: NMI state (injected %u, pending %u, masked %u, "
                                      "pad %u) is not one KVM has",
                                      e->nmi.injected, e->nmi.pending, e->nmi.masked, e->nmi.pad);
        if (e->sipi_vector > 0xff)
                return sprout_err_set(err, -EINVAL, "vCPU events: SIPI vector 0x%x is not 8 bits",
                                      e->sipi_vector);
        /* sprout boots no firmware: no guest of it ever enters SMM. */
        if (e->smi.smm || e->smi.pending || e->smi.smm_inside_nmi || e->smi.latched_init > 1)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: SMM state (smm %u, pending %u) in a VM with "
                                      "no SMM",
                                      e->smi.smm, e->smi.pending);
        if (e->triple_fault.pending || e->exception_has_payload || e->exception_payload)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU events: triple-fault or payload fields set, which need "
                                      "capabilities sprout does not enable");
        for (size_t i = 0; i < sizeof(e->reserved); i++)
                if (e->reserved[i])
                        return sprout_err_set(err, -EINVAL,
                                              "vCPU events: reserved byte %zu is not zero", i);
        return 0;
}

int state_check_mp_state(const struct kvm_mp_state *mp, struct sprout_err *err)
{
        /* The boot vCPU is running or halted; INIT/SIPI states belong to application processors. */
        if (mp->mp_state != KVM_MP_STATE_RUNNABLE && mp->mp_state != KVM_MP_STATE_HALTED)
                return sprout_err_set(
                    err, -EINVAL, "vCPU mp_state %u is neither runnable nor halted", mp->mp_state);
        return 0;
}

/* ---- regs and sregs ---- */

#define CR0_PE    (1ull << 0)
#define CR0_NW    (1ull << 29)
#define CR0_CD    (1ull << 30)
#define CR0_PG    (1ull << 31)
#define CR0_VALID 0xe005003full /* PE MP EM TS ET NE WP AM NW CD PG */
#define CR4_PAE   (1ull << 5)
#define CR4_LA57  (1ull << 12)
#define CR4_PCIDE (1ull << 17)
#define EFER_LME  (1ull << 8)
#define EFER_LMA  (1ull << 10)

static bool is_canonical(uint64_t v, unsigned bits)
{
        return (uint64_t)((int64_t)(v << (64 - bits)) >> (64 - bits)) == v;
}

/* Each CR4 bit with the CPUID feature that makes it legal; a bit not listed is reserved. */
static const struct {
        int bit, fn, idx, reg, fbit;
        const char *name;
} cr4_bits[] = {
    {0, 1, 0, R_EDX, 1, "VME"},
    {1, 1, 0, R_EDX, 1, "PVI"},
    {2, 1, 0, R_EDX, 4, "TSD"},
    {3, 1, 0, R_EDX, 2, "DE"},
    {4, 1, 0, R_EDX, 3, "PSE"},
    {5, 1, 0, R_EDX, 6, "PAE"},
    {6, 1, 0, R_EDX, 7, "MCE"},
    {7, 1, 0, R_EDX, 13, "PGE"},
    {8, -1, 0, 0, 0, "PCE"},
    {9, 1, 0, R_EDX, 24, "OSFXSR"},
    {10, 1, 0, R_EDX, 25, "OSXMMEXCPT"},
    {11, 7, 0, R_ECX, 2, "UMIP"},
    {12, 7, 0, R_ECX, 16, "LA57"},
    {13, 1, 0, R_ECX, 5, "VMXE"},
    {16, 7, 0, R_EBX, 0, "FSGSBASE"},
    {17, 1, 0, R_ECX, 17, "PCIDE"},
    {18, 1, 0, R_ECX, 26, "OSXSAVE"},
    {20, 7, 0, R_EBX, 7, "SMEP"},
    {21, 7, 0, R_EBX, 20, "SMAP"},
    {22, 7, 0, R_ECX, 3, "PKE"},
    {23, 7, 0, R_ECX, 7, "CET"},
    {24, 7, 0, R_ECX, 31, "PKS"},
};

static const struct {
        int bit, fn, reg, fbit;
        const char *name;
} efer_bits[] = {
    {0, 0x80000001, R_EDX, 11, "SCE"},  {8, 0x80000001, R_EDX, 29, "LME"},
    {10, 0x80000001, R_EDX, 29, "LMA"}, {11, 0x80000001, R_EDX, 20, "NXE"},
    {12, 0x80000001, R_ECX, 2, "SVME"}, {14, 0x80000001, R_EDX, 25, "FFXSR"},
    {15, 0x80000001, R_ECX, 17, "TCE"}, {21, 0x80000021, R_EAX, 8, "AUTOIBRS"},
};

static int check_segment(const struct kvm_segment *s, const char *name, unsigned va_bits,
                         bool base32, struct sprout_err *err)
{
        if (s->present > 1 || s->db > 1 || s->s > 1 || s->l > 1 || s->g > 1 || s->avl > 1 ||
            s->unusable > 1 || s->dpl > 3 || s->type > 15 || s->padding)
                return sprout_err_set(err, -EINVAL,
                                      "segment %s: a descriptor field is out of range", name);
        if (s->unusable || !s->present)
                return 0; /* KVM ignores the rest of an unusable segment */
        /* A byte limit with G set has its low 12 bits set; without G it fits 20 bits (the VM-entry
         * checks, SDM vol. 3 26.3.1.2). */
        if (s->g ? (s->limit & 0xfff) != 0xfff : s->limit > 0xfffff)
                return sprout_err_set(err, -EINVAL,
                                      "segment %s limit 0x%x does not fit its granularity (G=%u)",
                                      name, s->limit, s->g);
        /* VM entry wants CS, SS, DS and ES bases in 32 bits, the others canonical. */
        if (base32 ? s->base > 0xffffffffull : va_bits && !is_canonical(s->base, va_bits))
                return sprout_err_set(err, -EINVAL, "segment %s base 0x%llx is not %s", name,
                                      (unsigned long long)s->base,
                                      base32 ? "a 32-bit address" : "canonical");
        return 0;
}

int state_check_sregs(const struct kvm_sregs *s, const struct kvm_cpuid2 *cpuid, uint64_t host_cr4,
                      struct sprout_err *err)
{
        bool lma = s->efer & EFER_LMA;
        int r;
        if (s->cr0 & ~CR0_VALID)
                return sprout_err_set(err, -EINVAL, "CR0 0x%llx sets reserved bits 0x%llx",
                                      (unsigned long long)s->cr0,
                                      (unsigned long long)(s->cr0 & ~CR0_VALID));
        if ((s->cr0 & CR0_PG) && !(s->cr0 & CR0_PE))
                return sprout_err_set(err, -EINVAL, "CR0 0x%llx: paging without protected mode",
                                      (unsigned long long)s->cr0);
        if ((s->cr0 & CR0_NW) && !(s->cr0 & CR0_CD))
                return sprout_err_set(err, -EINVAL, "CR0 0x%llx: NW without CD",
                                      (unsigned long long)s->cr0);
        uint64_t cr4 = s->cr4;
        for (size_t i = 0; i < sizeof(cr4_bits) / sizeof(cr4_bits[0]); i++) {
                uint64_t b = 1ull << cr4_bits[i].bit;
                if (!(cr4 & b))
                        continue;
                cr4 &= ~b;
                if (!(host_cr4 & b) && cr4_bits[i].fn >= 0 &&
                    !cpuid_has(cpuid, (uint32_t)cr4_bits[i].fn, (uint32_t)cr4_bits[i].idx,
                               cr4_bits[i].reg, cr4_bits[i].fbit))
                        return sprout_err_set(err, -EINVAL,
                                              "CR4.%s is set (CR4 0x%llx) but the vCPU's CPUID "
                                              "lacks the feature",
                                              cr4_bits[i].name, (unsigned long long)s->cr4);
        }
        if (cr4)
                return sprout_err_set(err, -EINVAL, "CR4 0x%llx sets reserved bits 0x%llx",
                                      (unsigned long long)s->cr4, (unsigned long long)cr4);
        uint64_t efer = s->efer;
        for (size_t i = 0; i < sizeof(efer_bits) / sizeof(efer_bits[0]); i++) {
                uint64_t b = 1ull << efer_bits[i].bit;
                if (!(efer & b))
                        continue;
                efer &= ~b;
                if (!cpuid_has(cpuid, (uint32_t)efer_bits[i].fn, 0, efer_bits[i].reg,
                               efer_bits[i].fbit))
                        return sprout_err_set(err, -EINVAL,
                                              "EFER.%s is set but the vCPU's CPUID lacks the "
                                              "feature",
                                              efer_bits[i].name);
        }
        if (efer)
                return sprout_err_set(err, -EINVAL, "EFER 0x%llx sets reserved bits 0x%llx",
                                      (unsigned long long)s->efer, (unsigned long long)efer);
        /* Long mode is active exactly when it is enabled and paging is on (KVM's own rule). */
        bool want_lma = (s->efer & EFER_LME) && (s->cr0 & CR0_PG);
        if (lma != want_lma)
                return sprout_err_set(
                    err, -EINVAL, "EFER.LMA is %u but LME %u with CR0.PG %u makes it %u", lma,
                    (s->efer & EFER_LME) ? 1 : 0, (s->cr0 & CR0_PG) ? 1 : 0, want_lma);
        if (lma && !(s->cr4 & CR4_PAE))
                return sprout_err_set(err, -EINVAL, "long mode without CR4.PAE");
        if ((s->cr4 & CR4_PCIDE) && !lma)
                return sprout_err_set(err, -EINVAL, "CR4.PCIDE outside long mode");
        if (!lma && s->cs.l)
                return sprout_err_set(err, -EINVAL, "a 64-bit code segment outside long mode");
        const struct kvm_cpuid_entry2 *aw = state_cpuid_find(cpuid, 0x80000008, 0);
        unsigned maxphy = aw && (aw->eax & 0xff) ? aw->eax & 0xff : 36;
        if (lma && maxphy < 64 && (s->cr3 >> maxphy))
                return sprout_err_set(err, -EINVAL, "CR3 0x%llx is beyond %u physical address bits",
                                      (unsigned long long)s->cr3, maxphy);
        if (s->cr8 > 15)
                return sprout_err_set(err, -EINVAL, "CR8 %llu is not a priority class (0..15)",
                                      (unsigned long long)s->cr8);

        const struct {
                const struct kvm_segment *seg;
                const char *name;
        } segs[] = {{&s->cs, "CS"}, {&s->ds, "DS"}, {&s->es, "ES"}, {&s->fs, "FS"},
                    {&s->gs, "GS"}, {&s->ss, "SS"}, {&s->tr, "TR"}, {&s->ldt, "LDT"}};
        unsigned va_bits = !lma ? 0 : (s->cr4 & CR4_LA57) ? 57 : 48;
        for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
                bool base32 = segs[i].seg == &s->cs || segs[i].seg == &s->ss ||
                              segs[i].seg == &s->ds || segs[i].seg == &s->es;
                if ((r = check_segment(segs[i].seg, segs[i].name, va_bits, base32, err)) < 0)
                        return r;
        }
        if (s->cs.unusable || !s->cs.present || !s->cs.s || !(s->cs.type & 8))
                return sprout_err_set(err, -EINVAL,
                                      "CS (type %u, S %u) is not a present code "
                                      "segment",
                                      s->cs.type, s->cs.s);
        if (s->cs.l && s->cs.db)
                return sprout_err_set(err, -EINVAL, "CS has both L and D/B set");
        if (!s->ss.unusable && s->ss.present && (!s->ss.s || (s->ss.type & 0xa) != 0x2))
                return sprout_err_set(err, -EINVAL, "SS (type %u) is not a writable data segment",
                                      s->ss.type);
        const struct kvm_segment *data[] = {&s->ds, &s->es, &s->fs, &s->gs};
        for (size_t i = 0; i < 4; i++)
                if (!data[i]->unusable && data[i]->present &&
                    (!data[i]->s || ((data[i]->type & 8) && !(data[i]->type & 2))))
                        return sprout_err_set(err, -EINVAL,
                                              "%s (type %u) is neither data nor readable code",
                                              segs[i + 1].name, data[i]->type);
        if (s->tr.unusable || !s->tr.present || s->tr.s ||
            (lma ? s->tr.type != 11 : s->tr.type != 11 && s->tr.type != 3))
                return sprout_err_set(err, -EINVAL, "TR (type %u, S %u) is not a busy TSS",
                                      s->tr.type, s->tr.s);
        if (!s->ldt.unusable && s->ldt.present && (s->ldt.s || s->ldt.type != 2))
                return sprout_err_set(err, -EINVAL, "LDTR (type %u) is not an LDT", s->ldt.type);
        const struct kvm_dtable *dt[] = {&s->gdt, &s->idt};
        for (int i = 0; i < 2; i++) {
                if (dt[i]->padding[0] || dt[i]->padding[1] || dt[i]->padding[2])
                        return sprout_err_set(err, -EINVAL, "%s padding is not zero",
                                              i ? "IDTR" : "GDTR");
                if (va_bits && !is_canonical(dt[i]->base, va_bits))
                        return sprout_err_set(err, -EINVAL, "%s base 0x%llx is not canonical",
                                              i ? "IDTR" : "GDTR", (unsigned long long)dt[i]->base);
        }

        uint64_t ab = s->apic_base;
        if ((ab & ~(MSR_APIC_BASE_BSP | MSR_APIC_BASE_EXTD | MSR_APIC_BASE_EN)) !=
                APIC_DEFAULT_BASE ||
            !(ab & MSR_APIC_BASE_BSP))
                return sprout_err_set(err, -EINVAL,
                                      "APIC base 0x%llx: the boot vCPU's LAPIC sits at 0x%llx and "
                                      "is not relocated",
                                      (unsigned long long)ab, APIC_DEFAULT_BASE);
        if ((ab & MSR_APIC_BASE_EXTD) &&
            (!(ab & MSR_APIC_BASE_EN) || !cpuid_has(cpuid, 1, 0, R_ECX, 21)))
                return sprout_err_set(err, -EINVAL,
                                      "APIC base 0x%llx: x2APIC mode needs the APIC enabled and "
                                      "CPUID's x2APIC bit",
                                      (unsigned long long)ab);
        unsigned pending = 0;
        for (size_t i = 0; i < sizeof(s->interrupt_bitmap) / sizeof(s->interrupt_bitmap[0]); i++)
                pending += (unsigned)__builtin_popcountll(s->interrupt_bitmap[i]);
        if (pending > 1)
                return sprout_err_set(err, -EINVAL,
                                      "sregs: %u interrupts pending in the bitmap; KVM reports at "
                                      "most one",
                                      pending);
        return 0;
}

#define RFLAGS_FIXED    (1ull << 1)
#define RFLAGS_RESERVED (~0x3f7fd7ull) /* bits 3, 5, 15 and 22..63 */
#define RFLAGS_VM       (1ull << 17)

int state_check_regs(const struct kvm_regs *regs, const struct kvm_sregs *s, struct sprout_err *err)
{
        bool lma = s->efer & EFER_LMA;
        if (!(regs->rflags & RFLAGS_FIXED) || (regs->rflags & RFLAGS_RESERVED))
                return sprout_err_set(err, -EINVAL,
                                      "RFLAGS 0x%llx: bit 1 must be set and bits 3, 5, 15, 22..63 "
                                      "clear",
                                      (unsigned long long)regs->rflags);
        if (lma && (regs->rflags & RFLAGS_VM))
                return sprout_err_set(err, -EINVAL, "RFLAGS.VM (virtual-8086) in long mode");
        unsigned bits = (s->cr4 & CR4_LA57) ? 57 : 48;
        if (lma && s->cs.l ? !is_canonical(regs->rip, bits) : regs->rip > 0xffffffffull)
                return sprout_err_set(err, -EINVAL, "RIP 0x%llx is not a %s address",
                                      (unsigned long long)regs->rip,
                                      lma && s->cs.l ? "canonical" : "32-bit");
        return 0;
}
