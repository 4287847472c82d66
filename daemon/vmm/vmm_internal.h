/* Private structures and contracts of the VMM core (daemon/ only). Each prototype states what it
 * needs from its caller; all return 0 or a negative errno and put the reason in err. */
#ifndef SPROUT_VMM_INTERNAL_H
#define SPROUT_VMM_INTERNAL_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "sprout/err.h"
#include "sprout/floor.h"
#include "sprout/vmm.h"
#include "sprout/vmstate.h"

#define SPROUT_MAX_CPUID_ENTRIES 256
#define SPROUT_MAX_MSRS          512

/* MSRs more than one file of this layer names (the SDM's names; no uapi header has them). */
#define MSR_IA32_TSC          0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

struct sprout_kvm {
        int fd; /* /dev/kvm */
        enum sprout_host_kind kind;
        int vcpu_mmap_size;
        bool has_xsave2;
        bool has_immediate_exit;
        bool has_kvmclock_ctrl;
        bool has_xcrs;
        bool has_pre_fault;  /* KVM_PRE_FAULT_MEMORY (Linux 6.10, TDP hosts; not PVM) */
        uint32_t xsave_size; /* bytes of KVM's xsave buffer; 0 when KVM offers no XSAVE ioctls */
        struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID, owned */
        uint32_t *msr_index;                /* KVM_GET_MSR_INDEX_LIST, owned */
        uint32_t nmsrs;
        char cpu_vendor[13];
        /* The host CPU is QEMU's software emulation (hypervisor signature "TCGTCGTCGTCG"), as
         * under scripts/nested-kvm.sh: its I/O-permission check accepts only an available TSS
         * (type 9) in TR, not the busy one (11) that KVM reports and VMX requires, so a restored
         * guest's ioperm() doorbell would fault (docs/testing.md, "Hosts without /dev/kvm"). */
        bool tr_needs_available_tss;
};

/* The working set (state/working_set.c): pre-faults a clone's RAM mapping, the read runs from
 * the base and the write runs as private copies, and with page_tables, where KVM offers it, its
 * guest page tables (kvm_has_pre_fault). 0, or the first madvise's negative errno, or
 * KVM_PRE_FAULT_MEMORY's when KVM refuses the ioctl itself; either only costs speed. */
int vm_populate_working_set(struct sprout_vm *vm, const struct sprout_working_set *ws,
                            bool page_tables);
/* The working set a restore or recycle left (vm->ws_pending), if any, brought in and cleared:
 * page_tables in a shell, before the state is restored; not before a run (working_set.c says
 * why). */
void vm_populate_pending(struct sprout_vm *vm, bool page_tables);
/* cfg's working set made the VM's pending one, and brought in now if cfg->ws_in_shell: what a new
 * shell and a recycled VM both do. */
void vm_take_working_set(struct sprout_vm *vm, const struct sprout_restore_config *cfg);
bool kvm_has_pre_fault(int kvm_fd);

/* What the vCPU was doing when a run's deadline passed (stuck.c): halted or running, where,
 * whether interrupts and the LAPIC timer could still wake it. Always a string, never fails. */
void vcpu_describe_stuck(struct sprout_vm *vm, char *out, size_t n);

/* KVM_CREATE_VM, retried while it is interrupted: a VM fd, or a negative errno. */
int kvm_create_vm_fd(struct sprout_kvm *kvm);

/* KVM's threads of this process's VMs now (floor.c): kernel threads named kvm-...-PID or
 * kvm-.../PID for our pid, and our own tasks named kvm-.... Their names, without the pid,
 * comma-separated, once each and made printable, go to names when it is not NULL. */
unsigned kvm_threads_now(char *names, size_t len);

/* ---- console log: a bounded ring of the guest's serial output ---- */
struct console_log {
        char *buf;
        size_t cap;
        size_t len;     /* bytes valid, <= cap */
        size_t head;    /* next write position */
        uint64_t total; /* bytes ever put: a mark for what came after (console_log_read) */
        int echo_fd;    /* -1: none */
};

int console_log_init(struct console_log *log, size_t cap, int echo_fd);
/* Empties the ring (freeing it: its bytes go with it) and restarts its marks at 0, as
 * console_log_init left it. */
