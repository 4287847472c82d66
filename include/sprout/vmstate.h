/* A VM's state as snapshot sections: capture at READY, the compatibility check, and the restore of
 * a clone from a base (a shell prepared ahead, then the saved state). Record layouts:
 * docs/snapshot-format.md, "VM state". */
#ifndef SPROUT_VMSTATE_H
#define SPROUT_VMSTATE_H

#include <stdint.h>

#include "sprout/err.h"
#include "sprout/vmm.h"

/* Section tags of the VM state inside a snapshot; the snapshot file treats them as opaque. */
enum sprout_section_tag {
        SPROUT_SEC_VCPU = 1,        /* one per vCPU, in vCPU order */
        SPROUT_SEC_VM = 2,          /* irqchip, PIT, kvmclock */
        SPROUT_SEC_DEVICES = 3,     /* UART and sprout device */
        SPROUT_SEC_MANIFEST = 4,    /* the image manifest (JSON), written by the caller */
        SPROUT_SEC_WORKING_SET = 5, /* optional: pages a warmed-up clone read and wrote */
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

/*
 * A clone's working set (docs/snapshot-format.md, "Working set"): the guest pages a clone of the
 * snapshot read, and those it wrote, during a warm-up at prewarm time, as runs of pages. A new or
 * recycled clone gets them before it runs: the read set mapped from the base
 * (MADV_POPULATE_READ), the write set copied (MADV_POPULATE_WRITE), and, where KVM offers
 * KVM_PRE_FAULT_MEMORY, both in its guest page tables too.
 */
struct sprout_ws_run {
        uint32_t first;  /* guest page number */
        uint32_t npages; /* >= 1 */
};

struct sprout_working_set {
        struct sprout_ws_run *runs; /* nread read runs, then nwrite write runs; owned */
        uint32_t nread, nwrite;
        uint64_t read_pages, write_pages;
};

/* Records the working set of a VM restored from a base that has run since: every page of its RAM
 * mapping present in the host's page tables, written (a private copy) or only read (the base's
 * page). *data (malloc'd, the caller frees it) and *len are the section's bytes. */
int sprout_vm_record_working_set(struct sprout_vm *vm, void **data, uint64_t *len,
                                 struct sprout_working_set *summary, struct sprout_err *err);

/* Parses and checks a working-set section (untrusted, from a file) against the snapshot's RAM
 * size: version, sizes, runs inside RAM, in order and not overlapping. ws->runs is the caller's to
 * free with sprout_working_set_free. */
int sprout_working_set_parse(const void *data, uint64_t len, uint64_t ram_size,
                             struct sprout_working_set *ws, struct sprout_err *err);
void sprout_working_set_free(struct sprout_working_set *ws);

struct sprout_restore_config {
        int base_fd; /* the base RAM (sealed memfd); mapped MAP_PRIVATE, never written */
        /* The working set to pre-fault after a restore or a recycle; NULL for none. It must
         * outlive the VM: it is brought in before the VM's next run, not copied. */
        const struct sprout_working_set *ws;
        /* Into the shell as it is made (and the VM as it is recycled) instead: off the first
         * request's path, but every clone made to wait then holds the copies of the write set. */
        bool ws_in_shell;
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

/* Recycles a clone in place: puts a VM restored from cfg's base, which may have run since, back to
 * what sprout_vm_restore gives (its written pages dropped, the mailbox wiped, host-side device
 * state, logs and flags cleared, the saved state loaded again) with no new VM. A VM that broke
 * (vm->broken) is refused with -EIO; on any failure the VM must be destroyed. The caller gives it
 * a new identity before it runs. */
int sprout_vm_reset(struct sprout_vm *vm, const struct sprout_restore_config *cfg,
                    struct sprout_err *err);

#endif
