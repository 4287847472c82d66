/* Recycling a clone in place on real KVM (docs/architecture.md, "Recycling"): `test_recycle CASE
 * IMAGES_DIR SNAP_DIR`. White-box: it sees the VM's private state, so that it can plant secrets
 * where a tenant's clone could leave them (guest RAM, registers, MSRs, debug registers, the
 * mailbox, the serial port, the console log) and prove that the recycled clone holds none of them
 * and is, record for record, what a fresh restore of the same base is. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/check.h"
#include "../common/kvm_case.h"
#include "../common/prewarmed.h"
#include "clone_internal.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "vmm_internal.h"

/* What a tenant leaves behind; bytes no guest or host code writes by chance. */
static const char SECRET[] = "tenant-secret-7f3a9c";
static const uint64_t SECRET_WORD = 0x7f3a9c5e1d2b4a68ULL;

/* The value after `"key":"` in a response, up to n characters. */
static void field(const char *resp, const char *key, char *out, size_t n)
{
        char k[64];
        snprintf(k, sizeof(k), "\"%s\":\"", key);
        const char *p = resp ? strstr(resp, k) : NULL;
        snprintf(out, n, "%s", p ? p + strlen(k) : "");
        char *q = strchr(out, '"');
        if (q)
                *q = '\0';
}

/* ---- one vCPU's and one VM's state, read straight from KVM ---- */

struct kvm_view {
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_fpu fpu;
        struct kvm_debugregs dregs;
        struct kvm_lapic_state lapic;
        struct kvm_vcpu_events events;
        struct kvm_mp_state mp;
        struct kvm_irqchip chips[3];
        uint64_t msr[SPROUT_MAX_MSRS];
        bool msr_ok[SPROUT_MAX_MSRS];
};

static bool read_view(struct sprout_vm *vm, struct kvm_view *v)
{
        memset(v, 0, sizeof(*v));
        bool ok = ioctl(vm->vcpu_fd, KVM_GET_REGS, &v->regs) == 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_SREGS, &v->sregs) == 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &v->dregs) == 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_LAPIC, &v->lapic) == 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_VCPU_EVENTS, &v->events) == 0 &&
                  ioctl(vm->vcpu_fd, KVM_GET_MP_STATE, &v->mp) == 0;
        /* KVM_GET_FPU is refused where the guest's FPU state is protected; the XSAVE area holds
         * the same registers, and the rest of the view is compared either way. */
        (void)ioctl(vm->vcpu_fd, KVM_GET_FPU, &v->fpu);
        for (int i = 0; i < 3; i++) {
                v->chips[i].chip_id = (uint32_t)i;
                ok = ok && ioctl(vm->fd, KVM_GET_IRQCHIP, &v->chips[i]) == 0;
        }
        for (uint32_t i = 0; i < vm->kvm->nmsrs && i < SPROUT_MAX_MSRS; i++) {
                struct {
                        struct kvm_msrs h;
                        struct kvm_msr_entry e;
                } one = {.h.nmsrs = 1, .e.index = vm->kvm->msr_index[i]};
                v->msr_ok[i] = ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1;
                v->msr[i] = one.e.data;
        }
        return ok;
}

/* The XSAVE area, when KVM has one (KVM_GET_XSAVE2 sizes it; else the 4 KiB KVM_GET_XSAVE). */
static void *read_xsave(struct sprout_vm *vm, size_t *len)
{
        *len = 0;
        if (!vm->kvm->xsave_size)
                return NULL;
        size_t n = vm->kvm->xsave_size > sizeof(struct kvm_xsave) ? vm->kvm->xsave_size
                                                                  : sizeof(struct kvm_xsave);
        void *x = calloc(1, n);
        unsigned long op = vm->kvm->has_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
        if (x && ioctl(vm->vcpu_fd, op, x) == 0) {
                *len = n;
                return x;
        }
        free(x);
        return NULL;
}

/* Records that follow the clock, not the clone: the TSC and Hyper-V's two clocks (read at a
 * different moment) and the LAPIC timer's current count. Everything else must match a fresh restore
 * exactly. */
#define APIC_TIMER_CCR 0x390u

