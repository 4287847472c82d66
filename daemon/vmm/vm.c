/* The microVM: KVM VM fd, guest RAM, the mailbox slot, devices, and the run loop that turns KVM
 * exits into device accesses and sprout events. One vCPU, run on the caller's thread. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "boot_layout.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/log.h"
#include "sprout/smaps.h"
#include "vmm_internal.h"

#define DEFAULT_CONSOLE_LOG (64 * 1024)
#define MIN_RAM             (32ULL << 20)
#define SLOT_RAM            0
#define SLOT_MAILBOX        1
#define COM1_PORT           0x3f8
#define COM1_IRQ            4

#define STR_(x) #x
#define STR(x)  STR_(x)
/* clocksource=kvm-clock: a clone's wall clock is put right by KVM_SET_CLOCK, which moves kvmclock
 * but not the TSC; Linux would otherwise prefer a stable TSC and keep the snapshot's time.
 * sprout.seed: where sprout's kernel finds its seed page (include/sprout/abi.h); a kernel without
 * the patch ignores it (a dotted word is a module parameter, not init's), and an image may turn
 * it off with sprout.seed=off after it (the last one counts). */
static const char default_cmdline[] = "console=ttyS0 reboot=k panic=-1 quiet no_timer_check "
                                      "tsc=reliable clocksource=kvm-clock rdinit=/init "
                                      "sprout.seed=" STR(SPROUT_SEED_GPA);

/* ---- memory ---- */

void *guest_ptr(struct sprout_vm *vm, uint64_t gpa, uint64_t len)
{
        uint64_t end;
        if (__builtin_add_overflow(gpa, len, &end) || end > vm->ram_size)
                return NULL;
        return vm->ram + gpa;
}

static int set_slot(struct sprout_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
                    struct sprout_err *err)
{
        struct kvm_userspace_memory_region r = {
            .slot = slot,
            .guest_phys_addr = gpa,
            .memory_size = size,
            .userspace_addr = (uintptr_t)host,
        };
        if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
                return sprout_err_errno(err, -errno, "KVM_SET_USER_MEMORY_REGION slot %u", slot);
        return 0;
}

void vm_irq_line(struct sprout_vm *vm, int irq, int level)
{
        struct kvm_irq_level l = {.irq = (uint32_t)irq, .level = (uint32_t)level};
        if (ioctl(vm->fd, KVM_IRQ_LINE, &l) < 0)
                sp_warn("KVM_IRQ_LINE %d=%d: %s", irq, level, strerror(errno));
}

/* ---- the I/O buses ---- */

int vm_add_io(struct sprout_vm *vm, uint64_t base, uint64_t len, bool mmio,
              const struct io_device_ops *ops, void *dev, struct sprout_err *err)
{
        if (vm->nio == SPROUT_MAX_IO_RANGES)
                return sprout_err_set(err, -ENOSPC, "too many devices");
        for (unsigned i = 0; i < vm->nio; i++) {
                const struct io_range *o = &vm->io[i];
                if (o->mmio == mmio && base < o->base + o->len && o->base < base + len)
                        return sprout_err_set(err, -EEXIST, "%s overlaps %s", ops->name,
                                              o->ops->name);
        }
        vm->io[vm->nio++] = (struct io_range){base, len, mmio, ops, dev};
        return 0;
}

/* Dispatches one access; an address no device claims reads as all ones and ignores writes. */
static void io_access(struct sprout_vm *vm, uint64_t addr, bool mmio, uint8_t *data, uint32_t len,
                      bool is_write)
{
        for (unsigned i = 0; i < vm->nio; i++) {
                const struct io_range *r = &vm->io[i];
                if (r->mmio == mmio && addr >= r->base && addr - r->base < r->len) {
                        r->ops->io(vm, r->dev, addr - r->base, data, len, is_write);
                        return;
                }
        }
        if (!is_write)
                memset(data, 0xff, len);
}

