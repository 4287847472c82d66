/* The guest library's protocol steps against a fake mailbox in ordinary memory, with the MMIO
 * doorbell pointed at a plain word: what each call writes to the header and the areas, what it
 * rings, and the clamping of host lengths. (Opening the real device needs a guest; only its
 * argument check runs.)
 *
 * The identity step's system calls (ioctl on /dev/urandom, clock_settime) and its clock reads are
 * intercepted with the linker's --wrap (see CMakeLists.txt): the test records them and never
 * touches the host's RNG or clock. */
#include <errno.h>
#include <linux/random.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "sprout/guest.h"
#include "../common/check.h"

#define FAKE_FD 1000

static uint32_t doorbell;

/* ---- the intercepted calls ---- */

static struct {
        int calls;               /* ioctls and clock_settimes, in order, as events[] */
        char events[16];         /* 'a' RNDADDENTROPY, 'r' RNDRESEEDCRNG, 's' settime, 'h' hook */
        int add_count, add_size; /* what RNDADDENTROPY was given */
        uint8_t add_bytes[64];
        int fail_add, fail_reseed, fail_settime; /* errno to fail with, 0 to succeed */
        int fake_clock;
        int64_t now_ns; /* the fake CLOCK_REALTIME */
        int64_t set_ns; /* what clock_settime was given */
        uint8_t hook_bytes[64];
        size_t hook_len;
        void *hook_ctx;
        uint8_t hook_id[16];
} sys;

static void event(char c)
{
        if (sys.calls < (int)sizeof(sys.events) - 1)
                sys.events[sys.calls++] = c;
}

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...)
{
        va_list ap;
        va_start(ap, req);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        if (fd != FAKE_FD)
                return __real_ioctl(fd, req, arg);
        if (req == RNDADDENTROPY) {
                const struct rand_pool_info *p = arg;
                event('a');
                sys.add_count = p->entropy_count;
                sys.add_size = p->buf_size;
                memcpy(sys.add_bytes, p->buf, p->buf_size <= 64 ? (size_t)p->buf_size : 64);
                return sys.fail_add ? (errno = sys.fail_add, -1) : 0;
        }
        if (req == RNDRESEEDCRNG) {
                event('r');
                return sys.fail_reseed ? (errno = sys.fail_reseed, -1) : 0;
        }
        errno = ENOTTY;
        return -1;
}

int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
        if (!sys.fake_clock || id != CLOCK_REALTIME)
                return __real_clock_gettime(id, ts);
        ts->tv_sec = sys.now_ns / 1000000000;
        ts->tv_nsec = sys.now_ns % 1000000000;
        return 0;
}

int __wrap_clock_settime(clockid_t id, const struct timespec *ts)
{
        event('s');
        if (id != CLOCK_REALTIME || sys.fail_settime)
                return errno = sys.fail_settime ? sys.fail_settime : EINVAL, -1;
        sys.set_ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
        sys.now_ns = sys.set_ns;
        return 0;
}

static void hook(void *ctx, const uint8_t *entropy, size_t len)
{
        struct sprout_guest *g = ctx;
        event('h');
        sys.hook_ctx = ctx;
        sys.hook_len = len;
        memcpy(sys.hook_bytes, entropy, len <= 64 ? len : 64);
        memcpy(sys.hook_id, sprout_guest_clone_id(g), 16);
}

static void fake_open(struct sprout_guest *g)
{
        memset(g, 0, sizeof(*g));
        g->mb = aligned_alloc(4096, SPROUT_MAILBOX_SIZE);
        memset(g->mb, 0, SPROUT_MAILBOX_SIZE);
        g->hdr = (struct sprout_mailbox_hdr *)g->mb;
        g->mmio = &doorbell;
        g->rnd_fd = FAKE_FD;
        doorbell = 0;
}

static void test_request(struct sprout_guest *g)
{
        const void *buf;
        uint32_t len;

        g->hdr->req_len = 10;
        sprout_guest_request(g, &buf, &len);
        CHECK(len == 10 && buf == g->mb + SPROUT_MB_REQ_OFF, "request: len %u", len);
        g->hdr->req_len = 0xffffffffu; /* a hostile host length is clamped to the area */
        sprout_guest_request(g, &buf, &len);
        CHECK(len == SPROUT_MB_REQ_SIZE, "request: unclamped len %u", len);
}

