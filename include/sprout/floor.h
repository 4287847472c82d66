/* The physical floor under any restore, for benchmarks to print beside sprout's own numbers. */
#ifndef SPROUT_FLOOR_H
#define SPROUT_FLOOR_H

#include <stddef.h>

#include "sprout/err.h"
#include "sprout/vmm.h"

/* The cheapest VM KVM can run on this host, timed step by step: the floor under any restore. */
struct sprout_floor {
        double create_vm_us, memslot_us, vcpu_us, run_us, total_us, teardown_us;
        /* Threads KVM started for that VM, counted while it ran: kernel threads (Linux 6.1:
         * the NX huge page recovery thread) or tasks of this process (later kernels). Each is
         * a kernel stack and a task for every clone. Their names, without the pid, comma-separated.
         */
        unsigned kvm_threads;
        char kvm_thread_names[96];
};
int sprout_floor_measure(struct sprout_kvm *kvm, struct sprout_floor *out, struct sprout_err *err);

/* One line an operator can act on: a setting of this host that costs every VM something sprout
 * cannot avoid from user space (docs/workers.md, "Limits for many clones"). */
struct sprout_host_advice {
        char text[384];
};
/* Up to max lines of advice for this host, given a floor measured on it; returns how many. */
size_t sprout_host_advice(const struct sprout_floor *f, struct sprout_host_advice *out, size_t max);

#endif
