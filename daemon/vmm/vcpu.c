/* vCPU creation and its boot-time state: 64-bit long mode at the kernel entry point, CPUID from the
 * host profile, LAPIC wired for an MP-table guest. Also explains a vCPU that KVM could not run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "boot_layout.h"
#include "vmm_internal.h"

#define CR0_PE   0x1ULL
#define CR0_MP   0x2ULL
#define CR0_ET   0x10ULL
#define CR0_NE   0x20ULL
#define CR0_WP   0x10000ULL
#define CR0_AM   0x40000ULL
#define CR0_PG   0x80000000ULL
#define CR4_PAE  0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define APIC_LVT0        0x350
#define APIC_LVT1        0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

#define MSR_IA32_MISC_ENABLE    0x1a0
#define MISC_ENABLE_FAST_STRING 0x1ULL

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
        memset(s, 0, sizeof(*s));
        s->base = 0;
        s->limit = 0xffffffff;
        s->selector = sel;
        s->type = type;
        s->present = 1;
        s->s = 1;
        s->g = 1;
        s->l = code ? 1 : 0;
        s->db = code ? 0 : 1;
}

static int setup_sregs(struct sprout_vm *vm, struct sprout_err *err)
{
        struct kvm_sregs sr;
        if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
                return sprout_err_errno(err, -errno, "KVM_GET_SREGS");
        set_seg(&sr.cs, BOOT_GDT_CODE_SEL, 0xb, true);
        set_seg(&sr.ds, BOOT_GDT_DATA_SEL, 0x3, false);
        sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
        memset(&sr.tr, 0, sizeof(sr.tr));
        sr.tr.selector = BOOT_GDT_TSS_SEL;
        sr.tr.limit = 0x67;
        sr.tr.type = 0xb; /* busy 64-bit TSS */
        sr.tr.present = 1;
        memset(&sr.ldt, 0, sizeof(sr.ldt));
        sr.ldt.type = 0x2;
        sr.ldt.present = 1;
        sr.ldt.limit = 0xffff;
        sr.gdt.base = BOOT_GDT_ADDR;
        sr.gdt.limit = 6 * 8 - 1;
        sr.idt.base = BOOT_IDT_ADDR;
        sr.idt.limit = 7;
        sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        sr.cr3 = BOOT_PML4_ADDR;
        sr.cr4 = CR4_PAE;
        sr.efer = EFER_LME | EFER_LMA;
        if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sr) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_SREGS (64-bit entry state)");
        return 0;
}

static int setup_lapic(struct sprout_vm *vm, struct sprout_err *err)
{
        struct kvm_lapic_state la;
        if (ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &la) < 0)
                return sprout_err_errno(err, -errno, "KVM_GET_LAPIC");
        uint32_t *lvt0 = (uint32_t *)&la.regs[APIC_LVT0];
        uint32_t *lvt1 = (uint32_t *)&la.regs[APIC_LVT1];
        /* LINT0 is the PIC's virtual wire, LINT1 the NMI line, as the MP table says. */
        *lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
        *lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
        if (ioctl(vm->vcpu_fd, KVM_SET_LAPIC, &la) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_LAPIC");
        return 0;
}

int vcpu_create(struct sprout_vm *vm, struct sprout_err *err)
{
        vm->vcpu_fd = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
        if (vm->vcpu_fd < 0) {
                vm->vcpu_fd = -1;
                return sprout_err_errno(err, -errno, "KVM_CREATE_VCPU");
        }
        void *run = mmap(NULL, (size_t)vm->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                         vm->vcpu_fd, 0);
        if (run == MAP_FAILED)
                return sprout_err_errno(err, -errno, "mapping the vCPU run area");
        vm->run = run;
        return 0;
}

int vcpu_setup_for_boot(struct sprout_vm *vm, uint64_t entry, uint64_t zero_page,
                        struct sprout_err *err)
{
        int r;

