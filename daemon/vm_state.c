/* Capturing a running VM into snapshot sections and restoring clones from them: VM-wide KVM state
 * (irqchip, PIT, kvmclock), device state, the CPU compatibility check and a clone's new identity.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>

#include "sprout/abi.h"
#include "sprout/log.h"
#include "state_blob.h"
#include "vmm_internal.h"

enum vm_rec {
        MREC_PIC_MASTER = 1,
        MREC_PIC_SLAVE,
        MREC_IOAPIC,
        MREC_PIT2,
        MREC_CLOCK,
        MREC_REALTIME_NS, /* host CLOCK_REALTIME when the clock was read */
        MREC_CLOCK_SKEW,  /* guest wall clock minus the host's at READY, ns (int64) */
        MREC_GUEST_ABI,   /* the ABI the guest's READY reported (uint32); optional: a snapshot
                           * without it is from a VMM that did not record it, so 0 (unknown) */
};
#define MREC_REQUIRED_LAST MREC_CLOCK_SKEW

enum dev_rec {
        DREC_SERIAL = 1,
};

static uint64_t realtime_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int save_vm(struct sprout_vm *vm, struct blob *b, struct sprout_err *err)
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
        uint64_t now = realtime_ns();
        blob_put(b, MREC_CLOCK, &clk, sizeof(clk));
        blob_put(b, MREC_REALTIME_NS, &now, sizeof(now));
        blob_put(b, MREC_CLOCK_SKEW, &vm->clock_skew_ns, sizeof(vm->clock_skew_ns));
        blob_put(b, MREC_GUEST_ABI, &vm->guest_abi, sizeof(vm->guest_abi));
        return b->error ? sprout_err_set(err, b->error, "saving VM state: out of memory") : 0;
}

static int restore_vm(struct sprout_vm *vm, const void *data, size_t len, struct sprout_err *err)
{
        struct blob_reader rd = {.data = data, .len = len};
        const void *rec[MREC_GUEST_ABI + 1] = {0};
        static const size_t want[MREC_GUEST_ABI + 1] = {
            [MREC_PIC_MASTER] = sizeof(struct kvm_irqchip),
            [MREC_PIC_SLAVE] = sizeof(struct kvm_irqchip),
            [MREC_IOAPIC] = sizeof(struct kvm_irqchip),
            [MREC_PIT2] = sizeof(struct kvm_pit_state2),
            [MREC_CLOCK] = sizeof(struct kvm_clock_data),
            [MREC_REALTIME_NS] = sizeof(uint64_t),
            [MREC_CLOCK_SKEW] = sizeof(int64_t),
            [MREC_GUEST_ABI] = sizeof(uint32_t),
        };
        uint32_t type;
        const void *p;
        size_t n;
        int r;

        while ((r = blob_next(&rd, &type, &p, &n)) == 1) {
                if (type == 0 || type > MREC_GUEST_ABI || rec[type] || n != want[type])
                        return sprout_err_set(err, -EINVAL, "VM state: bad record %u (%zu bytes)",
                                              type, n);
                rec[type] = p;
        }
        if (r < 0)
                return sprout_err_set(err, -EINVAL, "VM state: a record runs past the section");
        for (unsigned t = 1; t <= MREC_REQUIRED_LAST; t++)
                if (!rec[t])
                        return sprout_err_set(err, -EINVAL, "VM state: record %u is missing", t);

        struct kvm_pit_state2 pit;
        memcpy(&pit, rec[MREC_PIT2], sizeof(pit));
        if (ioctl(vm->fd, KVM_SET_PIT2, &pit) < 0)
                return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_PIT2");
        for (unsigned t = MREC_PIC_MASTER; t <= MREC_IOAPIC; t++) {
                struct kvm_irqchip c;
                memcpy(&c, rec[t], sizeof(c));
                if (c.chip_id != t - MREC_PIC_MASTER)
                        return sprout_err_set(err, -EINVAL,
                                              "VM state: irqchip record %u names chip %u", t,
                                              c.chip_id);
                if (ioctl(vm->fd, KVM_SET_IRQCHIP, &c) < 0)
                        return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_IRQCHIP");
        }
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
        uint64_t now = realtime_ns();
        uint64_t clock = clk.clock + (now > then ? now - then : 0);
        if (skew < 0 || (uint64_t)skew < clock)
                clock -= (uint64_t)skew; /* and the guest's own error, measured at READY */
        struct kvm_clock_data set = {.clock = clock};
        if (ioctl(vm->fd, KVM_SET_CLOCK, &set) < 0)
                return sprout_err_errno(err, -errno, "restoring VM state: KVM_SET_CLOCK");
        vm->guest_abi = 0;
        if (rec[MREC_GUEST_ABI])
                memcpy(&vm->guest_abi, rec[MREC_GUEST_ABI], sizeof(vm->guest_abi));
        return 0;
}