static void test_response(struct sprout_guest *g)
{
        uint32_t cap;
        char *out = sprout_guest_response_buf(g, &cap);

        CHECK(out == (char *)g->mb + SPROUT_MB_RESP_OFF && cap == SPROUT_MB_RESP_SIZE,
              "response_buf: cap %u", cap);
        CHECK(sprout_guest_respond(g, "abc", 3) == 0, "respond failed");
        CHECK(memcmp(out, "abc", 3) == 0 && g->hdr->resp_len == 3, "respond: wrong area or length");
        CHECK(doorbell == SPROUT_DB(SPROUT_CMD_DONE, 0), "respond rang 0x%x", doorbell);
        memcpy(out, "in place", 8);
        doorbell = 0;
        CHECK(sprout_guest_done(g, 8) == 0 && g->hdr->resp_len == 8 &&
                  doorbell == SPROUT_DB(SPROUT_CMD_DONE, 0),
              "done: resp_len %u doorbell 0x%x", g->hdr->resp_len, doorbell);
        doorbell = 0;
        CHECK(sprout_guest_respond(g, out, 8) == 0 && memcmp(out, "in place", 8) == 0,
              "respond from the area itself");
        doorbell = 0;
        CHECK(sprout_guest_done(g, SPROUT_MB_RESP_SIZE + 1) == -EMSGSIZE && doorbell == 0 &&
                  g->hdr->resp_len == 8,
              "oversized done was not refused before ringing");
}

static void test_log_panic_ready(struct sprout_guest *g)
{
        char big[SPROUT_MB_LOG_SIZE + 100];
        memset(big, 'x', sizeof(big));
        big[sizeof(big) - 1] = '\0';

        sprout_guest_log(g, "hello", 5);
        CHECK(g->hdr->log_len == 5 && memcmp(g->mb + SPROUT_MB_LOG_OFF, "hello", 5) == 0 &&
                  doorbell == SPROUT_DB(SPROUT_CMD_LOG, 0),
              "log");
        sprout_guest_log(g, big, sizeof(big));
        CHECK(g->hdr->log_len == SPROUT_MB_LOG_SIZE, "log not truncated: %u", g->hdr->log_len);
        sprout_guest_panic(g, SPROUT_PANIC_HANDLER_EXIT, "handler exited with status 3");
        CHECK(g->hdr->log_len == strlen("handler exited with status 3") &&
                  doorbell == SPROUT_DB(SPROUT_CMD_PANIC, SPROUT_PANIC_HANDLER_EXIT),
              "panic: log_len %u doorbell 0x%x", g->hdr->log_len, doorbell);
        sprout_guest_panic(g, SPROUT_PANIC_AGENT, big);
        CHECK(g->hdr->log_len == SPROUT_MB_LOG_SIZE, "panic text not truncated");
        CHECK(sprout_guest_ready(g) == 0 && g->hdr->abi_version == SPROUT_ABI_VERSION &&
                  doorbell == SPROUT_DB(SPROUT_CMD_READY, 0),
              "ready");
        sprout_guest_ring(g, 0x7f, 0xabcdef);
        CHECK(SPROUT_DB_CMD(doorbell) == 0x7f && SPROUT_DB_ARG(doorbell) == 0xabcdef,
              "ring encodes 0x%x", doorbell);
}

/* The host's side of cloning: what sprout_vm_set_identity writes. */
static void host_identity(struct sprout_guest *g, uint8_t seed, uint64_t wall_ns)
{
        for (int i = 0; i < 16; i++)
                g->hdr->clone_uuid[i] = (uint8_t)(seed + i);
        for (int i = 0; i < 64; i++)
                g->hdr->entropy[i] = (uint8_t)(seed * 7 + i);
        g->hdr->wallclock_ns = wall_ns;
        g->hdr->flags |= SPROUT_MBF_NEW_IDENTITY;
}