static int handle_pio(struct sprout_vm *vm, struct sprout_err *err)
{
        struct kvm_run *run = vm->run;
        uint64_t total = (uint64_t)run->io.size * run->io.count;
        if (run->io.size == 0 || run->io.size > 4 ||
            run->io.data_offset > (uint64_t)vm->kvm->vcpu_mmap_size ||
            total > (uint64_t)vm->kvm->vcpu_mmap_size - run->io.data_offset)
                return sprout_err_set(err, -EIO, "KVM reported a malformed port I/O exit");
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        for (uint32_t i = 0; i < run->io.count; i++)
                io_access(vm, run->io.port, false, data + (uint64_t)i * run->io.size, run->io.size,
                          run->io.direction == KVM_EXIT_IO_OUT);
        return 0;
}

static void handle_mmio(struct sprout_vm *vm)
{
        struct kvm_run *run = vm->run;
        uint32_t len = run->mmio.len > 8 ? 8 : run->mmio.len;
        io_access(vm, run->mmio.phys_addr, true, run->mmio.data, len, run->mmio.is_write);
}

/* ---- the kick signal: interrupts KVM_RUN for deadlines and stop requests ---- */

static __thread struct kvm_run *tls_run;
static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static int kick_signo;

static void kick_handler(int sig)
{
        (void)sig;
        /* Set before KVM_RUN it makes the next entry return at once; during KVM_RUN the signal
         * itself forces the exit. Either way no wakeup is lost. */
        if (tls_run)
                tls_run->immediate_exit = 1;
}

static void kick_install(void)
{
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        kick_signo = SIGRTMIN + 4;
        sigaction(kick_signo, &sa, NULL);
}

/* ---- lifecycle ---- */

static int build_cmdline(struct sprout_vm *vm, const char *extra, struct sprout_err *err)
{
        const char *prof = cpu_profile_cmdline(vm->kvm);
        size_t n = strlen(default_cmdline) + strlen(prof) + (extra ? strlen(extra) : 0) + 3;
        vm->cmdline = malloc(n);
        if (!vm->cmdline)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        snprintf(vm->cmdline, n, "%s%s%s%s%s", default_cmdline, *prof ? " " : "", prof,
                 extra && *extra ? " " : "", extra ? extra : "");
        return 0;
}