static bool follows_clock(uint32_t msr)
{
        return msr == 0x10u ||       /* IA32_TSC */
               msr == 0x40000010u || /* Hyper-V VP_RUNTIME: the vCPU thread's run time */
               msr == 0x40000020u;   /* Hyper-V TIME_REF_COUNT: a clock */
}

static void compare_views(const char *what, struct sprout_vm *a, const struct kvm_view *x,
                          const struct kvm_view *y)
{
        CHECK(!memcmp(&x->regs, &y->regs, sizeof(x->regs)),
              "%s: general registers differ from a fresh restore (rip %llx vs %llx, r12 %llx)",
              what, (unsigned long long)x->regs.rip, (unsigned long long)y->regs.rip,
              (unsigned long long)x->regs.r12);
        CHECK(!memcmp(&x->sregs, &y->sregs, sizeof(x->sregs)),
              "%s: segment and control registers differ", what);
        CHECK(!memcmp(&x->fpu, &y->fpu, sizeof(x->fpu)), "%s: FPU state differs", what);
        CHECK(!memcmp(&x->dregs, &y->dregs, sizeof(x->dregs)),
              "%s: debug registers differ (db0 %llx)", what, (unsigned long long)x->dregs.db[0]);
        struct kvm_lapic_state la = x->lapic, lb = y->lapic;
        memset(la.regs + APIC_TIMER_CCR, 0, 4);
        memset(lb.regs + APIC_TIMER_CCR, 0, 4);
        for (unsigned off = 0; off < sizeof(la.regs); off += 4)
                CHECK(!memcmp(la.regs + off, lb.regs + off, 4), "%s: LAPIC register %#x differs",
                      what, off);
        CHECK(!memcmp(&x->events, &y->events, sizeof(x->events)), "%s: pending vCPU events differ",
              what);
        CHECK(x->mp.mp_state == y->mp.mp_state, "%s: MP state %u, a fresh clone's is %u", what,
              x->mp.mp_state, y->mp.mp_state);
        for (int i = 0; i < 3; i++)
                CHECK(!memcmp(&x->chips[i], &y->chips[i], sizeof(x->chips[i])),
                      "%s: irqchip %d differs", what, i);
        unsigned nmsr = 0;
        for (uint32_t i = 0; i < a->kvm->nmsrs && i < SPROUT_MAX_MSRS; i++) {
                uint32_t idx = a->kvm->msr_index[i];
                CHECK(x->msr_ok[i] == y->msr_ok[i], "%s: MSR %#x readable on one clone only", what,
                      idx);
                if (!x->msr_ok[i] || follows_clock(idx))
                        continue;
                nmsr++;
                CHECK(x->msr[i] == y->msr[i], "%s: MSR %#x is %#llx, a fresh clone's %#llx", what,
                      idx, (unsigned long long)x->msr[i], (unsigned long long)y->msr[i]);
        }
        CHECK(nmsr >= 10, "%s: only %u MSRs compared", what, nmsr);
}

/* A snapshot is taken at READY, in the guest agent (user mode), where the guest kernel's tick is
 * armed: a restored clone whose LAPIC timer is in TSC-deadline mode must hold a deadline, or its
 * guest sleeps until some other interrupt comes. KVM drops the deadline, silently, when the MSR is
 * written before the LAPIC (vcpu_state.c); compare_views alone cannot see it if both clones lose
 * it. AMD has no TSC-deadline timer: there the mode never occurs and this checks nothing. */
static void check_timer_armed(const char *what, struct sprout_vm *vm, const struct kvm_view *v)
{
        uint32_t lvtt;
        memcpy(&lvtt, v->lapic.regs + 0x320, sizeof(lvtt));
        if (((lvtt >> 17) & 3) != 2 || (lvtt & (1u << 16)))
                return;
        for (uint32_t i = 0; i < vm->kvm->nmsrs && i < SPROUT_MAX_MSRS; i++)
                if (vm->kvm->msr_index[i] == 0x6e0u)
                        CHECK(v->msr_ok[i] && v->msr[i] != 0,
                              "%s: its LAPIC timer is in TSC-deadline mode with no deadline", what);
}

