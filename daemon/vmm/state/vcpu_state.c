/* Saving and restoring one vCPU's architectural state. The order of both is deliberate (see
 * docs/architecture.md): mp_state is read first because reading it makes KVM accept pending APIC
 * events; on restore CPUID comes first, sregs precede the LAPIC, the LAPIC precedes the MSRs, and
 * vcpu events come last. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "state_blob.h"
#include "vmm_internal.h"

/* Reads the MSRs KVM lists, skipping any this host refuses to read (KVM stops at the first). */
static int save_msrs(struct sprout_vm *vm, struct blob *b, struct sprout_err *err)
{
        const struct sprout_kvm *kvm = vm->kvm;
        size_t sz = sizeof(struct kvm_msrs) + kvm->nmsrs * sizeof(struct kvm_msr_entry);
        struct kvm_msrs *m = calloc(1, sz);
        if (!m)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        uint32_t n = 0;
        for (uint32_t i = 0; i < kvm->nmsrs; i++) {
                struct {
                        struct kvm_msrs h;
                        struct kvm_msr_entry e;
                } one = {.h.nmsrs = 1, .e.index = kvm->msr_index[i]};
                if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1)
                        m->entries[n++] = one.e;
        }
        m->nmsrs = n;
        blob_put(b, VREC_MSRS, m, sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry));
        free(m);
        return 0;
}

#define GET_REC(ioc, type, rec, what)                                                              \
        do {                                                                                       \
                type v_;                                                                           \
                memset(&v_, 0, sizeof(v_));                                                        \
                if (ioctl(vm->vcpu_fd, ioc, &v_) < 0)                                              \
                        return sprout_err_errno(err, -errno, "saving vCPU state: " what);          \
                blob_put(b, rec, &v_, sizeof(v_));                                                 \
        } while (0)

int vcpu_save(struct sprout_vm *vm, struct blob *b, struct sprout_err *err)
{
        const struct sprout_kvm *kvm = vm->kvm;
        int r;

        GET_REC(KVM_GET_MP_STATE, struct kvm_mp_state, VREC_MP_STATE, "KVM_GET_MP_STATE");
        GET_REC(KVM_GET_REGS, struct kvm_regs, VREC_REGS, "KVM_GET_REGS");
        GET_REC(KVM_GET_SREGS, struct kvm_sregs, VREC_SREGS, "KVM_GET_SREGS");
        if (kvm->xsave_size) {
                void *x = blob_reserve(b, VREC_XSAVE, kvm->xsave_size);
                if (x &&
                    ioctl(vm->vcpu_fd, kvm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, x) < 0)
                        return sprout_err_errno(err, -errno, "saving vCPU state: KVM_GET_XSAVE");
        } else {
                GET_REC(KVM_GET_FPU, struct kvm_fpu, VREC_FPU, "KVM_GET_FPU");
        }
        if (kvm->has_xcrs)
                GET_REC(KVM_GET_XCRS, struct kvm_xcrs, VREC_XCRS, "KVM_GET_XCRS");
        GET_REC(KVM_GET_DEBUGREGS, struct kvm_debugregs, VREC_DEBUGREGS, "KVM_GET_DEBUGREGS");
        GET_REC(KVM_GET_LAPIC, struct kvm_lapic_state, VREC_LAPIC, "KVM_GET_LAPIC");
        r = save_msrs(vm, b, err);
        if (r < 0)
                return r;
        GET_REC(KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events, VREC_EVENTS, "KVM_GET_VCPU_EVENTS");

        struct kvm_cpuid2 *c = vm->cpuid;
        blob_put(b, VREC_CPUID, c, sizeof(*c) + c->nent * sizeof(c->entries[0]));
        int khz = ioctl(vm->vcpu_fd, KVM_GET_TSC_KHZ, 0);
        if (khz > 0) {
                uint32_t k = (uint32_t)khz;
                blob_put(b, VREC_TSC_KHZ, &k, sizeof(k));
        }
        if (b->error)
                return sprout_err_set(err, b->error, "saving vCPU state: out of memory");
        return 0;
}

/* The records of one saved vCPU, checked for size, pointing into the section. */
struct vcpu_recs {
        const void *rec[VREC_TSC_KHZ + 1];
        size_t len[VREC_TSC_KHZ + 1];
};

static int parse_vcpu(const void *data, size_t len, const struct sprout_kvm *kvm,
                      struct vcpu_recs *out, struct sprout_err *err)
{
        struct blob_reader rd = {.data = data, .len = len};
        uint32_t type;
        const void *p;
        size_t n;
        int r;