void console_log_reset(struct console_log *log, int echo_fd);
void console_log_put(struct console_log *log, const char *data, size_t len);
/* The last `lines` lines of what was put after the mark `since` (0: all that is kept), escaped
 * and NUL-terminated in out, whole lines when it is cut to fit; returns the length. *lost (when
 * not NULL) says whether something after the mark is missing: it left the ring, or did not fit. */
size_t console_log_read(const struct console_log *log, uint64_t since, unsigned lines, char *out,
                        size_t outlen, bool *lost);
void console_log_free(struct console_log *log);

/* ---- devices on the port I/O and MMIO buses ---- */
struct sprout_vm;

struct blob;

struct io_device_ops {
        const char *name;
        /* Handles an access of len (1, 2 or 4) bytes at offset from the device base. A read fills
         * data. */
        void (*io)(struct sprout_vm *vm, void *dev, uint64_t offset, uint8_t *data, uint32_t len,
                   bool is_write);
        /* Snapshot support, for devices with guest-visible state (NULL for none). save appends one
         * record of type state_rec (a versioned, documented layout, never a host struct);
         * restore takes a record of type state_rec, or legacy_rec (an older layout; 0 for none),
         * checks every field (the file is untrusted) and leaves the host wiring alone. */
        uint32_t state_rec, legacy_rec;
        void (*save)(void *dev, struct blob *b);
        int (*restore)(void *dev, uint32_t type, const void *data, size_t len,
                       struct sprout_err *err);
};

/* Record types of a vCPU section (docs/snapshot-format.md, "VM state"): each the KVM struct of
 * that ioctl. */
enum vcpu_rec {
        VREC_MP_STATE = 1,
        VREC_REGS,
        VREC_SREGS,
        VREC_FPU,
        VREC_XSAVE,
        VREC_XCRS,
        VREC_DEBUGREGS,
        VREC_LAPIC,
        VREC_MSRS,
        VREC_EVENTS,
        VREC_CPUID,
        VREC_TSC_KHZ,
};

/* Record types of the devices section (docs/snapshot-format.md, "Device state"). */
enum device_rec {
        DREC_SERIAL_RAW = 1, /* the UART as sprout 0.1 stored it: its host struct (legacy) */
        DREC_SERIAL_V1 = 2,  /* struct serial_state_v1 */
};

struct io_range {
        uint64_t base;
        uint64_t len;
        bool mmio;
        const struct io_device_ops *ops;
        void *dev;
};

#define SPROUT_MAX_IO_RANGES 16

/* ---- 16550 UART ---- */
struct serial {
        uint8_t ier, iir_thri_pending, lcr, mcr, scr, dll, dlm;
        int irq;
        int irq_level;
};

void serial_init(struct serial *s, int irq);
extern const struct io_device_ops serial_ops;
extern const struct io_device_ops i8042_ops;

/* ---- the sprout device: doorbell and mailbox ---- */

/* A token bucket: `burst` units at once, then `per_s` a second. Two budgets use it. Lines a
 * guest makes the daemon write to its own log (GUEST_WARN_*): a guest that rings in a loop costs
 * the host a few lines, not a log. Bytes of the guest's LOG text (GUEST_LOG_*), which go to the
 * clone's own bounded log and to a console echo when one is asked for: generous, so that what a
 * handler prints is kept in order and whole (docs/guest-protocol.md, LOG), yet a guest ringing in
 * a loop cannot keep an echo's file or terminal busy. */
#define GUEST_WARN_BURST 20
#define GUEST_WARN_PER_S 10
#define GUEST_LOG_BURST  (8 << 20)
#define GUEST_LOG_PER_S  (1 << 20)
struct log_bucket {
        bool primed;         /* false: full, not yet used */
        int64_t last_ns;     /* CLOCK_MONOTONIC when credit was last added */
        int64_t credit_ns;   /* time saved up, at most a burst's worth */
        uint64_t suppressed; /* takes refused since the last one let through */
        uint64_t refused;    /* takes refused in all */
};