static void reset_sys(int64_t now)
{
        memset(&sys, 0, sizeof(sys));
        sys.fake_clock = 1;
        sys.now_ns = now;
        doorbell = 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return 0;
        return 1;
}

static void test_identity(void)
{
        struct sprout_guest g;
        const int64_t now = 1700000000LL * 1000000000LL;
        uint8_t want[64];

        fake_open(&g);
        sprout_guest_on_identity(&g, hook, &g);

        /* Before any clone: nothing happens, the id is zero, no system call. */
        reset_sys(now);
        CHECK(sprout_guest_ready(&g) == 0 && sys.calls == 0 &&
                  sprout_guest_identity_syscalls(&g) == 0 &&
                  all_zero(sprout_guest_clone_id(&g), 16),
              "ready without an identity: %d calls", sys.calls);

        /* A clone whose kvmclock is right: RNG step only, in order, then the hook. */
        reset_sys(now);
        host_identity(&g, 1, (uint64_t)now - 1000000); /* the host read its clock 1 ms earlier */
        memcpy(want, g.hdr->entropy, 64);
        CHECK(sprout_guest_ready(&g) == 0, "ready with an identity failed: %s", g.err.msg);
        CHECK(strcmp(sys.events, "arh") == 0, "identity steps were \"%s\", want \"arh\"",
              sys.events);
        CHECK(sys.add_count == 512 && sys.add_size == 64 && memcmp(sys.add_bytes, want, 64) == 0,
              "RNDADDENTROPY got %d bits, %d bytes", sys.add_count, sys.add_size);
        CHECK(sys.hook_ctx == &g && sys.hook_len == 64 && memcmp(sys.hook_bytes, want, 64) == 0,
              "hook got ctx %p, %zu bytes", sys.hook_ctx, sys.hook_len);
        CHECK(sys.hook_id[0] == 1 && sys.hook_id[15] == 16, "the hook saw the old clone id");
        CHECK(!(g.hdr->flags & SPROUT_MBF_NEW_IDENTITY), "flag not cleared");
        CHECK(all_zero(g.hdr->entropy, 64), "entropy left in the mailbox");
        CHECK(sprout_guest_clone_id(&g)[0] == 1 && sprout_guest_clone_id(&g)[15] == 16,
              "clone id not copied");
        CHECK(g.identity_syscalls == 2 && g.identities == 1 && g.clock_step_ns == 0,
              "syscalls %u identities %u step %lld", g.identity_syscalls, g.identities,
              (long long)g.clock_step_ns);
        CHECK(doorbell == SPROUT_DB(SPROUT_CMD_READY, 0), "identity rang 0x%x", doorbell);
        CHECK(g.identity_ns > 0 && g.identity_ns < 1000000000ull, "identity_ns %llu",
              (unsigned long long)g.identity_ns);

        /* The next DONE with nothing new: no system call. */
        reset_sys(now);
        CHECK(sprout_guest_done(&g, 0) == 0 && sys.calls == 0 && g.identity_syscalls == 2,
              "done without an identity made %d calls", sys.calls);

        /* A guest clock behind by 40 ms is left alone; by 2 s it is set. */
        reset_sys(now);
        host_identity(&g, 2, (uint64_t)now + 40000000);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "arh") == 0 &&
                  g.identity_syscalls == 4,
              "40 ms behind: steps \"%s\"", sys.events);
        reset_sys(now);
        host_identity(&g, 3, (uint64_t)now + 2000000000);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "arsh") == 0 &&
                  sys.set_ns == now + 2000000000 && g.clock_step_ns == 2000000000 &&
                  g.identity_syscalls == 7 && g.identities == 3,
              "2 s behind: steps \"%s\", set %lld, step %lld, syscalls %u", sys.events,
              (long long)sys.set_ns, (long long)g.clock_step_ns, g.identity_syscalls);
        CHECK(sprout_guest_clone_id(&g)[0] == 3, "third clone id not copied");

        /* A guest clock ahead of the host's reading is left alone: the reading is only a lower
         * bound (the clone may first run long after the VMM wrote it). So is a missing clock. */
        reset_sys(now);
        host_identity(&g, 4, (uint64_t)now - 5000000000LL);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "arh") == 0,
              "5 s ahead: steps \"%s\"", sys.events);
        reset_sys(now);
        host_identity(&g, 5, 0);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "arh") == 0,
              "no host clock: steps \"%s\"", sys.events);

        /* clock_settime refused: not fatal, but logged. */
        reset_sys(now);
        sys.fail_settime = EPERM;
        host_identity(&g, 6, (uint64_t)now + 3000000000LL);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "arsh") == 0 &&
                  doorbell == SPROUT_DB(SPROUT_CMD_LOG, 0) &&
                  strstr((char *)g.mb + SPROUT_MB_LOG_OFF, "clock_settime failed") &&
                  !(g.hdr->flags & SPROUT_MBF_NEW_IDENTITY),
              "settime failure: steps \"%s\" doorbell 0x%x", sys.events, doorbell);

        /* The RNG step refused: PANIC, the error returned, the flag and entropy kept, the id and
         * the hook untouched. */
        sprout_guest_on_identity(&g, hook, &g);
        reset_sys(now);
        sys.fail_add = EPERM;
        memset(g.mb + SPROUT_MB_LOG_OFF, 0, SPROUT_MB_LOG_SIZE);
        host_identity(&g, 7, (uint64_t)now);
        CHECK(sprout_guest_ready(&g) == -EPERM, "RNDADDENTROPY failure not returned");
        CHECK(doorbell == SPROUT_DB(SPROUT_CMD_PANIC, SPROUT_PANIC_IDENTITY) &&
                  strstr((char *)g.mb + SPROUT_MB_LOG_OFF, "RNDADDENTROPY"),
              "RNDADDENTROPY failure rang 0x%x: \"%s\"", doorbell,
              (char *)g.mb + SPROUT_MB_LOG_OFF);
        CHECK(strcmp(sys.events, "a") == 0 && (g.hdr->flags & SPROUT_MBF_NEW_IDENTITY) &&
                  !all_zero(g.hdr->entropy, 64) && sprout_guest_clone_id(&g)[0] == 6,
              "after a failed RNG step: steps \"%s\"", sys.events);
        /* Resumed anyway: the next DONE tries again, and fails again. */
        reset_sys(now);
        sys.fail_reseed = ENODATA;
        CHECK(sprout_guest_done(&g, 0) == -ENODATA && strcmp(sys.events, "ar") == 0 &&
                  doorbell == SPROUT_DB(SPROUT_CMD_PANIC, SPROUT_PANIC_IDENTITY),
              "RNDRESEEDCRNG failure: steps \"%s\" doorbell 0x%x", sys.events, doorbell);
        /* And once the kernel takes it, the clone goes on. */
        reset_sys(now);
        sprout_guest_on_identity(&g, NULL, NULL);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "ar") == 0 &&
                  sprout_guest_clone_id(&g)[0] == 7,
              "retry: steps \"%s\"", sys.events);
        sys.fake_clock = 0;
        free(g.mb);
}

