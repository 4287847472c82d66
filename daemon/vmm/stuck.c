/* What a vCPU was doing when a deadline passed, for the timeout's error: whether the guest halted
 * and can still be woken (interrupts on, a timer armed), or spins. A guest that halts with nothing
 * left to wake it is a different bug from one that loops, and on a host we cannot log into the
 * message is all there is. Read after the run loop stopped, on the vCPU's own thread. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm_internal.h"

#define X86_EFLAGS_IF   (1u << 9)
#define APIC_LVTT       0x320
#define APIC_TMICT      0x380
#define APIC_TMCCT      0x390
#define APIC_LVT_MASKED (1u << 16)

static uint32_t apic_reg(const struct kvm_lapic_state *l, unsigned off)
{
        uint32_t v;
        memcpy(&v, l->regs + off, sizeof(v));
        return v;
}

/* The LAPIC timer, in words: its mode, and whether it will still fire. */
static void describe_timer(struct sprout_vm *vm, char *out, size_t n)
{
        struct kvm_lapic_state l;
        if (ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &l) < 0) {
                snprintf(out, n, "LAPIC unreadable");
                return;
        }
        uint32_t lvtt = apic_reg(&l, APIC_LVTT);
        unsigned mode = (lvtt >> 17) & 3;
        const char *masked = lvtt & APIC_LVT_MASKED ? ", masked" : "";
        if (mode != 2) {
                static const char *const modes[] = {"one-shot", "periodic", "", "reserved mode"};
                snprintf(out, n, "LAPIC timer %s%s, count %u of %u", modes[mode], masked,
                         apic_reg(&l, APIC_TMCCT), apic_reg(&l, APIC_TMICT));
                return;
        }
        struct {
                struct kvm_msrs h;
                struct kvm_msr_entry e[2];
        } m = {.h.nmsrs = 2, .e = {{.index = MSR_IA32_TSC_DEADLINE}, {.index = MSR_IA32_TSC}}};
        if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &m) != 2) {
                snprintf(out, n, "LAPIC timer TSC-deadline%s, deadline unreadable", masked);
                return;
        }
        uint64_t deadline = m.e[0].data, now = m.e[1].data;
        if (!deadline)
                snprintf(out, n, "LAPIC timer TSC-deadline%s, not armed", masked);
        else if (deadline <= now)
                snprintf(out, n, "LAPIC timer TSC-deadline%s, %llu cycles overdue", masked,
                         (unsigned long long)(now - deadline));
        else
                snprintf(out, n, "LAPIC timer TSC-deadline%s, due in %llu cycles", masked,
                         (unsigned long long)(deadline - now));
}

void vcpu_describe_stuck(struct sprout_vm *vm, char *out, size_t n)
{
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_mp_state mp;
        char timer[128];
        if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
            ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0 ||
            ioctl(vm->vcpu_fd, KVM_GET_MP_STATE, &mp) < 0) {
                snprintf(out, n, "vCPU state unreadable");
                return;
        }
        describe_timer(vm, timer, sizeof(timer));
        snprintf(out, n, "vCPU %s in %s mode at rip %#llx, interrupts %s; %s",
                 mp.mp_state == KVM_MP_STATE_HALTED ? "halted" : "running",
                 sregs.cs.dpl == 3 ? "user" : "kernel", (unsigned long long)regs.rip,
                 regs.rflags & X86_EFLAGS_IF ? "on" : "off", timer);
}
