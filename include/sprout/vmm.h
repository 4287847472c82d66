/* The VMM core: one KVM handle per process, microVMs that boot a Linux vmlinux to a sprout guest
 * agent. Every function returns 0 or a negative errno and fills a struct sprout_err with what went
 * wrong. */
#ifndef SPROUT_VMM_H
#define SPROUT_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/err.h"

/* What kind of hardware virtualization backs /dev/kvm; decides the CPU profile a guest gets. */
enum sprout_host_kind {
        SPROUT_HOST_UNKNOWN = 0,
        SPROUT_HOST_VMX = 1, /* Intel VT-x: guest kernel and user mode run natively */
        SPROUT_HOST_SVM = 2, /* AMD-V: likewise */
        SPROUT_HOST_PVM = 3, /* kvm_pvm: guest user mode native, guest kernel mode emulated */
};

const char *sprout_host_kind_name(enum sprout_host_kind kind);

struct sprout_kvm;

/* Opens /dev/kvm once per process and reads the host facts every VM shares. */
int sprout_kvm_open(struct sprout_kvm **out, struct sprout_err *err);
void sprout_kvm_close(struct sprout_kvm *kvm);
enum sprout_host_kind sprout_kvm_host_kind(const struct sprout_kvm *kvm);

struct sprout_vm_config {
        uint64_t mem_size;       /* bytes of guest RAM, a multiple of 2 MiB, <= SPROUT_RAM_MAX */
        unsigned vcpus;          /* only 1 for now */
        const char *kernel_path; /* uncompressed x86-64 vmlinux ELF */
        const char *initrd_path; /* may be NULL */
        const char *cmdline;     /* appended to sprout's defaults; may be NULL */
        int console_fd;          /* guest serial output is echoed here too; -1 for none */
        size_t console_log_size; /* bytes of serial output kept per VM; 0 for the default */
};

enum sprout_vm_event_kind {
        SPROUT_EV_READY = 1, /* the runtime rang READY; abi_version says which ABI */
        SPROUT_EV_DONE,      /* a response is in the mailbox */
        SPROUT_EV_PANIC,     /* the guest agent gave up; arg is a sprout_panic code, detail why */
        SPROUT_EV_STOPPED,   /* the guest powered off, rebooted or triple-faulted; detail says which
                              */
        SPROUT_EV_TIMEOUT,   /* the deadline passed first */
};

struct sprout_vm_event {
        enum sprout_vm_event_kind kind;
        uint32_t arg;
        uint32_t abi_version;
        char detail[512];
};

struct sprout_vm;

/* Creates the VM, loads kernel and initrd and leaves the vCPU at the kernel's 64-bit entry point.
 */
int sprout_vm_create(struct sprout_kvm *kvm, const struct sprout_vm_config *cfg,
                     struct sprout_vm **out, struct sprout_err *err);

/*
 * Runs the guest on the calling thread until it raises an event or timeout_ms passes (<0: no
 * limit). Guest faults the VMM cannot handle (an emulation failure, an entry failure) return an
 * error with the guest RIP and instruction bytes in err; the VM is then unusable except for
 * destroy.
 */
int sprout_vm_run(struct sprout_vm *vm, int64_t timeout_ms, struct sprout_vm_event *ev,
                  struct sprout_err *err);

/* Copies the last `lines` lines of the console log (NUL-terminated) into buf; returns the length.
 */
size_t sprout_vm_console_tail(struct sprout_vm *vm, char *buf, size_t len, unsigned lines);

/* The kernel command line the guest was given (sprout defaults + host profile + config). */
const char *sprout_vm_cmdline(const struct sprout_vm *vm);

void sprout_vm_destroy(struct sprout_vm *vm);

/* ---- snapshots and clones ---- */

/* Section tags of the VM state inside a snapshot; the snapshot file treats them as opaque. */
enum sprout_section_tag {
        SPROUT_SEC_VCPU = 1,     /* one per vCPU, in vCPU order */
        SPROUT_SEC_VM = 2,       /* irqchip, PIT, kvmclock */
        SPROUT_SEC_DEVICES = 3,  /* UART and sprout device */
        SPROUT_SEC_MANIFEST = 4, /* the image manifest (JSON), written by the caller */
};

struct sprout_vm_section {
        uint32_t tag;
        const void *data;
        uint64_t len;
};

#define SPROUT_VM_MAX_SECTIONS 8

