/* The VMM core: one KVM handle per process, microVMs that boot a Linux vmlinux to a sprout guest agent.
 * Every function returns 0 or a negative errno and fills a struct sprout_err with what went wrong. */
#ifndef SPROUT_VMM_H
#define SPROUT_VMM_H

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
	uint64_t mem_size;        /* bytes of guest RAM, a multiple of 2 MiB, <= SPROUT_RAM_MAX */
	unsigned vcpus;           /* only 1 for now */
	const char *kernel_path;  /* uncompressed x86-64 vmlinux ELF */
	const char *initrd_path;  /* may be NULL */
	const char *cmdline;      /* appended to sprout's defaults; may be NULL */
	int console_fd;           /* guest serial output is echoed here too; -1 for none */
	size_t console_log_size;  /* bytes of serial output kept per VM; 0 for the default */
};

enum sprout_vm_event_kind {
	SPROUT_EV_READY = 1,   /* the runtime rang READY; abi_version says which ABI */
	SPROUT_EV_DONE,        /* a response is in the mailbox */
	SPROUT_EV_PANIC,       /* the guest agent gave up; arg is a sprout_panic code, detail why */
	SPROUT_EV_STOPPED,     /* the guest powered off, rebooted or triple-faulted; detail says which */
	SPROUT_EV_TIMEOUT,     /* the deadline passed first */
};

struct sprout_vm_event {
	enum sprout_vm_event_kind kind;
	uint32_t arg;
	uint32_t abi_version;
	char detail[512];
};

struct sprout_vm;

/* Creates the VM, loads kernel and initrd and leaves the vCPU at the kernel's 64-bit entry point. */
int sprout_vm_create(struct sprout_kvm *kvm, const struct sprout_vm_config *cfg,
		     struct sprout_vm **out, struct sprout_err *err);

/*
 * Runs the guest on the calling thread until it raises an event or timeout_ms passes (<0: no limit).
 * Guest faults the VMM cannot handle (an emulation failure, an entry failure) return an error with the
 * guest RIP and instruction bytes in err; the VM is then unusable except for destroy.
 */
int sprout_vm_run(struct sprout_vm *vm, int64_t timeout_ms, struct sprout_vm_event *ev,
		  struct sprout_err *err);

/* Copies the last `lines` lines of the console log (NUL-terminated) into buf; returns the length. */
size_t sprout_vm_console_tail(struct sprout_vm *vm, char *buf, size_t len, unsigned lines);

/* The kernel command line the guest was given (sprout defaults + host profile + config). */
const char *sprout_vm_cmdline(const struct sprout_vm *vm);

void sprout_vm_destroy(struct sprout_vm *vm);

#endif