static void save_devices(struct sprout_vm *vm, struct blob *b)
{
        blob_put(b, DREC_SERIAL, &vm->com1, sizeof(vm->com1));
}

static int restore_devices(struct sprout_vm *vm, const void *data, size_t len,
                           struct sprout_err *err)
{
        struct blob_reader rd = {.data = data, .len = len};
        uint32_t type;
        const void *p;
        size_t n;
        int r;
        while ((r = blob_next(&rd, &type, &p, &n)) == 1) {
                if (type == DREC_SERIAL && n == sizeof(vm->com1)) {
                        struct serial s;
                        memcpy(&s, p, sizeof(s));
                        vm->com1.ier = s.ier & 0x0f;
                        vm->com1.iir_thri_pending = s.iir_thri_pending ? 1 : 0;
                        vm->com1.lcr = s.lcr;
                        vm->com1.mcr = s.mcr & 0x1f;
                        vm->com1.scr = s.scr;
                        vm->com1.dll = s.dll;
                        vm->com1.dlm = s.dlm;
                        /* irq and irq_level are this VM's wiring, never taken from the file */
                } else {
                        return sprout_err_set(err, -EINVAL,
                                              "device state: bad record %u (%zu bytes)", type, n);
                }
        }
        if (r < 0)
                return sprout_err_set(err, -EINVAL, "device state: a record runs past the section");
        return 0;
}

int sprout_vm_capture(struct sprout_vm *vm, struct sprout_vm_capture *cap, struct sprout_err *err)
{
        struct blob b[3] = {0};
        int r;

        memset(cap, 0, sizeof(*cap));
        if (vm->broken || vm->stopped)
                return sprout_err_set(err, -EINVAL, "the VM is not running: nothing to capture");
        /* The ring that stopped us is a port I/O KVM has not finished; entering with immediate_exit
         * completes it (RIP moves past the OUT) and returns at once (api.rst, KVM_RUN). */
        vm->run->immediate_exit = 1;
        r = ioctl(vm->vcpu_fd, KVM_RUN, 0);
        int e = errno;
        vm->run->immediate_exit = 0;
        if (r == 0 || e != EINTR)
                return sprout_err_set(err, -EIO,
                                      "completing the pending I/O before the snapshot: %s",
                                      r == 0 ? "the guest ran on" : strerror(e));

        r = vcpu_save(vm, &b[0], err);
        if (r == 0)
                r = save_vm(vm, &b[1], err);
        if (r == 0)
                save_devices(vm, &b[2]);
        if (r == 0 && b[2].error)
                r = sprout_err_set(err, b[2].error, "saving device state: out of memory");
        if (r < 0) {
                for (int i = 0; i < 3; i++)
                        blob_free(&b[i]);
                return r;
        }
        static const uint32_t tags[3] = {SPROUT_SEC_VCPU, SPROUT_SEC_VM, SPROUT_SEC_DEVICES};
        for (int i = 0; i < 3; i++) {
                cap->sections[i] = (struct sprout_vm_section){tags[i], b[i].data, b[i].len};
                cap->owned[i] = b[i].data;
        }
        cap->nsections = 3;
        cap->ram = vm->ram;
        cap->ram_size = vm->ram_size;
        return 0;
}

void sprout_vm_capture_free(struct sprout_vm_capture *cap)
{
        for (unsigned i = 0; i < SPROUT_VM_MAX_SECTIONS; i++)
                free(cap->owned[i]);
        memset(cap, 0, sizeof(*cap));
}

static const struct sprout_vm_section *find_section(const struct sprout_vm_section *s, unsigned n,
                                                    uint32_t tag)
{
        for (unsigned i = 0; i < n; i++)
                if (s[i].tag == tag)
                        return &s[i];
        return NULL;
}

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
                                                 uint32_t idx)
{
        for (uint32_t i = 0; i < c->nent; i++)
                if (c->entries[i].function == fn &&
                    (c->entries[i].index == idx ||
                     !(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)))
                        return &c->entries[i];
        return NULL;
}

int sprout_vm_check_compat(struct sprout_kvm *kvm, uint32_t recorded_host_kind,
                           const struct sprout_vm_section *sections, unsigned nsections,
                           struct sprout_err *err)
{
        const struct sprout_vm_section *vs = find_section(sections, nsections, SPROUT_SEC_VCPU);
        struct kvm_cpuid2 *saved = NULL, *host = NULL;
        int r;

