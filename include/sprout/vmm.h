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

/* What a snapshot records about the host that took it, for a restoring host to compare. */
struct sprout_host_facts {
        enum sprout_host_kind kind;
        char cpu_vendor[13]; /* CPUID leaf 0, e.g. "AuthenticAMD" */
        uint32_t family, model, stepping;
        uint32_t kvm_api; /* KVM_API_VERSION */
};
void sprout_kvm_host_facts(const struct sprout_kvm *kvm, struct sprout_host_facts *out);

struct sprout_vm_config {
        uint64_t mem_size;       /* bytes of guest RAM, a multiple of 2 MiB, <= SPROUT_RAM_MAX */
        unsigned vcpus;          /* only 1 for now */
        const char *kernel_path; /* uncompressed x86-64 vmlinux ELF */
        const char *initrd_path; /* may be NULL */
        /* Files already open (sprout_manifest_load opens them; a daemon opens a client's with the
         * client's rights): with have_fds, each fd >= 0 is read instead of opening its path, which
         * then only names it in messages. A zeroed config opens the paths. */
        bool have_fds;
        int kernel_fd, initrd_fd;
        const char *cmdline;     /* appended to sprout's defaults; may be NULL */
        int console_fd;          /* guest serial output is echoed here too; -1 for none */
        size_t console_log_size; /* bytes of serial output kept per VM; 0 for the default */
};

enum sprout_vm_event_kind {
        SPROUT_EV_READY = 1, /* the runtime rang READY; abi_version says which ABI */
        SPROUT_EV_DONE,      /* a response is in the mailbox */
        SPROUT_EV_PANIC,     /* the guest agent gave up; arg is a sprout_panic code, detail why */
        SPROUT_EV_STOPPED,   /* the guest powered off, rebooted or triple-faulted (see detail) */
        SPROUT_EV_TIMEOUT,   /* the deadline passed first */
};

struct sprout_vm_event {
        enum sprout_vm_event_kind kind;
        uint32_t arg;
        uint32_t abi_version;
        char detail[512];
};

struct sprout_vm;

/* Creates the VM, loads kernel and initrd, and leaves the vCPU at the kernel's 64-bit entry. */
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

/* Copies the console log's last `lines` lines, NUL-terminated, into buf; returns the length. */
size_t sprout_vm_console_tail(struct sprout_vm *vm, char *buf, size_t len, unsigned lines);

/* A mark in the console log: what the guest writes from now on is what follows it. */
uint64_t sprout_vm_console_mark(const struct sprout_vm *vm);

/* Copies, as sprout_vm_console_tail, what the log holds after `mark`: the newest of it when it
 * does not fit. *lost says whether any of it is missing (left the ring, or cut to fit). */
size_t sprout_vm_console_since(struct sprout_vm *vm, uint64_t mark, char *buf, size_t len,
                               bool *lost);

/* The kernel command line the guest was given (sprout defaults + host profile + config). */
const char *sprout_vm_cmdline(const struct sprout_vm *vm);

/* Where the guest console is echoed from now on (-1: nowhere), e.g. for a pooled VM handed to a
 * caller. */
void sprout_vm_set_console(struct sprout_vm *vm, int console_fd);

/* The error an event other than the awaited one means, for messages like "<who> did not <awaited>
 * within <timeout_ms> ms": -ETIMEDOUT (timeout), -EPROTO (a panic or an unexpected event),
 * -ESHUTDOWN (the guest stopped). */
int sprout_vm_event_error(const struct sprout_vm_event *ev, const char *who, const char *awaited,
                          int64_t timeout_ms, struct sprout_err *err);

void sprout_vm_destroy(struct sprout_vm *vm);

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
/* The SPROUT_GF_* bits the guest's READY reported (0 before ABI 1.4): e.g. whether its kernel
 * re-seeds itself from the seed page. */
uint32_t sprout_vm_guest_features(const struct sprout_vm *vm);

/* Bytes of guest RAM this VM has made private (copied on write or newly touched). */
uint64_t sprout_vm_private_bytes(struct sprout_vm *vm);

/* KVM's count of the named statistic of the VM's vCPU (KVM_GET_STATS_FD, Linux 5.14; the x86
 * names are in the kernel's arch/x86/kvm/x86.c, e.g. "pf_taken": the page faults KVM had to
 * handle, which a pre-faulted working set saves on TDP hosts (with shadow paging, PVM, it counts
 * the guest's own page faults too); "exits"). 0; -ENOENT when this KVM has no such single-valued
 * statistic; -ENOTSUP when it has no statistics; or another negative errno. */
int sprout_vm_vcpu_stat(struct sprout_vm *vm, const char *name, uint64_t *out);

/* Whether KVM offers to build a clone's guest page tables for its working set before it first
 * runs (KVM_PRE_FAULT_MEMORY: Linux 6.10 on VMX/SVM hosts with TDP; not PVM). It is asked when
 * a shell is made with the working set in it (SPROUT_PREFAULT_SHELL); whether that saved faults
 * shows in sprout_vm_vcpu_stat's "pf_taken". */
bool sprout_kvm_pre_faults(const struct sprout_kvm *kvm);

/* Where guest RAM is mapped in this process, for memory accounting over many VMs at once
 * (sprout_smaps_anon). */
uintptr_t sprout_vm_ram_start(const struct sprout_vm *vm);

#endif