        memset(out, 0, sizeof(*out));
        while ((r = blob_next(&rd, &type, &p, &n)) == 1) {
                if (type == 0 || type > VREC_TSC_KHZ)
                        return sprout_err_set(err, -EINVAL, "vCPU state: unknown record type %u",
                                              type);
                if (out->rec[type])
                        return sprout_err_set(err, -EINVAL, "vCPU state: record %u appears twice",
                                              type);
                out->rec[type] = p;
                out->len[type] = n;
        }
        if (r < 0)
                return sprout_err_set(err, -EINVAL, "vCPU state: a record runs past the section");

        static const struct {
                enum vcpu_rec type;
                size_t size;
                const char *name;
        } fixed[] = {
            {VREC_MP_STATE, sizeof(struct kvm_mp_state), "mp_state"},
            {VREC_REGS, sizeof(struct kvm_regs), "regs"},
            {VREC_SREGS, sizeof(struct kvm_sregs), "sregs"},
            {VREC_DEBUGREGS, sizeof(struct kvm_debugregs), "debugregs"},
            {VREC_LAPIC, sizeof(struct kvm_lapic_state), "lapic"},
            {VREC_EVENTS, sizeof(struct kvm_vcpu_events), "vcpu events"},
        };
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
                if (!out->rec[fixed[i].type])
                        return sprout_err_set(err, -EINVAL, "vCPU state: %s is missing",
                                              fixed[i].name);
                if (out->len[fixed[i].type] != fixed[i].size)
                        return sprout_err_set(
                            err, -EINVAL, "vCPU state: %s is %zu bytes, expected %zu",
                            fixed[i].name, out->len[fixed[i].type], fixed[i].size);
        }
        if (out->rec[VREC_FPU] && out->len[VREC_FPU] != sizeof(struct kvm_fpu))
                return sprout_err_set(err, -EINVAL, "vCPU state: fpu has the wrong size");
        if (out->rec[VREC_XCRS] && out->len[VREC_XCRS] != sizeof(struct kvm_xcrs))
                return sprout_err_set(err, -EINVAL, "vCPU state: xcrs has the wrong size");
        if (out->rec[VREC_XSAVE] && out->len[VREC_XSAVE] > kvm->xsave_size)
                return sprout_err_set(err, -EINVAL,
                                      "vCPU state: xsave area is %zu bytes, this host's is %u: the "
                                      "snapshot was taken on a CPU with more extended state",
                                      out->len[VREC_XSAVE], kvm->xsave_size);
        if (!out->rec[VREC_XSAVE] && !out->rec[VREC_FPU])
                return sprout_err_set(err, -EINVAL, "vCPU state: neither xsave nor fpu state");
        if (out->rec[VREC_TSC_KHZ] && out->len[VREC_TSC_KHZ] != sizeof(uint32_t))
                return sprout_err_set(err, -EINVAL, "vCPU state: tsc_khz has the wrong size");

        struct kvm_msrs mh;
        if (!out->rec[VREC_MSRS] || out->len[VREC_MSRS] < sizeof(mh))
                return sprout_err_set(err, -EINVAL, "vCPU state: msrs are missing");
        memcpy(&mh, out->rec[VREC_MSRS], sizeof(mh));
        if (mh.nmsrs > SPROUT_MAX_MSRS ||
            out->len[VREC_MSRS] != sizeof(mh) + mh.nmsrs * sizeof(struct kvm_msr_entry))
                return sprout_err_set(err, -EINVAL,
                                      "vCPU state: msr count %u does not match its size", mh.nmsrs);

        struct kvm_cpuid2 ch;
        if (!out->rec[VREC_CPUID] || out->len[VREC_CPUID] < sizeof(ch))
                return sprout_err_set(err, -EINVAL, "vCPU state: cpuid is missing");
        memcpy(&ch, out->rec[VREC_CPUID], sizeof(ch));
        if (ch.nent == 0 || ch.nent > SPROUT_MAX_CPUID_ENTRIES ||
            out->len[VREC_CPUID] != sizeof(ch) + ch.nent * sizeof(struct kvm_cpuid_entry2))
                return sprout_err_set(err, -EINVAL,
                                      "vCPU state: cpuid entry count %u does not match its size",
                                      ch.nent);
        return 0;
}

int vcpu_saved_cpuid(const void *data, size_t len, const struct sprout_kvm *kvm,
                     struct kvm_cpuid2 **out, struct sprout_err *err)
{
        struct vcpu_recs rs;
        int r = parse_vcpu(data, len, kvm, &rs, err);
        if (r < 0)
                return r;
        struct kvm_cpuid2 *c = malloc(rs.len[VREC_CPUID]);
        if (!c)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        memcpy(c, rs.rec[VREC_CPUID], rs.len[VREC_CPUID]);
        *out = c;
        return 0;
}