int vm_new(struct sprout_kvm *kvm, uint64_t mem_size, int base_fd, int console_fd,
           size_t console_log_size, struct sprout_vm **out, struct sprout_err *err)
{
        struct sprout_vm *vm;
        int r;

        if (mem_size < MIN_RAM || mem_size > SPROUT_RAM_MAX || (mem_size & 0x1fffff))
                return sprout_err_set(
                    err, -EINVAL,
                    "guest memory must be a multiple of 2 MiB between %llu MiB and "
                    "%llu MiB (got %llu bytes)",
                    MIN_RAM >> 20, SPROUT_RAM_MAX >> 20, (unsigned long long)mem_size);
        pthread_once(&kick_once, kick_install);
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        vm->kvm = kvm;
        vm->fd = -1;
        vm->vcpu_fd = -1;

        r = console_log_init(&vm->console,
                             console_log_size ? console_log_size : DEFAULT_CONSOLE_LOG, console_fd);
        if (r < 0) {
                sprout_err_set(err, r, "out of memory");
                goto fail;
        }
        vm->fd = kvm_create_vm_fd(kvm);
        if (vm->fd < 0) {
                r = sprout_err_errno(err, vm->fd, "KVM_CREATE_VM");
                vm->fd = -1;
                goto fail;
        }
        /* VMX reserves these two pages for real-mode emulation; other hosts may refuse them. */
        if (ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
                sp_debug("KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
        uint64_t ident = 0xfffbc000ULL;
        if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
                sp_debug("KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));

        vm->ram_size = mem_size;
        /* A clone's RAM is a private mapping of the shared base: reads share its pages, writes
         * copy. */
        void *ram = base_fd >= 0 ? mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_NORESERVE, base_fd, 0)
                                 : mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (ram == MAP_FAILED) {
                r = sprout_err_errno(err, -errno, "mapping %llu MiB of guest RAM",
                                     (unsigned long long)(mem_size >> 20));
                goto fail;
        }
        vm->ram = ram;
        r = set_slot(vm, SLOT_RAM, 0, vm->ram_size, vm->ram, err);
        if (r < 0)
                goto fail;
        r = sprout_dev_init(&vm->sdev, err);
        if (r < 0)
                goto fail;
        r = set_slot(vm, SLOT_MAILBOX, SPROUT_MAILBOX_GPA, SPROUT_MAILBOX_SIZE, vm->sdev.mailbox,
                     err);
        if (r < 0)
                goto fail;

        /* The irqchip comes after the memslots: on a populated base, adding a slot to a VM that
         * already has an in-kernel irqchip measured 30x slower here (7 ms instead of 0.25 ms). */
        if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
                r = sprout_err_errno(err, -errno, "KVM_CREATE_IRQCHIP");
                goto fail;
        }
        /* A booting kernel calibrates against the PIT; a clone (RAM from a base) has long been
         * running on the LAPIC timer and kvm-clock. KVM gives every PIT a kernel thread
         * (kvm-pit/N), a stack and a task, ~40 KiB a clone, and a periodic channel 0 could make it
         * fire a host timer for every idle clone: clones get none, and their PIT ports read as
         * all ones (docs/workers.md, "Idle clones"). */
        vm->has_pit = base_fd < 0;
        struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
        if (vm->has_pit && ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
                r = sprout_err_errno(err, -errno, "KVM_CREATE_PIT2");
                goto fail;
        }

        serial_init(&vm->com1, COM1_IRQ);
        if ((r = vm_add_io(vm, COM1_PORT, 8, false, &serial_ops, &vm->com1, err)) < 0 ||
            (r = vm_add_io(vm, 0x60, 5, false, &i8042_ops, NULL, err)) < 0 ||
            (r = vm_add_io(vm, SPROUT_DOORBELL_PORT, 4, false, &sprout_db_ops, &vm->sdev, err)) <
                0 ||
            (r = vm_add_io(vm, SPROUT_DOORBELL_MMIO_GPA, SPROUT_DOORBELL_MMIO_SIZE, true,
                           &sprout_db_ops, &vm->sdev, err)) < 0)
                goto fail;
        r = vcpu_create(vm, err);
        if (r < 0)
                goto fail;
        *out = vm;
        return 0;
fail:
        sprout_vm_destroy(vm);
        return r;
}

int sprout_vm_create(struct sprout_kvm *kvm, const struct sprout_vm_config *cfg,
                     struct sprout_vm **out, struct sprout_err *err)
{
        struct sprout_vm *vm;
        uint64_t entry, kernel_end, initrd_addr = 0, initrd_size = 0, zero_page;
        int r;

        if (cfg->vcpus != 1)
                return sprout_err_set(err, -EINVAL, "only 1 vCPU is supported (asked for %u)",
                                      cfg->vcpus);
        if (!cfg->kernel_path && !(cfg->have_fds && cfg->kernel_fd >= 0))
                return sprout_err_set(err, -EINVAL, "no kernel given");
        r = vm_new(kvm, cfg->mem_size, -1, cfg->console_fd, cfg->console_log_size, &vm, err);
        if (r < 0)
                return r;
        r = build_cmdline(vm, cfg->cmdline, err);
        if (r < 0)
                goto fail;
        /* The booting VM gets an identity too (a zero UUID: it is no clone). Its entropy seeds the
         * guest RNG when the runtime opens the device: with no hardware RNG a small guest would
         * otherwise reach READY with its CRNG uninitialized, and every clone would pay for the
         * init (measured: ~10 ms and ~80 KiB of private memory per clone on a PVM host). */
        static const uint8_t no_uuid[16];
        r = sprout_dev_write_identity(&vm->sdev, no_uuid, err);
        if (r < 0)
                goto fail;
        r = boot_load_elf(vm, cfg->kernel_path, cfg->have_fds ? cfg->kernel_fd : -1, &entry,
                          &kernel_end, err);
        if (r < 0)
                goto fail;
        if (cfg->initrd_path) {
                r = boot_load_initrd(vm, cfg->initrd_path, cfg->have_fds ? cfg->initrd_fd : -1,
                                     kernel_end, &initrd_addr, &initrd_size, err);
                if (r < 0)
                        goto fail;
        }
        r = boot_write_params(vm, initrd_addr, initrd_size, &zero_page, err);
        if (r < 0)
                goto fail;
        boot_write_tables(vm);
        r = mptable_write(vm, cfg->vcpus, err);
        if (r < 0)
                goto fail;
        r = vcpu_setup_for_boot(vm, entry, zero_page, err);
        if (r < 0)
                goto fail;
        *out = vm;
        return 0;
fail:
        sprout_vm_destroy(vm);
        return r;
}

void sprout_vm_destroy(struct sprout_vm *vm)
{
        if (!vm)
                return;
        if (vm->run)
                munmap(vm->run, (size_t)vm->kvm->vcpu_mmap_size);
        if (vm->vcpu_fd >= 0)
                close(vm->vcpu_fd);
        if (vm->fd >= 0)
                close(vm->fd);
        if (vm->ram)
                munmap(vm->ram, vm->ram_size);
        sprout_dev_free(&vm->sdev);
        console_log_free(&vm->console);
        free(vm->cmdline);
        free(vm->cpuid);
        free(vm);
}

void sprout_vm_set_console(struct sprout_vm *vm, int console_fd)
{
        vm->console.echo_fd = console_fd;
}

int sprout_vm_event_error(const struct sprout_vm_event *ev, const char *who, const char *awaited,
                          int64_t timeout_ms, struct sprout_err *err)
{
        switch (ev->kind) {
        case SPROUT_EV_TIMEOUT:
                return sprout_err_set(err, -ETIMEDOUT, "%s did not %s within %lld ms%s%s%s", who,
                                      awaited, (long long)timeout_ms, ev->detail[0] ? " (" : "",
                                      ev->detail, ev->detail[0] ? ")" : "");
        case SPROUT_EV_PANIC:
                return sprout_err_set(err, -EPROTO, "%s failed before it could %s: %s", who,
                                      awaited, ev->detail);
        case SPROUT_EV_STOPPED:
                return sprout_err_set(err, -ESHUTDOWN, "%s stopped before it could %s: %s", who,
                                      awaited, ev->detail);
        default:
                return sprout_err_set(err, -EPROTO, "%s sent event %d when it should %s", who,
                                      ev->kind, awaited);
        }
}

uintptr_t sprout_vm_ram_start(const struct sprout_vm *vm)
{
        return (uintptr_t)vm->ram;
}

uint64_t sprout_vm_private_bytes(struct sprout_vm *vm)
{
        uintptr_t start = sprout_vm_ram_start(vm);
        uint64_t bytes = 0;
        (void)sprout_smaps_anon(&start, 1, &bytes);
        return bytes;
}

const char *sprout_vm_cmdline(const struct sprout_vm *vm)
{
        return vm->cmdline ? vm->cmdline : "";
}

size_t sprout_vm_console_tail(struct sprout_vm *vm, char *buf, size_t len, unsigned lines)
{
        return console_log_read(&vm->console, 0, lines, buf, len, NULL);
}

uint64_t sprout_vm_console_mark(const struct sprout_vm *vm)
{
        return vm->console.total;
}

size_t sprout_vm_console_since(struct sprout_vm *vm, uint64_t mark, char *buf, size_t len,
                               bool *lost)
{
        return console_log_read(&vm->console, mark, UINT_MAX, buf, len, lost);
}

/* ---- running ---- */

static void stopped_event(struct sprout_vm *vm, struct sprout_vm_event *ev)
{
        memset(ev, 0, sizeof(*ev));
        ev->kind = SPROUT_EV_STOPPED;
        snprintf(ev->detail, sizeof(ev->detail), "%s", vm->stop_reason);
}

static int arm_timer(timer_t *t, int64_t timeout_ms)
{
        struct sigevent sev;
        memset(&sev, 0, sizeof(sev));
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = kick_signo;
        sev._sigev_un._tid = gettid();
        if (timer_create(CLOCK_MONOTONIC, &sev, t) < 0)
                return -errno;
        struct itimerspec its = {
            .it_value = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000}};
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
                its.it_value.tv_nsec = 1;
        if (timer_settime(*t, 0, &its, NULL) < 0) {
                int e = -errno;
                timer_delete(*t);
                return e;
        }
        return 0;
}