/* Whether `units` more may be written at now_ns, at per_s a second with a burst of `burst`. When
 * they may and takes were refused before, *resumed gets how many (for a "N suppressed" line) and
 * the count restarts; else 0. */
bool log_bucket_take(struct log_bucket *b, int64_t now_ns, int64_t units, int64_t per_s,
                     int64_t burst, uint64_t *resumed);

struct sprout_dev {
        uint8_t *mailbox;    /* host mapping of the mailbox memslot, SPROUT_MAILBOX_SIZE bytes */
        uint32_t pending_db; /* the doorbell value of the last ring, consumed by the run loop */
        bool rang;
        uint32_t last_req_len;    /* bytes of the previous request, which the next one wipes */
        struct log_bucket log_rl; /* bytes of guest LOG text into the console log */
        struct log_bucket
            warn_rl; /* daemon log lines a guest causes (unknown commands, odd rings) */
};

int sprout_dev_init(struct sprout_dev *d, struct sprout_err *err);
/* Writes a new identity (UUID, fresh host entropy, the wall clock) into the mailbox for the guest
 * library to apply before it next reads a request (mailbox.c). */
int sprout_dev_write_identity(struct sprout_dev *d, const uint8_t uuid[16], struct sprout_err *err);
/* A new generation and seed in the mailbox's kernel seed page (include/sprout/abi.h). */
int sprout_dev_new_seed(struct sprout_dev *d, struct sprout_err *err);
/* Puts a used device back as sprout_dev_init made it: the mailbox's pages dropped (they read as
 * zeros again) and its header rewritten, the doorbell and both budgets cleared. */
int sprout_dev_reset(struct sprout_dev *d, struct sprout_err *err);
void sprout_dev_free(struct sprout_dev *d);
extern const struct io_device_ops sprout_db_ops;

/* Turns the doorbell value the guest rang into an event, reading the mailbox defensively. Returns 1
 * if the run loop should return ev to the caller, 0 if the ring was handled (LOG) and the guest
 * goes on. */
int sprout_dev_handle(struct sprout_vm *vm, uint32_t db, struct sprout_vm_event *ev);

/* Copies req into the request area and sets req_len, first zeroing what is left of the previous,
 * longer request: a reused clone's guest must not read an earlier caller's bytes past req_len. */
void sprout_dev_put_request(struct sprout_dev *d, const void *req, uint32_t req_len);

/* The guest's answer to a request or warm-up, judged by the flags it left (read once): a guest
 * whose ABI promises to apply a new identity (1.1 and later) must have cleared
 * SPROUT_MBF_NEW_IDENTITY before it answers, or it served with its parent's randomness.
 * -EPROTO, with the reason, when it did not. */
int sprout_dev_check_answer(uint32_t guest_abi, uint32_t flags, struct sprout_err *err);

/* ---- the VM ---- */
struct sprout_vm {
        struct sprout_kvm *kvm;
        int fd;
        int vcpu_fd;
        struct kvm_run *run;      /* vcpu_mmap_size bytes */
        struct kvm_cpuid2 *cpuid; /* what the vCPU was given, owned: saved into snapshots */
        uint8_t *ram;
        uint64_t ram_size;
        char *cmdline;
        struct console_log console;
        struct serial com1;
        struct sprout_dev sdev;
        struct io_range io[SPROUT_MAX_IO_RANGES];
        unsigned nio;
        bool stopped; /* the guest asked to stop (reset, poweroff) */
        char stop_reason[128];
        bool broken;           /* an unrecoverable exit happened; only destroy is legal */
        bool has_pit;          /* booted VMs only: a clone gets no in-kernel PIT (vm_new) */
        int64_t clock_skew_ns; /* guest CLOCK_REALTIME minus the host's, measured at READY */
        int64_t last_exit_ns;  /* CLOCK_MONOTONIC when the vCPU last left KVM_RUN for us */
        uint32_t guest_abi; /* the ABI the guest's READY reported (kept in snapshots); 0: unknown */
        uint32_t guest_features; /* SPROUT_GF_* its READY reported (kept in snapshots) */
        /* Pre-faulted before the next KVM_RUN, then NULL (vm_populate_pending); the base owns it
         * and outlives every VM restored from it (sprout_base_free's contract). */
        const struct sprout_working_set *ws_pending;
};