/* Leaves SECRET in every place a clone's tenant (or the host acting for it) could write. */
static void plant(struct sprout_vm *vm)
{
        /* Guest RAM: one copy in every MiB, past the low page tables the guest would still use. */
        for (uint64_t off = 1ULL << 20; off + sizeof(SECRET) < vm->ram_size; off += 1ULL << 20)
                memcpy(vm->ram + off + 0x123, SECRET, sizeof(SECRET));
        /* The mailbox: header padding, the log, request and response areas. */
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        memcpy(h->reserved, SECRET, sizeof(SECRET));
        memcpy(h->clone_uuid, SECRET, 16);
        memcpy(h->seed.seed, SECRET, sizeof(SECRET));
        memcpy(vm->sdev.mailbox + SPROUT_MB_LOG_OFF, SECRET, sizeof(SECRET));
        memcpy(vm->sdev.mailbox + SPROUT_MB_REQ_OFF + 4096, SECRET, sizeof(SECRET));
        memcpy(vm->sdev.mailbox + SPROUT_MB_RESP_OFF + 8192, SECRET, sizeof(SECRET));
        vm->sdev.last_req_len = 4096 + sizeof(SECRET);
        /* Registers the guest would hand to its next caller. */
        struct kvm_regs regs;
        if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) == 0) {
                regs.r12 = regs.r13 = regs.r14 = regs.r15 = regs.rbx = SECRET_WORD;
                CHECK(ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) == 0, "KVM_SET_REGS: %s",
                      strerror(errno));
        }
        struct kvm_debugregs d;
        if (ioctl(vm->vcpu_fd, KVM_GET_DEBUGREGS, &d) == 0) {
                d.db[0] = d.db[1] = SECRET_WORD;
                CHECK(ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &d) == 0, "KVM_SET_DEBUGREGS: %s",
                      strerror(errno));
        }
        struct {
                struct kvm_msrs h;
                struct kvm_msr_entry e;
        } gs = {
            .h.nmsrs = 1,
            .e = {.index = 0xc0000102u /* MSR_KERNEL_GS_BASE */, .data = SECRET_WORD & ~0xfffULL}};
        gs.e.data &= 0x00007fffffffffffULL; /* canonical */
        CHECK(ioctl(vm->vcpu_fd, KVM_SET_MSRS, &gs) == 1, "setting KERNEL_GS_BASE");
        /* The serial port's scratch register survives everything but a reset, and the console
         * log is what GET /v1/clones/ID/log serves. */
        vm->com1.scr = 0x5a;
        vm->com1.lcr = 0x83;
        console_log_put(&vm->console, SECRET, sizeof(SECRET) - 1);
}

/* Guest memory KVM itself writes while it restores a vCPU, whatever the clone did: the wall clock
 * (at MSR_KVM_WALL_CLOCK_NEW's address, on every write of it), the kvmclock record
 * (MSR_KVM_SYSTEM_TIME_NEW) and the steal-time record, all following the clock. */
struct kvm_areas {
        uint64_t gpa[3], len[3];
};

static void kvm_areas(struct sprout_vm *vm, struct kvm_areas *k)
{
        static const uint32_t msr[3] = {0x4b564d00u, 0x4b564d01u, 0x4b564d03u};
        static const uint64_t len[3] = {12, 32, 64};
        memset(k, 0, sizeof(*k));
        for (int i = 0; i < 3; i++) {
                struct {
                        struct kvm_msrs h;
                        struct kvm_msr_entry e;
                } one = {.h.nmsrs = 1, .e.index = msr[i]};
                /* The wall clock's MSR is a bare address; the others have an enable bit. */
                if (ioctl(vm->vcpu_fd, KVM_GET_MSRS, &one) == 1 && one.e.data &&
                    (i == 0 || (one.e.data & 1))) {
                        k->gpa[i] = one.e.data & ~0x3fULL;
                        k->len[i] = len[i];
                }
        }
}

static bool in_kvm_area(const struct kvm_areas *k, uint64_t off)
{
        for (int i = 0; i < 3; i++)
                if (k->len[i] && off >= k->gpa[i] && off < k->gpa[i] + k->len[i])
                        return true;
        return false;
}