int sprout_vm_run(struct sprout_vm *vm, int64_t timeout_ms, struct sprout_vm_event *ev,
                  struct sprout_err *err)
{
        timer_t timer;
        bool timed = timeout_ms >= 0;
        int64_t deadline = timed ? sprout_mono_ns() + timeout_ms * 1000000LL : 0;
        int r = 0;

        if (vm->broken)
                return sprout_err_set(err, -EIO, "the VM failed earlier and cannot run");
        if (vm->stopped) {
                stopped_event(vm, ev);
                return 0;
        }
        if (timed && (r = arm_timer(&timer, timeout_ms)) < 0)
                return sprout_err_errno(err, r, "arming the run deadline");
        if (vm->ws_pending)
                vm_populate_pending(vm, false);
        tls_run = vm->run;
        for (;;) {
                if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
                        int e = errno;
                        vm->run->immediate_exit = 0;
                        if (e == EINTR || e == EAGAIN) {
                                if (timed && sprout_mono_ns() >= deadline) {
                                        memset(ev, 0, sizeof(*ev));
                                        ev->kind = SPROUT_EV_TIMEOUT;
                                        vcpu_describe_stuck(vm, ev->detail, sizeof(ev->detail));
                                        break;
                                }
                                continue;
                        }
                        vm->broken = true;
                        r = sprout_err_errno(err, -e, "KVM_RUN");
                        break;
                }
                struct kvm_run *run = vm->run;
                switch (run->exit_reason) {
                case KVM_EXIT_IO:
                        r = handle_pio(vm, err);
                        break;
                case KVM_EXIT_MMIO:
                        handle_mmio(vm);
                        break;
                case KVM_EXIT_INTR:
                        continue;
                case KVM_EXIT_SHUTDOWN:
                        vm->stopped = true;
                        snprintf(vm->stop_reason, sizeof(vm->stop_reason),
                                 "guest triple-faulted (CPU shutdown)");
                        break;
                case KVM_EXIT_SYSTEM_EVENT:
                        vm->stopped = true;
                        snprintf(vm->stop_reason, sizeof(vm->stop_reason),
                                 "guest system event %u (%s)", run->system_event.type,
                                 run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "reset"
                                                                                  : "shutdown");
                        break;
                case KVM_EXIT_HLT:
                        vm->stopped = true;
                        snprintf(vm->stop_reason, sizeof(vm->stop_reason), "guest halted");
                        break;
                default:
                        vm->broken = true;
                        r = vcpu_describe_failure(vm, err);
                        break;
                }
                if (r < 0) {
                        vm->broken = true;
                        break;
                }
                if (vm->sdev.rang) {
                        vm->sdev.rang = false;
                        if (sprout_dev_handle(vm, vm->sdev.pending_db, ev))
                                break;
                }
                if (vm->stopped) {
                        stopped_event(vm, ev);
                        break;
                }
        }
        tls_run = NULL;
        vm->run->immediate_exit = 0;
        vm->last_exit_ns = sprout_mono_ns();
        if (timed)
                timer_delete(timer);
        return r;
}