/* A kernel that takes the seed page (ABI 1.4): the identity step makes no RNG system call, still
 * copies the id, calls the hook with the entropy and clears the flag; READY says so. */
static void test_identity_kernel_seeds(void)
{
        struct sprout_guest g;
        const int64_t now = 1700000000LL * 1000000000LL;

        fake_open(&g);
        g.kernel_seeds = true;
        g.rnd_fd = -1; /* sprout_guest_open opens nothing then */
        sprout_guest_on_identity(&g, hook, &g);
        reset_sys(now);
        host_identity(&g, 5, (uint64_t)now - 1000000);
        CHECK(sprout_guest_ready(&g) == 0, "ready: %s", g.err.msg);
        CHECK(strcmp(sys.events, "h") == 0 && g.identity_syscalls == 0 && g.identities == 1,
              "kernel seeds: steps \"%s\", %u system calls", sys.events, g.identity_syscalls);
        CHECK(g.hdr->guest_features == SPROUT_GF_KERNEL_SEED && sprout_guest_kernel_seeds(&g),
              "READY reported features %#x", g.hdr->guest_features);
        CHECK(!(g.hdr->flags & SPROUT_MBF_NEW_IDENTITY) && all_zero(g.hdr->entropy, 64) &&
                  sprout_guest_clone_id(&g)[0] == 5,
              "kernel seeds: flag, entropy or id not handled");
        /* A clock 2 s behind is still set: one system call, the clock's. */
        reset_sys(now);
        host_identity(&g, 6, (uint64_t)now + 2000000000);
        CHECK(sprout_guest_done(&g, 0) == 0 && strcmp(sys.events, "sh") == 0 &&
                  g.identity_syscalls == 1,
              "kernel seeds, 2 s behind: steps \"%s\", %u system calls", sys.events,
              g.identity_syscalls);
        free(g.mb);
}

