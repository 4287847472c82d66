/* The CPU a guest sees: KVM's supported CPUID with per-vCPU topology filled in and, on PVM hosts,
 * the features the CPL0 emulator cannot run hidden (docs/architecture.md, "Host kinds", lists them
 * and how they bite). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_internal.h"

#define CPUID1_ECX_CX16             (1u << 13)
#define CPUID1_ECX_POPCNT           (1u << 23)
#define CPUID1_ECX_XSAVE            (1u << 26)
#define CPUID1_ECX_OSXSAVE          (1u << 27)
#define CPUID1_ECX_AVX              (1u << 28)
#define CPUID1_ECX_HYPERVISOR       (1u << 31)
#define CPUID7_EBX_ERMS             (1u << 9)
#define CPUID7_EBX_SMAP             (1u << 20)
#define CPUID7_EDX_FSRM             (1u << 4)
#define CR4_UMIP                    (1ull << 11)
#define CR4_FSGSBASE                (1ull << 16)
#define CR4_SMEP                    (1ull << 20)
#define CR4_SMAP                    (1ull << 21)
#define KVM_CPUID_FEATURES          0x40000001u
#define KVM_FEATURE_ASYNC_PF        (1u << 4)
#define KVM_FEATURE_ASYNC_PF_VMEXIT (1u << 10)
#define KVM_FEATURE_ASYNC_PF_INT    (1u << 14)

int cpu_profile_cpuid(const struct sprout_kvm *kvm, unsigned vcpu_id, struct kvm_cpuid2 **out,
                      struct sprout_err *err)
{
        const struct kvm_cpuid2 *sup = kvm->supported_cpuid;
        size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
        struct kvm_cpuid2 *c = malloc(sz);
        bool pvm = kvm->kind == SPROUT_HOST_PVM;

        if (!c)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        memcpy(c, sup, sz);
        for (uint32_t i = 0; i < c->nent; i++) {
                struct kvm_cpuid_entry2 *e = &c->entries[i];
                switch (e->function) {
                case 1:
                        /* APIC ID and one logical processor per package: the MP table says the
                         * same. */
                        e->ebx = (e->ebx & 0x0000ffffu) | (vcpu_id << 24) | (1u << 16);
                        e->ecx |= CPUID1_ECX_HYPERVISOR;
                        if (pvm)
                                /* CX16 is the one of these PVM honours; the rest are cleared for
                                 * clarity and hidden again on the command line. */
                                e->ecx &=
                                    ~(CPUID1_ECX_CX16 | CPUID1_ECX_XSAVE | CPUID1_ECX_OSXSAVE |
                                      CPUID1_ECX_AVX | CPUID1_ECX_POPCNT);
                        break;
                case 7:
                        if (e->index == 0 && pvm) {
                                e->ebx &= ~(CPUID7_EBX_ERMS | CPUID7_EBX_SMAP);
                                e->edx &= ~CPUID7_EDX_FSRM;
                        }
                        break;
                case 0xb:
                case 0x1f:
                        e->edx = vcpu_id; /* x2APIC ID */
                        break;
                case KVM_CPUID_FEATURES:
                        /* Async page faults let the host say "this page is not in yet, run
                         * something else". A clone's first touches are minor faults on the
                         * shared base, so the guest only pays the interrupt and a reschedule
                         * (measured: ~1,800 emulated instructions per clone on a PVM host). */
                        e->eax &= ~(KVM_FEATURE_ASYNC_PF | KVM_FEATURE_ASYNC_PF_VMEXIT |
                                    KVM_FEATURE_ASYNC_PF_INT);
                        break;
                default:
                        break;
                }
        }
        *out = c;
        return 0;
}

uint64_t cpu_profile_host_cr4(const struct sprout_kvm *kvm)
{
        /* Seen on an Intel PVM host: CPUID 7 hides FSGSBASE and SMEP, yet KVM_GET_SREGS reports
         * both set in a booted guest's CR4 and KVM_SET_SREGS takes them back. SMAP and UMIP are
         * the host's other protection bits of the same kind. */
        if (kvm->kind == SPROUT_HOST_PVM)
                return CR4_FSGSBASE | CR4_SMEP | CR4_SMAP | CR4_UMIP;
        return 0;
}

const char *cpu_profile_cmdline(const struct sprout_kvm *kvm)
{
        if (kvm->kind == SPROUT_HOST_PVM)
                return "noxsave clearcpuid=smap,popcnt,erms,fsrm";
        return "";
}