/* How many pages of a and b differ outside KVM's own records, naming the first few: a RAM
 * difference says where. */
static unsigned diff_pages(const char *what, const uint8_t *a, const uint8_t *b, uint64_t len,
                           const struct kvm_areas *k)
{
        unsigned n = 0;
        for (uint64_t off = 0; off < len; off += 4096) {
                if (!memcmp(a + off, b + off, 4096))
                        continue;
                unsigned i = 0;
                while (i < 4096 && (a[off + i] == b[off + i] || in_kvm_area(k, off + i)))
                        i++;
                if (i == 4096)
                        continue;
                if (n++ < 4)
                        fprintf(stderr, "%s: page %#llx differs from byte %#x (%02x vs %02x)\n",
                                what, (unsigned long long)off, i, a[off + i], b[off + i]);
        }
        return n;
}

static bool ram_has_secret(struct sprout_vm *vm)
{
        return memmem(vm->ram, vm->ram_size, SECRET, sizeof(SECRET) - 1) != NULL;
}

/* A clone that has served, with secrets planted, recycled: it must be what a fresh restore of its
 * base is (RAM, mailbox, devices, logs, every KVM record), and it must answer as a new clone. */
static void case_leak(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        struct sprout_clone *a = NULL, *f = NULL;
        REQUIRE(sprout_clone_create(b, -1, &a, NULL, &err) == 0, "clone a: %s", err.msg);
        char *r = invoke(a, "{\"touch_mib\":4}");
        CHECK(r && strstr(r, "\"touched_mib\":4"), "touch_mib: '%s'", r ? r : "");
        free(r);
        r = invoke(a, "{\"say\":true,\"name\":\"tenant-secret-7f3a9c\"}");
        CHECK(r && strstr(r, SECRET), "the echo of the secret: '%s'", r ? r : "");
        free(r);
        r = invoke(a, "{\"identity\":true}");
        char old_id[64], old_rnd[64];
        field(r, "clone", old_id, sizeof(old_id));
        field(r, "random", old_rnd, sizeof(old_rnd));
        free(r);
        struct sprout_vm *av = sprout_clone_vm(a);
        uint64_t used = sprout_clone_private_bytes(a);
        CHECK(used >= 4ULL << 20, "clone a wrote only %llu KiB", (unsigned long long)used >> 10);
        plant(av);
        REQUIRE(ram_has_secret(av), "the planted secret is not in RAM: the scan checks nothing");

        double t0 = sprout_mono_s();
        int rc = clone_recycle(a, &err);
        double t1 = sprout_mono_s();
        REQUIRE(rc == 0, "recycle: %s", err.msg);
        printf("recycle of a clone that wrote %llu KiB: %.0f us\n", (unsigned long long)used >> 10,
               (t1 - t0) * 1e6);
        CHECK(sprout_clone_generation(a) == 1, "generation %u after one recycle",
              sprout_clone_generation(a));
        CHECK(strcmp(sprout_clone_id(a), old_id) != 0, "the recycled clone kept its id %s", old_id);
        REQUIRE(sprout_clone_create(b, -1, &f, NULL, &err) == 0, "fresh clone: %s", err.msg);
        struct sprout_vm *fv = sprout_clone_vm(f);

        /* RAM: every byte the base's (but for the records KVM writes at restore), none private. */
        CHECK(!ram_has_secret(av), "the secret survived in guest RAM");
        REQUIRE(av->ram_size == fv->ram_size, "RAM sizes differ");
        struct kvm_areas ka, kf;
        kvm_areas(av, &ka);
        kvm_areas(fv, &kf);
        printf("kvmclock record at %#llx, steal time at %#llx\n", (unsigned long long)ka.gpa[0],
               (unsigned long long)ka.gpa[1]);
        CHECK(ka.len[0] && !memcmp(&ka, &kf, sizeof(ka)),
              "the kvmclock record is not where a fresh clone's is (%#llx vs %#llx)",
              (unsigned long long)ka.gpa[0], (unsigned long long)kf.gpa[0]);
        unsigned nd = diff_pages("recycled vs fresh", av->ram, fv->ram, av->ram_size, &ka);
        CHECK(nd == 0, "%u pages of the recycled clone's RAM differ from a fresh clone's", nd);
        struct sprout_base_export x;
        sprout_base_export(b, &x);
        uint8_t *base = mmap(NULL, x.ram_size, PROT_READ, MAP_SHARED, x.memfd, 0);
        REQUIRE(base != MAP_FAILED, "mapping the base: %s", strerror(errno));
        nd = diff_pages("recycled vs base", av->ram, base, x.ram_size, &ka);
        CHECK(nd == 0, "%u pages of the recycled clone's RAM differ from the base", nd);
        nd = diff_pages("fresh vs base", fv->ram, base, x.ram_size, &ka);
        CHECK(nd == 0, "%u pages of a fresh clone's RAM differ from the base", nd);
        munmap(base, x.ram_size);
        CHECK(sprout_clone_private_bytes(a) <= sprout_clone_private_bytes(f),
              "the recycled clone holds %llu KiB of private RAM, a fresh one %llu KiB",
              (unsigned long long)sprout_clone_private_bytes(a) >> 10,
              (unsigned long long)sprout_clone_private_bytes(f) >> 10);

        /* The mailbox: equal to a fresh clone's but for the identity each is given. */
        CHECK(!memmem(av->sdev.mailbox, SPROUT_MAILBOX_SIZE, SECRET, sizeof(SECRET) - 1),
              "the secret survived in the mailbox");
        struct sprout_mailbox_hdr ha, hf;
        memcpy(&ha, av->sdev.mailbox, sizeof(ha));
        memcpy(&hf, fv->sdev.mailbox, sizeof(hf));
        CHECK(memcmp(ha.entropy, hf.entropy, sizeof(ha.entropy)) != 0,
              "the recycled clone was given a fresh clone's entropy");
        char mb_id[37];
        uuid_unparse_lower(ha.clone_uuid, mb_id);
        CHECK(!strcmp(mb_id, sprout_clone_id(a)), "the mailbox holds clone id %s, not %s", mb_id,
              sprout_clone_id(a));
        CHECK(ha.seed.generation != hf.seed.generation &&
                  memcmp(ha.seed.seed, hf.seed.seed, sizeof(ha.seed.seed)) != 0,
              "the recycled clone was given a fresh clone's kernel seed");
        ha.seed.generation = hf.seed.generation = 0;
        memset(ha.seed.seed, 0, sizeof(ha.seed.seed));
        memset(hf.seed.seed, 0, sizeof(hf.seed.seed));
        memset(ha.clone_uuid, 0, 16);
        memset(hf.clone_uuid, 0, 16);
        memset(ha.entropy, 0, sizeof(ha.entropy));
        memset(hf.entropy, 0, sizeof(hf.entropy));
        ha.wallclock_ns = hf.wallclock_ns = 0;
        CHECK(!memcmp(&ha, &hf, sizeof(ha)), "the mailbox header differs from a fresh clone's");
        CHECK(!memcmp(av->sdev.mailbox + SPROUT_MB_HDR_SIZE, fv->sdev.mailbox + SPROUT_MB_HDR_SIZE,
                      SPROUT_MAILBOX_SIZE - SPROUT_MB_HDR_SIZE),
              "the mailbox's log, request or response area differs from a fresh clone's");
        CHECK(av->sdev.last_req_len == fv->sdev.last_req_len && !av->sdev.rang &&
                  av->sdev.pending_db == fv->sdev.pending_db,
              "the sprout device's state differs (last request %u bytes, fresh %u)",
              av->sdev.last_req_len, fv->sdev.last_req_len);

        /* Devices and logs. */
        CHECK(!memcmp(&av->com1, &fv->com1, sizeof(av->com1)),
              "the serial port differs (scratch %#x, fresh %#x)", av->com1.scr, fv->com1.scr);
        CHECK(av->console.len == 0 && av->console.total == 0,
              "the console log kept %zu bytes (%llu ever)", av->console.len,
              (unsigned long long)av->console.total);
        /* The recycle frees the console ring; a ring made since must not hold the secret. */
        CHECK(!av->console.buf ||
                  !memmem(av->console.buf, av->console.cap, SECRET, sizeof(SECRET) - 1),
              "the secret survived in the console log's buffer");
        CHECK(!av->stopped && !av->broken && av->guest_abi == fv->guest_abi &&
                  av->clock_skew_ns == fv->clock_skew_ns,
              "VM flags differ from a fresh clone's");

        /* Every vCPU and VM record KVM holds. */
        struct kvm_view va, vf;
        CHECK(read_view(av, &va) && read_view(fv, &vf), "reading KVM state: %s", strerror(errno));
        compare_views("recycled clone", av, &va, &vf);
        check_timer_armed("fresh clone", fv, &vf);
        check_timer_armed("recycled clone", av, &va);
        size_t xa_len, xf_len;
        void *xa = read_xsave(av, &xa_len), *xf = read_xsave(fv, &xf_len);
        CHECK(xa_len == xf_len && (!xa_len || !memcmp(xa, xf, xa_len)),
              "the XSAVE area differs from a fresh clone's");
        free(xa);
        free(xf);

        /* It answers as a new clone: first request, new identity, nothing of the old one. */
        r = invoke(a, "{\"identity\":true}");
        char *rf = invoke(f, "{\"identity\":true}");
        char id[64], rnd[64], fid[64], frnd[64];
        field(r, "clone", id, sizeof(id));
        field(r, "random", rnd, sizeof(rnd));
        field(rf, "clone", fid, sizeof(fid));
        field(rf, "random", frnd, sizeof(frnd));
        CHECK(r && strstr(r, "\"seq\":1}"), "the recycled clone's first answer: '%s'", r ? r : "");
        CHECK(!strcmp(id, sprout_clone_id(a)) && strcmp(id, old_id) && strcmp(id, fid),
              "the recycled clone reports id '%s' (VMM %s, before %s, fresh %s)", id,
              sprout_clone_id(a), old_id, fid);
        CHECK(rnd[0] && strcmp(rnd, old_rnd) && strcmp(rnd, frnd),
              "the recycled clone's random bytes '%s' repeat (before '%s', fresh '%s')", rnd,
              old_rnd, frnd);
        CHECK(r && !strstr(r, SECRET), "the recycled clone's answer holds the secret: '%s'", r);
        free(r);
        free(rf);
        r = invoke(a, "{\"say\":true}");
        CHECK(r && strstr(r, "\"seq\":2}"), "the recycled clone's second answer: '%s'", r ? r : "");
        free(r);
        char log[8192];
        size_t n = sprout_vm_console_tail(av, log, sizeof(log) - 1, 100);
        log[n] = '\0';
        CHECK(n > 0 && !strstr(log, SECRET),
              "the recycled clone's log (%zu bytes) is empty or holds the secret: '%s'", n, log);
        sprout_clone_destroy(a);
        sprout_clone_destroy(f);
        sprout_base_free(b);
}