/* Checked guest-physical access: a pointer to len bytes of RAM at gpa, or NULL if any byte is
 * outside. */
void *guest_ptr(struct sprout_vm *vm, uint64_t gpa, uint64_t len);

/* Raises or lowers an ISA interrupt line on the in-kernel irqchip. */
void vm_irq_line(struct sprout_vm *vm, int irq, int level);

/* Registers a device on the port (mmio=false) or MMIO bus; ranges must not overlap. */
int vm_add_io(struct sprout_vm *vm, uint64_t base, uint64_t len, bool mmio,
              const struct io_device_ops *ops, void *dev, struct sprout_err *err);

/* The parts of VM creation that booting and restoring share: VM fd, irqchip, PIT, RAM (anonymous,
 * or a private copy-on-write mapping of base_fd when base_fd >= 0), the mailbox, the devices, the
 * vCPU. */
int vm_new(struct sprout_kvm *kvm, uint64_t mem_size, int base_fd, int console_fd,
           size_t console_log_size, struct sprout_vm **out, struct sprout_err *err);

/* Creates vCPU 0 and maps its run area. */
int vcpu_create(struct sprout_vm *vm, struct sprout_err *err);

/* Finishes the I/O of the exit that stopped the vCPU (the doorbell's OUT), so that its state is
 * whole: KVM completes it on the next KVM_RUN, which immediate_exit makes return at once (api.rst,
 * KVM_RUN). `when` names the step for the message. */
int vcpu_complete_io(struct sprout_vm *vm, const char *when, struct sprout_err *err);

/* Appends the vCPU's state to b. The vCPU must be outside KVM_RUN with no I/O half done. */
int vcpu_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err);
/* Restores a vCPU saved by vcpu_save into a freshly created vCPU; the section is untrusted and
 * checked (vcpu_state_check) before the first ioctl. */
int vcpu_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err);
/* Every record of a saved vCPU section against state_check.c's rules and this host, no ioctl. */
int vcpu_state_check(const struct sprout_kvm *kvm, const void *data, size_t len,
                     struct sprout_err *err);
/* Extracts the CPUID recorded in a saved vCPU section (validated). Caller frees. */
int vcpu_saved_cpuid(const void *data, size_t len, const struct sprout_kvm *kvm,
                     struct kvm_cpuid2 **out, struct sprout_err *err);

/* ---- VM-wide and device state (state/) ---- */

/* The irqchip, PIT2 and kvmclock records, and the guest facts learnt at READY. */
int vm_state_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err);
/* Restores them into a VM that has never run; the section is untrusted and checked
 * (vm_state_check) before the first ioctl. */
int vm_state_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err);
/* The VM section's records against state_check.c's rules, no ioctl. */
int vm_state_check(const void *data, size_t len, struct sprout_err *err);
/* Every device's record, through its ops (device_state.c). */
int devices_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err);
int devices_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err);
/* The first section with tag, or NULL. */
const struct sprout_vm_section *vm_find_section(const struct sprout_vm_section *s, unsigned n,
                                                uint32_t tag);

/* ---- checks of saved KVM state (state/state_check.c) ----
 * Pure functions over one record each (aligned copies), called by restore before any KVM_SET_*
 * ioctl: 0, or -EINVAL/-ENOTSUP with what was refused and why in err. docs/snapshot-format.md
 * ("What restore checks") lists the rules. */

/* Every MSR is one this host's KVM lists (host[0..nhost)), none twice, nmsrs within len bytes. */
int state_check_msrs(const struct kvm_msrs *m, size_t len, const uint32_t *host, uint32_t nhost,
                     struct sprout_err *err);
/* The entry for leaf fn, subleaf idx (ignored where the index is not significant), or NULL. */
const struct kvm_cpuid_entry2 *state_cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
                                                uint32_t idx);
/* The recorded CPUID against what this host's profile offers (cpu_profile_cpuid): every leaf
 * offered, feature bits a subset, counts and sizes no larger, vendor and hypervisor the same. */
