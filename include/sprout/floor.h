/* The physical floor under any restore, for benchmarks to print beside sprout's own numbers. */
#ifndef SPROUT_FLOOR_H
#define SPROUT_FLOOR_H

#include "sprout/err.h"
#include "sprout/vmm.h"

/* The cheapest VM KVM can run on this host, timed step by step: the floor under any restore. */
struct sprout_floor {
        double create_vm_us, memslot_us, vcpu_us, run_us, total_us, teardown_us;
};
int sprout_floor_measure(struct sprout_kvm *kvm, struct sprout_floor *out, struct sprout_err *err);

#endif
