/* VM-wide KVM state in a snapshot: the irqchip (PIC master, PIC slave, IOAPIC), PIT2 and kvmclock,
 * and the guest facts learnt at READY (clock skew, ABI). Records: docs/snapshot-format.md. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "sprout/clock.h"
#include "state_blob.h"
#include "vmm_internal.h"

enum vm_rec {
        MREC_PIC_MASTER = 1,
        MREC_PIC_SLAVE,
        MREC_IOAPIC,
        MREC_PIT2,
        MREC_CLOCK,
        MREC_REALTIME_NS,    /* host CLOCK_REALTIME when the clock was read */
        MREC_CLOCK_SKEW,     /* guest wall clock minus the host's at READY, ns (int64) */
        MREC_GUEST_ABI,      /* the ABI the guest's READY reported (uint32); optional: a snapshot
                              * without it is from a VMM that did not record it, so 0 (unknown) */
        MREC_GUEST_FEATURES, /* SPROUT_GF_* of that READY (uint32); optional likewise */
};
#define MREC_LAST          MREC_GUEST_FEATURES
#define MREC_REQUIRED_LAST MREC_CLOCK_SKEW

int vm_state_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err)
{
        static const struct {
                uint32_t chip;
                enum vm_rec rec;
        } chips[] = {{KVM_IRQCHIP_PIC_MASTER, MREC_PIC_MASTER},
                     {KVM_IRQCHIP_PIC_SLAVE, MREC_PIC_SLAVE},
                     {KVM_IRQCHIP_IOAPIC, MREC_IOAPIC}};
        for (size_t i = 0; i < 3; i++) {
                struct kvm_irqchip c = {.chip_id = chips[i].chip};
                if (ioctl(vm->fd, KVM_GET_IRQCHIP, &c) < 0)
                        return sprout_err_errno(err, -errno, "saving VM state: KVM_GET_IRQCHIP %u",
                                                chips[i].chip);
                blob_put(b, chips[i].rec, &c, sizeof(c));
        }
        struct kvm_pit_state2 pit;
        if (ioctl(vm->fd, KVM_GET_PIT2, &pit) < 0)
                return sprout_err_errno(err, -errno, "saving VM state: KVM_GET_PIT2");
        blob_put(b, MREC_PIT2, &pit, sizeof(pit));
        struct kvm_clock_data clk = {0};
        if (ioctl(vm->fd, KVM_GET_CLOCK, &clk) < 0)
                return sprout_err_errno(err, -errno, "saving VM state: KVM_GET_CLOCK");
        uint64_t now = (uint64_t)sprout_real_ns();
        blob_put(b, MREC_CLOCK, &clk, sizeof(clk));
        blob_put(b, MREC_REALTIME_NS, &now, sizeof(now));
        blob_put(b, MREC_CLOCK_SKEW, &vm->clock_skew_ns, sizeof(vm->clock_skew_ns));
        blob_put(b, MREC_GUEST_ABI, &vm->guest_abi, sizeof(vm->guest_abi));
        blob_put(b, MREC_GUEST_FEATURES, &vm->guest_features, sizeof(vm->guest_features));
        return b->error ? sprout_err_set(err, b->error, "saving VM state: out of memory") : 0;
}

/* The records of a VM section, checked (state_check.c): pointers into the section, and aligned
 * copies of what goes to KVM. */
struct vm_recs {
        const void *rec[MREC_LAST + 1];
        struct kvm_pit_state2 pit;
        struct kvm_irqchip chip[3];
};