/* Copies a record into an aligned, right-sized buffer (records may sit unaligned in a section). */
static void *rec_copy(const struct vcpu_recs *rs, enum vcpu_rec t, size_t alloc)
{
        void *p = calloc(1, alloc > rs->len[t] ? alloc : rs->len[t]);
        if (p)
                memcpy(p, rs->rec[t], rs->len[t]);
        return p;
}

#define SET_REC(ioc, t, what)                                                                      \
        do {                                                                                       \
                void *v_ = rec_copy(&rs, t, 0);                                                    \
                if (!v_)                                                                           \
                        return sprout_err_set(err, -ENOMEM, "out of memory");                      \
                int rr_ = ioctl(vm->vcpu_fd, ioc, v_);                                             \
                int e_ = errno;                                                                    \
                free(v_);                                                                          \
                if (rr_ < 0)                                                                       \
                        return sprout_err_errno(err, -e_, "restoring vCPU state: " what);          \
        } while (0)

/* Every record of a saved vCPU held to state_check.c's rules, before the first ioctl touches the
 * vCPU: a forged record is refused with its reason and the vCPU is left as it was created. */
static int check_vcpu(const struct sprout_kvm *kvm, const struct vcpu_recs *rs,
                      struct sprout_err *err)
{
        struct kvm_cpuid2 *cpuid = rec_copy(rs, VREC_CPUID, 0), *offer = NULL;
        struct kvm_msrs *msrs = rec_copy(rs, VREC_MSRS, 0);
        struct kvm_lapic_state *lapic = rec_copy(rs, VREC_LAPIC, 0);
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_vcpu_events ev;
        struct kvm_mp_state mp;
        int r;
        if (!cpuid || !msrs || !lapic) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
                goto out;
        }
        memcpy(&regs, rs->rec[VREC_REGS], sizeof(regs));
        memcpy(&sregs, rs->rec[VREC_SREGS], sizeof(sregs));
        memcpy(&ev, rs->rec[VREC_EVENTS], sizeof(ev));
        memcpy(&mp, rs->rec[VREC_MP_STATE], sizeof(mp));
        r = cpu_profile_cpuid(kvm, 0, &offer, err);
        if (r == 0)
                r = state_check_cpuid(cpuid, offer, err);
        if (r == 0)
                r = state_check_msrs(msrs, rs->len[VREC_MSRS], kvm->msr_index, kvm->nmsrs, err);
        if (r == 0)
                r = state_check_sregs(&sregs, cpuid, cpu_profile_host_cr4(kvm), err);
        if (r == 0)
                r = state_check_regs(&regs, &sregs, err);
        if (r == 0)
                r = state_check_lapic(lapic, 0, sregs.apic_base, err);
        if (r == 0)
                r = state_check_events(&ev, err);
        if (r == 0)
                r = state_check_mp_state(&mp, err);
out:
        free(cpuid);
        free(offer);
        free(msrs);
        free(lapic);
        return r;
}

int vcpu_state_check(const struct sprout_kvm *kvm, const void *data, size_t len,
                     struct sprout_err *err)
{
        struct vcpu_recs rs;
        int r = parse_vcpu(data, len, kvm, &rs, err);
        return r < 0 ? r : check_vcpu(kvm, &rs, err);
}

/* After KVM_SET_LAPIC, and the TSC before its deadline. KVM drops a write of IA32_TSC_DEADLINE,
 * without an error, unless the LAPIC timer is already in TSC-deadline mode, and a new vCPU's is
 * not until KVM_SET_LAPIC: written first, a fresh clone's armed timer was silently disarmed (its
 * guest then sleeps until some other interrupt comes), where a recycled vCPU, still in that mode,
 * kept it (recycle.leak found the two differ on an Intel host; AMD has no TSC-deadline timer). KVM
 * also arms the deadline against the guest TSC, so that is set first. */
static int restore_msrs(struct sprout_vm *vm, const struct vcpu_recs *rs, struct sprout_err *err)
{
        struct kvm_msrs *m = rec_copy(rs, VREC_MSRS, 0);
        if (!m)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i + 1 < m->nmsrs; i++) {
                if (m->entries[i].index != MSR_IA32_TSC_DEADLINE)
                        continue;
                struct kvm_msr_entry d = m->entries[i];
                memmove(&m->entries[i], &m->entries[i + 1],
                        (m->nmsrs - i - 1) * sizeof(m->entries[0]));
                m->entries[m->nmsrs - 1] = d;
                break;
        }
        int r = ioctl(vm->vcpu_fd, KVM_SET_MSRS, m);
        if (r < 0 || (uint32_t)r != m->nmsrs) {
                uint32_t bad = (r >= 0 && (uint32_t)r < m->nmsrs) ? m->entries[r].index : 0;
                free(m);
                return sprout_err_set(err, -EINVAL, "restoring vCPU state: KVM refused MSR 0x%x",
                                      bad);
        }
        free(m);
        return 0;
}