        if (recorded_host_kind != (uint32_t)kvm->kind)
                return sprout_err_set(
                    err, -ENOTSUP,
                    "the snapshot was taken on a %s host and this is a %s host: its "
                    "CPU profile differs; prewarm the image again here",
                    sprout_host_kind_name(recorded_host_kind), sprout_host_kind_name(kvm->kind));
        if (!vs)
                return sprout_err_set(err, -EINVAL, "the snapshot has no vCPU state");
        r = vcpu_saved_cpuid(vs->data, vs->len, kvm, &saved, err);
        if (r < 0)
                return r;
        r = cpu_profile_cpuid(kvm, 0, &host, err);
        if (r < 0)
                goto out;
        /* Feature words: a bit the snapshot's guest may rely on must be offered here too. */
        static const struct {
                uint32_t fn, idx;
                int reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
                const char *name;
        } words[] = {
            {1, 0, 2, "leaf 1 ECX"},
            {1, 0, 3, "leaf 1 EDX"},
            {7, 0, 1, "leaf 7 EBX"},
            {7, 0, 2, "leaf 7 ECX"},
            {7, 0, 3, "leaf 7 EDX"},
            {0xd, 1, 0, "leaf 0xd.1 EAX"},
            {0x80000001, 0, 2, "leaf 0x80000001 ECX"},
            {0x80000001, 0, 3, "leaf 0x80000001 EDX"},
        };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                const struct kvm_cpuid_entry2 *se = cpuid_find(saved, words[i].fn, words[i].idx);
                const struct kvm_cpuid_entry2 *he = cpuid_find(host, words[i].fn, words[i].idx);
                if (!se)
                        continue;
                uint32_t sv = (&se->eax)[words[i].reg];
                uint32_t hv = he ? (&he->eax)[words[i].reg] : 0;
                /* Leaf 1 ECX bit 27 (OSXSAVE) mirrors guest CR4 and bits 24..31 of leaf 1 EBX are
                 * the APIC ID: neither is a host capability. */
                if (words[i].fn == 1 && words[i].reg == 2)
                        sv &= ~(1u << 27);
                uint32_t missing = sv & ~hv;
                if (missing) {
                        r = sprout_err_set(
                            err, -ENOTSUP,
                            "this host's CPU lacks a feature the snapshot recorded: %s "
                            "bit %d (snapshot 0x%08x, host 0x%08x)",
                            words[i].name, __builtin_ctz(missing), sv, hv);
                        goto out;
                }
        }
        r = 0;
out:
        free(saved);
        free(host);
        return r;
}

int sprout_vm_shell_create(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                           struct sprout_vm **out, struct sprout_err *err)
{
        if (cfg->base_fd < 0)
                return sprout_err_set(err, -EBADF, "no base memory to restore from");
        return vm_new(kvm, cfg->ram_size, cfg->base_fd, cfg->console_fd, cfg->console_log_size, out,
                      err);
}

int sprout_vm_restore_state(struct sprout_vm *vm, const struct sprout_restore_config *cfg,
                            struct sprout_err *err)
{
        const struct sprout_vm_section *vs, *ms, *ds;
        int r;

        vs = find_section(cfg->sections, cfg->nsections, SPROUT_SEC_VCPU);
        ms = find_section(cfg->sections, cfg->nsections, SPROUT_SEC_VM);
        ds = find_section(cfg->sections, cfg->nsections, SPROUT_SEC_DEVICES);
        if (!vs || !ms || !ds)
                return sprout_err_set(err, -EINVAL, "the snapshot lacks the %s state section",
                                      !vs   ? "vCPU"
                                      : !ms ? "VM"
                                            : "device");
        if (cfg->ram_size != vm->ram_size)
                return sprout_err_set(
                    err, -EINVAL, "the shell has %llu bytes of RAM, the snapshot %llu",
                    (unsigned long long)vm->ram_size, (unsigned long long)cfg->ram_size);
        r = restore_vm(vm, ms->data, ms->len, err);
        if (r == 0)
                r = vcpu_restore(vm, vs->data, vs->len, err);
        if (r == 0)
                r = restore_devices(vm, ds->data, ds->len, err);
        if (r < 0) {
                vm->broken = true;
                return r;
        }
        /* Tell the guest its clock stood still on purpose, so no lockup is reported on resume. */
        if (vm->kvm->has_kvmclock_ctrl && ioctl(vm->vcpu_fd, KVM_KVMCLOCK_CTRL, 0) < 0)
                sp_debug("KVM_KVMCLOCK_CTRL: %s (ignored)", strerror(errno));
        return 0;
}

int sprout_vm_restore(struct sprout_kvm *kvm, const struct sprout_restore_config *cfg,
                      struct sprout_vm **out, struct sprout_err *err)
{
        struct sprout_vm *vm;
        int r = sprout_vm_shell_create(kvm, cfg, &vm, err);
        if (r < 0)
                return r;
        r = sprout_vm_restore_state(vm, cfg, err);
        if (r < 0) {
                sprout_vm_destroy(vm);
                return r;
        }
        *out = vm;
        return 0;
}