static int parse_vm(const void *data, size_t len, struct vm_recs *v, struct sprout_err *err)
{
        struct blob_reader rd = {.data = data, .len = len};
        const void **rec = v->rec;
        memset(v, 0, sizeof(*v));
        static const size_t want[MREC_LAST + 1] = {
            [MREC_PIC_MASTER] = sizeof(struct kvm_irqchip),
            [MREC_PIC_SLAVE] = sizeof(struct kvm_irqchip),
            [MREC_IOAPIC] = sizeof(struct kvm_irqchip),
            [MREC_PIT2] = sizeof(struct kvm_pit_state2),
            [MREC_CLOCK] = sizeof(struct kvm_clock_data),
            [MREC_REALTIME_NS] = sizeof(uint64_t),
            [MREC_CLOCK_SKEW] = sizeof(int64_t),
            [MREC_GUEST_ABI] = sizeof(uint32_t),
            [MREC_GUEST_FEATURES] = sizeof(uint32_t),
        };
        uint32_t type;
        const void *p;
        size_t n;
        int r;

        while ((r = blob_next(&rd, &type, &p, &n)) == 1) {
                if (type == 0 || type > MREC_LAST || rec[type] || n != want[type])
                        return sprout_err_set(err, -EINVAL, "VM state: bad record %u (%zu bytes)",
                                              type, n);
                rec[type] = p;
        }
        if (r < 0)
                return sprout_err_set(err, -EINVAL, "VM state: a record runs past the section");
        for (unsigned t = 1; t <= MREC_REQUIRED_LAST; t++)
                if (!rec[t])
                        return sprout_err_set(err, -EINVAL, "VM state: record %u is missing", t);

        /* What goes to KVM, copied aligned and checked; nothing of the file reaches an ioctl
         * unchecked. */
        memcpy(&v->pit, rec[MREC_PIT2], sizeof(v->pit));
        r = state_check_pit(&v->pit, err);
        for (unsigned t = MREC_PIC_MASTER; t <= MREC_IOAPIC && r == 0; t++) {
                struct kvm_irqchip *c = &v->chip[t - MREC_PIC_MASTER];
                memcpy(c, rec[t], sizeof(*c));
                if (c->chip_id != t - MREC_PIC_MASTER)
                        return sprout_err_set(err, -EINVAL,
                                              "VM state: irqchip record %u names chip %u", t,
                                              c->chip_id);
                r = t == MREC_IOAPIC ? state_check_ioapic(c, err) : state_check_pic(c, err);
        }
        return r;
}

int vm_state_check(const void *data, size_t len, struct sprout_err *err)
{
        struct vm_recs v;
        return parse_vm(data, len, &v, err);
}

int vm_state_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err)
{
        struct vm_recs v;
        const void *const *rec = v.rec;
        int r = parse_vm(data, len, &v, err);
        if (r < 0)
                return r;
        /* A clone's PIT never ticks: Linux runs on the LAPIC timer and kvm-clock once booted, and a
         * channel 0 left (or forged) periodic would make KVM fire a host hrtimer for every idle
         * clone, up to kvm.min_timer_period_us apart. Clones have no PIT at all (vm_new); the
         * record is still checked above. Were one restored into a VM that has a PIT, HPET_LEGACY
         * makes KVM arm no channel-0 timer, now or when the guest reprograms it. */
        v.pit.flags |= KVM_PIT_FLAGS_HPET_LEGACY;
        if (vm->has_pit && ioctl(vm->fd, KVM_SET_PIT2, &v.pit) < 0)
                return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_PIT2");
        for (unsigned i = 0; i < 3; i++)
                if (ioctl(vm->fd, KVM_SET_IRQCHIP, &v.chip[i]) < 0)
                        return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_IRQCHIP");
        /* Guest time moves on by the host time that passed since the snapshot, as after a suspend:
         * the wall clock is right at once, with no guest work. */
        struct kvm_clock_data clk;
        uint64_t then;
        memcpy(&clk, rec[MREC_CLOCK], sizeof(clk));
        memcpy(&then, rec[MREC_REALTIME_NS], sizeof(then));
        int64_t skew;
        memcpy(&skew, rec[MREC_CLOCK_SKEW], sizeof(skew));
        /* A guest clock measured off by more than a minute is not a skew we trust to fix. */
        if (skew > 60000000000LL || skew < -60000000000LL)
                skew = 0;
        uint64_t now = (uint64_t)sprout_real_ns();
        uint64_t clock = clk.clock + (now > then ? now - then : 0);
        if (skew < 0 || (uint64_t)skew < clock)
                clock -= (uint64_t)skew; /* and the guest's own error, measured at READY */
        struct kvm_clock_data set = {.clock = clock};
        if (ioctl(vm->fd, KVM_SET_CLOCK, &set) < 0)
                return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_CLOCK");
        vm->guest_abi = 0;
        if (rec[MREC_GUEST_ABI])
                memcpy(&vm->guest_abi, rec[MREC_GUEST_ABI], sizeof(vm->guest_abi));
        vm->guest_features = 0;
        if (rec[MREC_GUEST_FEATURES])
                memcpy(&vm->guest_features, rec[MREC_GUEST_FEATURES], sizeof(vm->guest_features));
        return 0;
}