static void warm_hook(void *ctx)
{
        struct sprout_guest *g = ctx;
        event('w');
        /* The identity is applied before the hook runs, and the flag is still set during it. */
        CHECK(!(g->hdr->flags & SPROUT_MBF_NEW_IDENTITY) && (g->hdr->flags & SPROUT_MBF_WARMUP),
              "warm-up hook saw flags 0x%x", g->hdr->flags);
}

/* A warm-up (ABI 1.3): identity first, then the runtime's hook, then DONE with resp_len 0 rung by
 * the library itself; the caller of ready/done never sees it. */
static void test_warmup(void)
{
        struct sprout_guest g;
        const int64_t now = 1700000000LL * 1000000000LL;

        fake_open(&g);
        sprout_guest_on_identity(&g, hook, &g);
        sprout_guest_on_warmup(&g, warm_hook, &g);
        reset_sys(now);
        host_identity(&g, 3, (uint64_t)now);
        g.hdr->flags |= SPROUT_MBF_WARMUP;
        g.hdr->resp_len = 77;
        CHECK(sprout_guest_ready(&g) == 0, "ready with a warm-up failed: %s", g.err.msg);
        CHECK(strcmp(sys.events, "arhw") == 0, "warm-up steps were \"%s\", want \"arhw\"",
              sys.events);
        CHECK(g.hdr->flags == 0 && g.hdr->resp_len == 0 && g.warmups == 1 && g.identities == 1,
              "after a warm-up: flags 0x%x resp_len %u warmups %u", g.hdr->flags, g.hdr->resp_len,
              g.warmups);
        CHECK(doorbell == SPROUT_DB(SPROUT_CMD_DONE, 0), "the warm-up's answer rang 0x%x",
              doorbell);

        /* A warm-up with no hook and no identity: just the empty DONE, no system call. */
        reset_sys(now);
        sprout_guest_on_warmup(&g, NULL, NULL);
        g.hdr->flags = SPROUT_MBF_WARMUP;
        CHECK(sprout_guest_done(&g, 5) == 0 && sys.calls == 0 && sys.events[0] == 0 &&
                  g.hdr->flags == 0 && g.hdr->resp_len == 0 && g.warmups == 2 &&
                  doorbell == SPROUT_DB(SPROUT_CMD_DONE, 0),
              "a bare warm-up: events \"%s\" flags 0x%x resp_len %u", sys.events, g.hdr->flags,
              g.hdr->resp_len);
        free(g.mb);
}

int main(void)
{
        struct sprout_guest g;

        fake_open(&g);
        test_request(&g);
        test_response(&g);
        test_log_panic_ready(&g);
        free(g.mb);
        test_identity();
        test_identity_kernel_seeds();
        test_warmup();

        struct sprout_guest closed = {0};
        CHECK(sprout_guest_ready(&closed) == -EBADF, "ready on a closed handle");
        sprout_guest_touch_stack(1 << 20);
        CHECK(1, "touch_stack returned");

        /* The mode check comes before any privileged step, so it is safe to run on the host. */
        setenv("SPROUT_DOORBELL", "carrier-pigeon", 1);
        struct sprout_guest bad;
        CHECK(sprout_guest_open(&bad) == -EINVAL &&
                  strstr(bad.err.msg, "SPROUT_DOORBELL=\"carrier-pigeon\": expected"),
              "bad doorbell mode: \"%s\"", bad.err.msg);
        return check_finish();
}