/* The public path: a released clone refills the pool by recycling, comes back with a higher
 * generation and a new id, and the old path (recycling off) tears it down instead. */
static void case_pool(void)
{
        enum { ROUNDS = 5 };
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        char ids[ROUNDS][40];
        for (int i = 0; i < ROUNDS; i++) {
                REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "fill %d: %s", i, err.msg);
                struct sprout_clone *c = NULL;
                REQUIRE(sprout_clone_take_ready(b, &c) == 0, "take %d", i);
                CHECK(sprout_clone_generation(c) == (unsigned)i, "round %d: generation %u", i,
                      sprout_clone_generation(c));
                snprintf(ids[i], sizeof(ids[i]), "%s", sprout_clone_id(c));
                for (int j = 0; j < i; j++)
                        CHECK(strcmp(ids[i], ids[j]) != 0, "round %d reuses round %d's id", i, j);
                char *r = invoke(c, "{\"identity\":true}");
                char id[64];
                field(r, "clone", id, sizeof(id));
                CHECK(r && strstr(r, "\"seq\":1}") && !strcmp(id, ids[i]),
                      "round %d: '%s' (want seq 1 and id %s)", i, r ? r : "", ids[i]);
                free(r);
                sprout_clone_release(c);
        }
        struct sprout_recycle_stats st;
        sprout_base_recycle_stats(b, &st);
        CHECK(st.recycled == ROUNDS - 1 && st.failed == 0 && st.destroyed == 0 && st.waiting == 1,
              "stats: %llu recycled, %llu failed, %llu destroyed, %u waiting",
              (unsigned long long)st.recycled, (unsigned long long)st.failed,
              (unsigned long long)st.destroyed, st.waiting);

        /* The old path: nothing is kept for recycling, the next fill creates. */
        sprout_base_set_recycle(b, false);
        REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "fill: %s", err.msg);
        struct sprout_clone *c = NULL;
        REQUIRE(sprout_clone_take_ready(b, &c) == 0, "take");
        sprout_clone_release(c);
        sprout_base_recycle_stats(b, &st);
        CHECK(st.destroyed == 1 && st.waiting == 0 && st.recycled == ROUNDS,
              "with recycling off: %llu recycled, %llu destroyed, %u waiting",
              (unsigned long long)st.recycled, (unsigned long long)st.destroyed, st.waiting);
        /* A clone given back to a full pool waits for the next take's refill; a pool shrunk to
         * nothing keeps none. */
        sprout_base_set_recycle(b, true);
        REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "fill: %s", err.msg);
        REQUIRE(sprout_clone_take_ready(b, &c) == 0, "take");
        REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "refill: %s", err.msg);
        sprout_clone_release(c);
        sprout_base_recycle_stats(b, &st);
        CHECK(st.waiting == 1, "a full pool did not keep the clone given back");
        REQUIRE(sprout_base_prepare_ready(b, 0, &err) == 0, "shrink: %s", err.msg);
        sprout_base_recycle_stats(b, &st);
        CHECK(st.waiting == 0 && st.destroyed == 2, "a pool shrunk to 0 kept %u spent clones",
              st.waiting);
        REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "fill: %s", err.msg);
        sprout_base_free(b); /* frees the ready and the waiting clones: ASan sees a leak */
}