struct sprout_vm_capture {
        struct sprout_vm_section sections[SPROUT_VM_MAX_SECTIONS];
        unsigned nsections;
        const void *ram; /* the VM's RAM: valid while the VM lives */
        uint64_t ram_size;
        void *owned[SPROUT_VM_MAX_SECTIONS];
};

/*
 * Captures the state of a VM that sprout_vm_run just returned from (typically at READY): completes
 * the half-done doorbell I/O first, so a restored clone resumes right after the guest's ring.
 */
int sprout_vm_capture(struct sprout_vm *vm, struct sprout_vm_capture *cap, struct sprout_err *err);
void sprout_vm_capture_free(struct sprout_vm_capture *cap);

/*
 * Refuses, with the reason, a snapshot this host cannot run: another host kind, or a CPU feature
 * the recorded CPUID has and this host's profile lacks. sections as in sprout_vm_restore.
 */
int sprout_vm_check_compat(struct sprout_kvm *kvm, uint32_t recorded_host_kind,
                           const struct sprout_vm_section *sections, unsigned nsections,
                           struct sprout_err *err);

struct sprout_restore_config {
        int base_fd; /* the base RAM (sealed memfd); mapped MAP_PRIVATE, never written */
        uint64_t ram_size;
        const struct sprout_vm_section *sections; /* untrusted: every record is checked */
        unsigned nsections;
        int console_fd; /* -1 for none */
        size_t console_log_size;
};

/* Creates a clone: a new VM on a copy-on-write view of the base, with the saved state restored.
 * Equivalent to sprout_vm_shell_create followed by sprout_vm_restore_state. */
int sprout_vm_restore(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                      struct sprout_vm **out, struct sprout_err *err);

/* The half of a restore that does not depend on the saved state (VM fd, memslots over the base,
 * irqchip, PIT, vCPU): what a pool prepares ahead of time, off the clone's critical path. Only
 * base_fd, ram_size, console_fd and console_log_size of cfg are used. */
int sprout_vm_shell_create(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                           struct sprout_vm **out, struct sprout_err *err);

/* The other half: loads the saved state into a shell that has never run. On failure the shell must
 * be destroyed. */
int sprout_vm_restore_state(struct sprout_vm *vm, const struct sprout_restore_config *cfg,
                            struct sprout_err *err);

/* Gives a clone its own identity (UUID, fresh entropy, the current wall clock) through the mailbox;
 * the guest library applies it when the guest next runs, before it reads a request. */
int sprout_vm_set_identity(struct sprout_vm *vm, const uint8_t uuid[16], struct sprout_err *err);

/*
 * Puts a request in the mailbox and runs the guest until it rings DONE (ev->kind SPROUT_EV_DONE,
 * resp and resp_len the response, valid until the next run) or another event or the timeout.
 */
int sprout_vm_invoke(struct sprout_vm *vm, const void *req, size_t req_len, int64_t timeout_ms,
                     const void **resp, size_t *resp_len, struct sprout_vm_event *ev,
                     struct sprout_err *err);

/*
 * Sends a warm-up (SPROUT_MBF_WARMUP, ABI 1.3): the guest library applies a pending identity, runs
 * the runtime's warm-up hook and answers DONE with no response. Runs the guest until then (returns
 * 0 with ev->kind SPROUT_EV_DONE) or another event or the timeout (0, ev says which, as for
 * sprout_vm_invoke). -ENOTSUP, without running the guest, when its READY reported an ABI before
 * 1.3 or the snapshot did not record one; -EPROTO when the guest answered with a response.
 */
int sprout_vm_warmup(struct sprout_vm *vm, int64_t timeout_ms, struct sprout_vm_event *ev,
                     struct sprout_err *err);

/* Whether sprout_vm_warmup may be sent: the guest's READY reported ABI 1.3 or later. */
bool sprout_vm_can_warmup(const struct sprout_vm *vm);

/* The ABI version the guest's READY reported (recorded in snapshots since ABI 1.3; 0: unknown). */
uint32_t sprout_vm_guest_abi(const struct sprout_vm *vm);

/* The cheapest VM KVM can run on this host, timed step by step: the floor under any restore. */
struct sprout_floor {
        double create_vm_us, memslot_us, vcpu_us, run_us, total_us, teardown_us;
};
int sprout_floor_measure(struct sprout_kvm *kvm, struct sprout_floor *out, struct sprout_err *err);

/* Bytes of guest RAM this VM has made private (copied on write or newly touched). */
uint64_t sprout_vm_private_bytes(struct sprout_vm *vm);

#endif