int state_check_cpuid(const struct kvm_cpuid2 *rec, const struct kvm_cpuid2 *offer,
                      struct sprout_err *err);
int state_check_pit(const struct kvm_pit_state2 *pit, struct sprout_err *err);
/* A PIC record (chip_id master or slave) and the IOAPIC record. */
int state_check_pic(const struct kvm_irqchip *chip, struct sprout_err *err);
int state_check_ioapic(const struct kvm_irqchip *chip, struct sprout_err *err);
/* The 1 KiB register page of vCPU vcpu_id's LAPIC; apic_base (from sregs) says xAPIC or x2APIC. */
int state_check_lapic(const struct kvm_lapic_state *lapic, uint32_t vcpu_id, uint64_t apic_base,
                      struct sprout_err *err);
int state_check_events(const struct kvm_vcpu_events *ev, struct sprout_err *err);
int state_check_mp_state(const struct kvm_mp_state *mp, struct sprout_err *err);
/* Control registers, EFER, segments, descriptor tables and the APIC base, against the vCPU's
 * (already checked) CPUID. host_cr4 holds the CR4 bits this host's KVM puts in a guest's CR4 by
 * itself, whatever its CPUID (cpu_profile_host_cr4). */
int state_check_sregs(const struct kvm_sregs *sregs, const struct kvm_cpuid2 *cpuid,
                      uint64_t host_cr4, struct sprout_err *err);
/* RFLAGS and RIP, in the mode sregs (already checked) put the vCPU in. */
int state_check_regs(const struct kvm_regs *regs, const struct kvm_sregs *sregs,
                     struct sprout_err *err);

/* ---- x86 boot: kernel load, boot params, tables, first vCPU state ---- */

/* Loads the PT_LOAD segments of an x86-64 vmlinux into RAM; *entry is the physical entry point.
 * given_fd >= 0: read that open file (path only names it in messages). */
int boot_load_elf(struct sprout_vm *vm, const char *path, int given_fd, uint64_t *entry,
                  uint64_t *kernel_end, struct sprout_err *err);

/* Loads the initrd at the top of RAM (page aligned, above kernel_end); gives its address and size.
 */
int boot_load_initrd(struct sprout_vm *vm, const char *path, int given_fd, uint64_t kernel_end,
                     uint64_t *addr, uint64_t *size, struct sprout_err *err);

/* Writes the zero page (boot_params, e820, cmdline) and returns its guest-physical address. */
int boot_write_params(struct sprout_vm *vm, uint64_t initrd_addr, uint64_t initrd_size,
                      uint64_t *zero_page, struct sprout_err *err);

/* Writes the identity page tables and GDT that the 64-bit entry needs. */
void boot_write_tables(struct sprout_vm *vm);

/* Writes an MP table describing ncpus CPUs, the IOAPIC and ISA interrupt routing. */
int mptable_write(struct sprout_vm *vm, unsigned ncpus, struct sprout_err *err);

/* The CPUID a guest gets on this host, with what the host kind cannot run hidden. Caller frees. */
int cpu_profile_cpuid(const struct sprout_kvm *kvm, unsigned vcpu_id, struct kvm_cpuid2 **out,
                      struct sprout_err *err);

/* CR4 bits the host's KVM reports in, and accepts for, a guest's CR4 whatever the guest's CPUID:
 * on PVM the guest runs on the host's own CR4 (docs/architecture.md, "Host kinds"); 0 elsewhere. */
uint64_t cpu_profile_host_cr4(const struct sprout_kvm *kvm);

/* Command-line options the host kind needs (hiding what CPUID cannot hide on PVM); "" if none. */
const char *cpu_profile_cmdline(const struct sprout_kvm *kvm);

/* Sets CPUID on the created vCPU and puts it at entry in 64-bit mode with RSI = zero_page. */
int vcpu_setup_for_boot(struct sprout_vm *vm, uint64_t entry, uint64_t zero_page,
                        struct sprout_err *err);

/* Describes a KVM_EXIT_INTERNAL_ERROR / FAIL_ENTRY in err: reason, RIP, instruction bytes, a hint.
 */
int vcpu_describe_failure(struct sprout_vm *vm, struct sprout_err *err);

#endif