        r = cpu_profile_cpuid(vm->kvm, 0, &vm->cpuid, err);
        if (r < 0)
                return r;
        if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, vm->cpuid) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_CPUID2");

        r = setup_sregs(vm, err);
        if (r < 0)
                return r;

        struct kvm_regs regs = {
            .rip = entry,
            .rsi = zero_page,
            .rflags = 0x2,
            .rsp = BOOT_ZERO_PAGE_ADDR, /* startup_64 sets its own stack; this is a safe scratch */
        };
        if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_REGS");

        struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
        if (ioctl(vm->vcpu_fd, KVM_SET_FPU, &fpu) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_FPU");

        struct {
                struct kvm_msrs hdr;
                struct kvm_msr_entry e[1];
        } msrs = {.hdr.nmsrs = 1,
                  .e[0] = {.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING}};
        if (ioctl(vm->vcpu_fd, KVM_SET_MSRS, &msrs) != 1)
                return sprout_err_errno(err, -errno, "KVM_SET_MSRS");

        return setup_lapic(vm, err);
}

static const char *exit_hint(const struct sprout_vm *vm)
{
        if (vm->kvm->kind == SPROUT_HOST_PVM)
                return "hint: on a PVM host guest kernel mode is emulated and some instructions "
                       "cannot "
                       "be (XSAVE family, CMPXCHG16B, INT3 and FWAIT at CPL0): hide the feature in "
                       "CPUID or on the kernel command line, or use sprout's patched guest kernel "
                       "(guest/kernel/build.sh)";
        return "hint: KVM could not run or emulate this instruction; check the guest kernel and "
               "the CPU profile";
}

int vcpu_describe_failure(struct sprout_vm *vm, struct sprout_err *err)
{
        struct kvm_run *run = vm->run;
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        uint8_t insn[16];
        unsigned ninsn = 0;
        char what[96];
        char bytes[64] = "";

        if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
                snprintf(what, sizeof(what), "KVM internal error (suberror %u)",
                         run->internal.suberror);
                if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
                    run->internal.ndata >= 1 && run->emulation_failure.ndata >= 3 &&
                    (run->emulation_failure.flags &
                     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
                        ninsn = run->emulation_failure.insn_size;
                        if (ninsn > 15)
                                ninsn = 15;
                        memcpy(insn, run->emulation_failure.insn_bytes, ninsn);
                }
        } else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
                snprintf(what, sizeof(what), "VM entry failed (hardware reason 0x%llx)",
                         (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        } else {
                snprintf(what, sizeof(what), "unexpected KVM exit %u", run->exit_reason);
        }
        if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
            ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
                return sprout_err_set(err, -EIO, "guest stopped: %s; registers unreadable", what);
        if (ninsn == 0) {
                /* Read the bytes at RIP through the guest's own page tables. */
                struct kvm_translation tr = {.linear_address = sregs.cs.base + regs.rip};
                if (ioctl(vm->vcpu_fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
                        const uint8_t *p = guest_ptr(vm, tr.physical_address, 15);
                        if (p) {
                                memcpy(insn, p, 15);
                                ninsn = 15;
                        }
                }
        }
        for (unsigned i = 0; i < ninsn; i++)
                snprintf(bytes + 3 * i, sizeof(bytes) - 3 * i, "%02x ", insn[i]);
        return sprout_err_set(err, -EIO,
                              "guest stopped: %s at RIP 0x%llx (CPL %u), instruction "
                              "bytes: %s; %s",
                              what, (unsigned long long)regs.rip, sregs.cs.dpl,
                              ninsn ? bytes : "unreadable", exit_hint(vm));
}

int vcpu_complete_io(struct sprout_vm *vm, const char *when, struct sprout_err *err)
{
        vm->run->immediate_exit = 1;
        int r = ioctl(vm->vcpu_fd, KVM_RUN, 0);
        int e = errno;
        vm->run->immediate_exit = 0;
        if (r == 0 || e != EINTR)
                return sprout_err_set(err, -EIO, "completing the pending I/O %s: %s", when,
                                      r == 0 ? "the guest ran on" : strerror(e));
        return 0;
}
