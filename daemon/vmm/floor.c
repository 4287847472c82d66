/* The physical floor of a clone on this host: the cheapest VM KVM can run (create VM, one memslot,
 * one vCPU, one KVM_RUN to a HLT, teardown), measured so benchmarks can print it beside sprout's
 * numbers from the same run. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sprout/clock.h"
#include "vmm_internal.h"

static double now_us(void)
{
        return (double)sprout_mono_ns() / 1e3;
}

int sprout_floor_measure(struct sprout_kvm *kvm, struct sprout_floor *out, struct sprout_err *err)
{
        const size_t mem = 2 << 20;
        int vm = -1, vcpu = -1, r = 0;
        struct kvm_run *run = MAP_FAILED;
        uint8_t *ram = MAP_FAILED;

        double t0 = now_us();
        vm = kvm_create_vm_fd(kvm);
        if (vm < 0)
                return sprout_err_errno(err, vm, "floor: KVM_CREATE_VM");
        double t1 = now_us();
        ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ram == MAP_FAILED) {
                r = sprout_err_errno(err, -errno, "floor: mmap");
                goto out;
        }
        ram[0] = 0xf4; /* hlt, at the real-mode entry below */
        struct kvm_userspace_memory_region slot = {.memory_size = mem,
                                                   .userspace_addr = (uintptr_t)ram};
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
                r = sprout_err_errno(err, -errno, "floor: KVM_SET_USER_MEMORY_REGION");
                goto out;
        }
        double t2 = now_us();
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (vcpu < 0) {
                r = sprout_err_errno(err, -errno, "floor: KVM_CREATE_VCPU");
                goto out;
        }
        run = mmap(NULL, (size_t)kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (run == MAP_FAILED) {
                r = sprout_err_errno(err, -errno, "floor: mmap run");
                goto out;
        }
        struct kvm_sregs sr;
        if (ioctl(vcpu, KVM_GET_SREGS, &sr) < 0) {
                r = sprout_err_errno(err, -errno, "floor: KVM_GET_SREGS");
                goto out;
        }
        sr.cs.base = 0;
        sr.cs.selector = 0;
        struct kvm_regs regs = {.rip = 0, .rflags = 2};
        if (ioctl(vcpu, KVM_SET_SREGS, &sr) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
                r = sprout_err_errno(err, -errno, "floor: setting registers");
                goto out;
        }
        double t3 = now_us();
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
                r = sprout_err_errno(err, -errno, "floor: KVM_RUN");
                goto out;
        }
        double t4 = now_us();
        if (run->exit_reason != KVM_EXIT_HLT) {
                r = sprout_err_set(err, -EIO,
                                   "floor: the one-instruction guest exited with %u, not HLT",
                                   run->exit_reason);
                goto out;
        }
        out->create_vm_us = t1 - t0;
        out->memslot_us = t2 - t1;
        out->vcpu_us = t3 - t2;
        out->run_us = t4 - t3;
out:;
        double t5 = now_us();
        if (run != MAP_FAILED)
                munmap(run, (size_t)kvm->vcpu_mmap_size);
        if (vcpu >= 0)
                close(vcpu);
        close(vm);
        if (ram != MAP_FAILED)
                munmap(ram, mem);
        out->teardown_us = now_us() - t5;
        out->total_us = out->create_vm_us + out->memslot_us + out->vcpu_us + out->run_us;
        return r;
}
