/* The mailbox operations of the sprout device (docs/guest-protocol.md): a clone's identity, a
 * request and its response, and the warm-up of a ready clone. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>

#include "sprout/abi.h"
#include "sprout/clock.h"
#include "vmm_internal.h"

int sprout_dev_new_seed(struct sprout_dev *d, struct sprout_err *err)
{
        struct sprout_seed_page *s = &((struct sprout_mailbox_hdr *)d->mailbox)->seed;
        struct {
                uint64_t gen;
                uint8_t seed[sizeof(s->seed)];
        } fresh;
        if (getrandom(&fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh))
                return sprout_err_errno(err, -errno, "getrandom for the kernel seed");
        /* Random rather than counted: the kernel compares it with the last one it took, which is
         * in the snapshot's RAM and unknown here; 0 is the value a kernel starts from. */
        s->generation = fresh.gen ? fresh.gen : 1;
        memcpy(s->seed, fresh.seed, sizeof(s->seed));
        explicit_bzero(&fresh, sizeof(fresh));
        return 0;
}

int sprout_dev_write_identity(struct sprout_dev *d, const uint8_t uuid[16], struct sprout_err *err)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)d->mailbox;
        uint8_t entropy[sizeof(h->entropy)];
        if (getrandom(entropy, sizeof(entropy), 0) != (ssize_t)sizeof(entropy))
                return sprout_err_errno(err, -errno, "getrandom for the clone's entropy");
        /* The kernel's seed, for a patched guest kernel; the entropy stays for user-space PRNGs
         * (and for the ioctls of a kernel without the patch). */
        int r = sprout_dev_new_seed(d, err);
        if (r < 0)
                return r;
        memcpy(h->clone_uuid, uuid, sizeof(h->clone_uuid));
        memcpy(h->entropy, entropy, sizeof(entropy));
        h->wallclock_ns = (uint64_t)sprout_real_ns();
        h->flags |= SPROUT_MBF_NEW_IDENTITY;
        return 0;
}

void sprout_dev_put_request(struct sprout_dev *d, const void *req, uint32_t req_len)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)d->mailbox;
        uint8_t *area = d->mailbox + SPROUT_MB_REQ_OFF;
        /* Only the previous request's tail, not the whole area: our own count, not the header's
         * req_len (the guest can write that), keeps an invoke of a few bytes cheap. */
        if (d->last_req_len > req_len)
                memset(area + req_len, 0, d->last_req_len - req_len);
        if (req_len)
                memcpy(area, req, req_len);
        d->last_req_len = req_len;
        h->req_len = req_len;
}

int sprout_dev_check_answer(uint32_t guest_abi, uint32_t flags, struct sprout_err *err)
{
        /* ABI 1.0 guests never clear the flag; 0 is a snapshot that did not record the ABI. */
        bool promises = (guest_abi >> 16) == SPROUT_ABI_MAJOR && (guest_abi & 0xffffu) >= 1;
        if (promises && (flags & SPROUT_MBF_NEW_IDENTITY))
                return sprout_err_set(err, -EPROTO,
                                      "the guest answered without applying its new identity "
                                      "(SPROUT_MBF_NEW_IDENTITY still set): it would serve with "
                                      "its parent's randomness");
        return 0;
}

int sprout_vm_set_identity(struct sprout_vm *vm, const uint8_t uuid[16], struct sprout_err *err)
{
        return sprout_dev_write_identity(&vm->sdev, uuid, err);
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
        sprout_dev_put_request(&vm->sdev, req, (uint32_t)req_len);
        h->seq++;
        /* A vCPU held for a while between requests: tell the guest its clock stood still on
         * purpose, so a watchdog does not call it a lockup. Not worth an ioctl per request. */
        int64_t now = sprout_mono_ns();
        if (vm->kvm->has_kvmclock_ctrl && vm->last_exit_ns && now - vm->last_exit_ns > 1000000000LL)
                (void)ioctl(vm->vcpu_fd, KVM_KVMCLOCK_CTRL, 0);
        int r = sprout_vm_run(vm, timeout_ms, ev, err);
        if (r < 0)
                return r;
        if (ev->kind == SPROUT_EV_DONE) {
                uint32_t flags = *(volatile uint32_t *)&h->flags; /* once: the guest writes it */
                r = sprout_dev_check_answer(vm->guest_abi, flags, err);
                if (r < 0) {
                        vm->broken = true; /* it broke the protocol: only destroy is legal */
                        return r;
                }
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

uint32_t sprout_vm_guest_features(const struct sprout_vm *vm)
{
        return vm->guest_features;
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
        sprout_dev_put_request(&vm->sdev, NULL, 0);
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
        if (ev->kind == SPROUT_EV_DONE &&
            (r = sprout_dev_check_answer(vm->guest_abi, flags, err)) < 0)
                vm->broken = true;
        return r;
}