/* The ready pool sizes itself from demand: with no takes it keeps its floor; after takes (hits
 * and misses alike) within a window its target rises above a floor of 1, within the cap, and never
 * below a higher floor. The exact figure depends on the host's speed (the time a ready clone takes
 * to make), so only the bounds are checked. */
static void case_demand(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        CHECK(sprout_base_ready_target(b, 1, 8) == 1, "no demand yet, target %u",
              sprout_base_ready_target(b, 1, 8));
        REQUIRE(sprout_base_prepare_ready(b, 1, &err) == 0, "fill: %s", err.msg);
        for (int i = 0; i < 6; i++) {
                struct sprout_clone *c = NULL;
                if (sprout_clone_take_ready(b, &c) == 0)
                        sprout_clone_release(c); /* the rest are misses: demand too */
        }
        usleep(1100 * 1000); /* the demand window closes after a second */
        double rate, fill;
        sprout_base_ready_demand(b, &rate, &fill);
        unsigned t = sprout_base_ready_target(b, 1, 8);
        CHECK(rate > 0 && fill > 0 && t >= 2 && t <= 8,
              "after 6 takes: %.2f takes/s, %.2f ms per ready clone, target %u", rate, fill, t);
        CHECK(sprout_base_ready_target(b, 1, 1) == 1, "the cap is not kept");
        CHECK(sprout_base_ready_target(b, 5, 8) >= 5, "the floor is not kept");
        printf("demand: %.2f takes/s, %.2f ms per ready clone: target %u (floor 1, cap 8)\n", rate,
               fill, t);
        sprout_base_free(b);
}

int main(int argc, char **argv)
{
        static const struct kvm_case cases[] = {
            {"leak", case_leak}, {"pool", case_pool}, {"demand", case_demand}};
        if (argc != 4) {
                fprintf(stderr, "usage: test_recycle CASE IMAGES_DIR SNAP_DIR\n");
                return 2;
        }
        images = argv[2];
        snaps = argv[3];
        return kvm_case_run(argv[1], cases, sizeof(cases) / sizeof(cases[0]), &kvm);
}
