/* The physical floor of a clone on this host: the cheapest VM KVM can run (create VM, one memslot,
 * one vCPU, one KVM_RUN to a HLT, teardown), measured so benchmarks can print it beside sprout's
 * numbers from the same run. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The name in /proc/DIR/comm without its newline; false if unreadable. A kernel thread's is its
 * whole name there ("kvm-nx-lpage-recovery-1234"), not the 15 characters of its task. */
static bool read_comm(const char *dir, const char *entry, char *out, size_t len)
{
        char path[320];
        snprintf(path, sizeof(path), "%s/%s/comm", dir, entry);
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        bool ok = fgets(out, (int)len, f) != NULL;
        fclose(f);
        out[strcspn(out, "\n")] = '\0';
        return ok;
}

/* Adds name (its "-PID" or "/PID" tail cut) to the comma-separated list, once. */
static void add_name(char *names, size_t len, const char *name, size_t cut)
{
        char base[64];
        snprintf(base, sizeof(base), "%.*s", (int)(cut < sizeof(base) - 1 ? cut : sizeof(base) - 1),
                 name);
        /* Any process may name a thread: what reaches a log or a terminal is plain. */
        for (char *c = base; *c; c++)
                if (!isalnum((unsigned char)*c) && !strchr("._/-", *c))
                        *c = '?';
        for (const char *p = names; (p = strstr(p, base)); p += strlen(base))
                if ((p == names || p[-1] == ',') && (p[strlen(base)] == ',' || !p[strlen(base)]))
                        return;
        size_t n = strlen(names);
        if (n + strlen(base) + 2 <= len)
                snprintf(names + n, len - n, "%s%s", n ? "," : "", base);
}

/* Walks /proc and our own tasks once (later kernels start KVM's per-VM threads as tasks of the VM's
 * process). */
unsigned kvm_threads_now(char *names, size_t len)
{
        char tail[2][24], comm[128];
        int pid = (int)getpid();
        snprintf(tail[0], sizeof(tail[0]), "-%d", pid);
        snprintf(tail[1], sizeof(tail[1]), "/%d", pid);
        unsigned n = 0;
        if (names)
                names[0] = '\0';
        static const char *const dirs[] = {"/proc", "/proc/self/task"};
        for (size_t d = 0; d < 2; d++) {
                DIR *dir = opendir(dirs[d]);
                for (struct dirent *e; dir && (e = readdir(dir));) {
                        if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
                            !read_comm(dirs[d], e->d_name, comm, sizeof(comm)) ||
                            strncmp(comm, "kvm-", 4))
                                continue;
                        size_t cl = strlen(comm), cut = cl;
                        bool ours = d == 1;
                        for (size_t t = 0; !ours && t < 2; t++) {
                                size_t tl = strlen(tail[t]);
                                if (cl > tl && !strcmp(comm + cl - tl, tail[t])) {
                                        ours = true;
                                        cut = cl - tl;
                                }
                        }
                        if (!ours)
                                continue;
                        n++;
                        if (names)
                                add_name(names, len, comm, cut);
                }
                if (dir)
                        closedir(dir);
        }
        return n;
}

int sprout_floor_measure(struct sprout_kvm *kvm, struct sprout_floor *out, struct sprout_err *err)
{
        const size_t mem = 2 << 20;
        int vm = -1, vcpu = -1, r = 0;
        struct kvm_run *run = MAP_FAILED;
        uint8_t *ram = MAP_FAILED;

        memset(out, 0, sizeof(*out));
        unsigned threads_before = kvm_threads_now(NULL, 0);
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
        /* Counted while the VM lives and has run: some kernels start them at the first run. */
        unsigned threads_now =
            kvm_threads_now(out->kvm_thread_names, sizeof(out->kvm_thread_names));
        out->kvm_threads = threads_now > threads_before ? threads_now - threads_before : 0;
        if (!out->kvm_threads)
                out->kvm_thread_names[0] = '\0';
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