int vcpu_restore(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err)
{
        const struct sprout_kvm *kvm = vm->kvm;
        struct vcpu_recs rs;
        int r = parse_vcpu(data, len, kvm, &rs, err);
        if (r < 0)
                return r;
        r = check_vcpu(kvm, &rs, err);
        if (r < 0)
                return r;

        if (rs.rec[VREC_TSC_KHZ]) {
                uint32_t khz;
                memcpy(&khz, rs.rec[VREC_TSC_KHZ], sizeof(khz));
                int cur = ioctl(vm->vcpu_fd, KVM_GET_TSC_KHZ, 0);
                /* Without TSC scaling a different frequency cannot be emulated: the guest's
                 * calibrated clock would run fast or slow. */
                if (cur > 0 && (uint32_t)cur != khz && ioctl(vm->vcpu_fd, KVM_SET_TSC_KHZ, khz) < 0)
                        return sprout_err_set(
                            err, -ENOTSUP,
                            "the snapshot's TSC runs at %u kHz, this host's at %d kHz, "
                            "and KVM cannot scale it",
                            khz, cur);
        }
        /* A recycled vCPU (recycle.c) has run, and KVM refuses a different CPUID after KVM_RUN:
         * it already holds this one, so it is not set again. */
        const struct kvm_cpuid2 *had = vm->cpuid;
        bool same_cpuid =
            had &&
            rs.len[VREC_CPUID] == sizeof(*had) + (size_t)had->nent * sizeof(had->entries[0]) &&
            !memcmp(had, rs.rec[VREC_CPUID], rs.len[VREC_CPUID]);
        if (!same_cpuid) {
                SET_REC(KVM_SET_CPUID2, VREC_CPUID, "KVM_SET_CPUID2");
                free(vm->cpuid);
                vm->cpuid = rec_copy(&rs, VREC_CPUID, 0);
                if (!vm->cpuid)
                        return sprout_err_set(err, -ENOMEM, "out of memory");
        }

        SET_REC(KVM_SET_REGS, VREC_REGS, "KVM_SET_REGS");
        struct kvm_sregs *sr = rec_copy(&rs, VREC_SREGS, 0);
        if (!sr)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        /* SVM neither checks nor tracks TR's busy bit (KVM ORs it in when it reads TR), so the
         * available type is what the guest's own LTR left there; see tr_needs_available_tss. */
        if (kvm->tr_needs_available_tss)
                sr->tr.type &= ~2u;
        r = ioctl(vm->vcpu_fd, KVM_SET_SREGS, sr);
        int sr_errno = errno;
        free(sr);
        if (r < 0)
                return sprout_err_errno(err, -sr_errno, "restoring vCPU state: KVM_SET_SREGS");
        if (rs.rec[VREC_XSAVE]) {
                void *x = rec_copy(&rs, VREC_XSAVE, kvm->xsave_size);
                if (!x)
                        return sprout_err_set(err, -ENOMEM, "out of memory");
                r = ioctl(vm->vcpu_fd, KVM_SET_XSAVE, x);
                int e = errno;
                free(x);
                if (r < 0)
                        return sprout_err_errno(err, -e, "restoring vCPU state: KVM_SET_XSAVE");
        } else {
                SET_REC(KVM_SET_FPU, VREC_FPU, "KVM_SET_FPU");
        }
        if (rs.rec[VREC_XCRS])
                SET_REC(KVM_SET_XCRS, VREC_XCRS, "KVM_SET_XCRS");
        SET_REC(KVM_SET_DEBUGREGS, VREC_DEBUGREGS, "KVM_SET_DEBUGREGS");
        SET_REC(KVM_SET_LAPIC, VREC_LAPIC, "KVM_SET_LAPIC");
        r = restore_msrs(vm, &rs, err);
        if (r < 0)
                return r;
        SET_REC(KVM_SET_MP_STATE, VREC_MP_STATE, "KVM_SET_MP_STATE");
        SET_REC(KVM_SET_VCPU_EVENTS, VREC_EVENTS, "KVM_SET_VCPU_EVENTS");
        return 0;
}