int sprout_vm_set_identity(struct sprout_vm *vm, const uint8_t uuid[16], struct sprout_err *err)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        uint8_t entropy[sizeof(h->entropy)];
        if (getrandom(entropy, sizeof(entropy), 0) != (ssize_t)sizeof(entropy))
                return sprout_err_errno(err, -errno, "getrandom for the clone's entropy");
        memcpy(h->clone_uuid, uuid, sizeof(h->clone_uuid));
        memcpy(h->entropy, entropy, sizeof(entropy));
        h->wallclock_ns = realtime_ns();
        h->flags |= SPROUT_MBF_NEW_IDENTITY;
        return 0;
}

int sprout_vm_invoke(struct sprout_vm *vm, const void *req, size_t req_len, int64_t timeout_ms,
                     const void **resp, size_t *resp_len, struct sprout_vm_event *ev,
                     struct sprout_err *err)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        if (req_len > SPROUT_MB_REQ_SIZE)
                return sprout_err_set(err, -EMSGSIZE,
                                      "the request is %zu bytes; the mailbox takes at most %llu",
                                      req_len, (unsigned long long)SPROUT_MB_REQ_SIZE);
        memcpy(vm->sdev.mailbox + SPROUT_MB_REQ_OFF, req, req_len);
        h->req_len = (uint32_t)req_len;
        h->seq++;
        /* A vCPU held for a while between requests: tell the guest its clock stood still on
         * purpose, so a watchdog does not call it a lockup. Not worth an ioctl per request. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        if (vm->kvm->has_kvmclock_ctrl && vm->last_exit_ns && now - vm->last_exit_ns > 1000000000LL)
                (void)ioctl(vm->vcpu_fd, KVM_KVMCLOCK_CTRL, 0);
        int r = sprout_vm_run(vm, timeout_ms, ev, err);
        if (r < 0)
                return r;
        if (ev->kind == SPROUT_EV_DONE) {
                /* sprout_dev_handle checked the length against the response area. */
                *resp = vm->sdev.mailbox + SPROUT_MB_RESP_OFF;
                *resp_len = ev->arg;
        } else {
                *resp = NULL;
                *resp_len = 0;
        }
        return 0;
}

bool sprout_vm_can_warmup(const struct sprout_vm *vm)
{
        return (vm->guest_abi >> 16) == SPROUT_ABI_MAJOR && (vm->guest_abi & 0xffffu) >= 3;
}

uint32_t sprout_vm_guest_abi(const struct sprout_vm *vm)
{
        return vm->guest_abi;
}

int sprout_vm_warmup(struct sprout_vm *vm, int64_t timeout_ms, struct sprout_vm_event *ev,
                     struct sprout_err *err)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        if (!sprout_vm_can_warmup(vm))
                return sprout_err_set(err, -ENOTSUP,
                                      "the guest speaks sprout ABI %u.%u; warm-ups need 1.3 or "
                                      "later",
                                      vm->guest_abi >> 16, vm->guest_abi & 0xffffu);
        h->req_len = 0;
        h->seq++;
        h->flags |= SPROUT_MBF_WARMUP;
        int r = sprout_vm_run(vm, timeout_ms, ev, err);
        /* Read the guest's flags once: it must have cleared ours. */
        uint32_t flags = *(volatile uint32_t *)&h->flags;
        h->flags &= ~SPROUT_MBF_WARMUP;
        if (r < 0)
                return r;
        if (ev->kind == SPROUT_EV_DONE && (ev->arg != 0 || (flags & SPROUT_MBF_WARMUP)))
                return sprout_err_set(err, -EPROTO,
                                      "the guest answered a warm-up with %u bytes%s: it does not "
                                      "handle warm-ups",
                                      ev->arg,
                                      (flags & SPROUT_MBF_WARMUP) ? " and left the flag set" : "");
        return 0;
}

uint64_t sprout_vm_private_bytes(struct sprout_vm *vm)
{
        /* smaps' Anonymous counts the pages of this private file mapping that are now our own
         * copies; shared base pages are not counted. */
        FILE *f = fopen("/proc/self/smaps", "re");
        char line[256];
        uint64_t start = (uintptr_t)vm->ram, result = 0;
        bool in = false;
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long a, b;
                if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
                        in = (a == start);
                        continue;
                }
                unsigned long long kb;
                if (in && sscanf(line, "Anonymous: %llu kB", &kb) == 1) {
                        result = kb * 1024;
                        break;
                }
        }
        fclose(f);
        return result;
}
