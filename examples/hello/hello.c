/* hello: the example handler. Answers each request with {"hello":"world","echo":...,"seq":N}, where
 * echo is the request itself if it is JSON (else the request as a JSON string) and N counts
 * requests this process has served. Everything it touches on that path is touched before READY,
 * and the path makes no system call.
 *
 * Three requests exist for tests, recognised by a plain substring (requests are small and trusted):
 *   "identity"     -> {"hello":"world","clone":"<uuid>","random":"<32 hex>","time_ns":T,
 *                      "identity_syscalls":S,"identity_ns":D,"clock_step_ns":C,
 *                      "urandom":"<32 hex>","kernel_uuid":"<uuid>","kernel_seeds":B,"seq":N}
 *                     random is 16 fresh bytes from getrandom() (a system call, on purpose: it is
 *                     what shows that clones of one snapshot got different kernel randomness),
 *                     urandom 16 read from /dev/urandom, kernel_uuid one from
 *                     /proc/sys/kernel/random/uuid (the kernel's own get_random_bytes), B whether
 *                     the kernel re-seeds itself from the VMM's seed page, T
 *                     the guest's CLOCK_REALTIME; S, D and C are what applying the clone identity
 *                     cost this process (system calls, ns) and the clock correction it made.
 *   "touch_mib": N -> {"hello":"world","touched_mib":N,"seq":N}: writes one byte in every page of N
 *                     MiB (0..64) of anonymous memory, mapped on the first such request, so a
 *                     clone's private memory grows by about N MiB.
 *   "hold_ms": N   -> {"hello":"world","held_ms":N,"seq":N}: answers only after N ms (0..300000)
 *                     of the guest's CLOCK_MONOTONIC, spinning in user mode on the vDSO clock, so
 *                     a test can keep an invocation in flight for a known time on any host.
 * Any of them may be in one request (handled in that order). And one that changes no answer:
 *   "say"          -> writes a line to the clone's log (one LOG ring) before answering, so a test
 *                     sees an invocation's own log (?log=true).
 * */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "sprout/guest.h"
#include "jsonish.h"

#define TOUCH_MAX_MIB 64u
#define HOLD_MAX_MS   300000u /* the daemon's largest invocation time limit */

struct hello {
        struct sprout_guest g;
        char *out; /* the mailbox response area: responses are built in place, no copy */
        uint32_t cap;
        uint64_t seq;
        uint8_t *touch; /* the touch_mib buffer, mapped on first use */
        size_t touch_len;
        int priming; /* in prime(): getrandom must not wait for the kernel RNG to be ready */
};

static size_t append(char *out, size_t o, size_t cap, const char *s, size_t n)
{
        if (o == SIZE_MAX || n > cap - o)
                return SIZE_MAX;
        memcpy(out + o, s, n);
        return o + n;
}

static size_t append_str(char *out, size_t o, size_t cap, const char *s)
{
        return append(out, o, cap, s, strlen(s));
}

/* A decimal number without snprintf: a loop touches no libc state. */
static size_t append_u64(char *out, size_t o, size_t cap, uint64_t v)
{
        char digits[21];
        size_t nd = 0;

        do {
                digits[nd++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        char rev[21];
        for (size_t i = 0; i < nd; i++)
                rev[i] = digits[nd - 1 - i];
        return append(out, o, cap, rev, nd);
}

static size_t append_hex(char *out, size_t o, size_t cap, const uint8_t *b, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        char buf[2];

        for (size_t i = 0; i < n && o != SIZE_MAX; i++) {
                buf[0] = hex[b[i] >> 4];
                buf[1] = hex[b[i] & 15];
                o = append(out, o, cap, buf, 2);
        }
        return o;
}

/* The closing `,"seq":N}`. */
static size_t append_seq(char *out, size_t o, size_t cap, uint64_t seq)
{
        o = append_str(out, o, cap, ",\"seq\":");
        o = append_u64(out, o, cap, seq);
        return append(out, o, cap, "}", 1);
}

/* The clone UUID as 8-4-4-4-12 lowercase hex (all zeros before the first clone). */
static size_t append_uuid(char *out, size_t o, size_t cap, const uint8_t *id)
{
        static const uint8_t groups[] = {4, 2, 2, 2, 6};
        size_t at = 0;

        for (size_t i = 0; i < sizeof(groups); i++) {
                if (i)
                        o = append(out, o, cap, "-", 1);
                o = append_hex(out, o, cap, id + at, groups[i]);
                at += groups[i];
        }
        return o;
}

/* Up to n bytes of a file into buf (NUL-terminated); "" when it cannot be read. */
static void read_file(const char *path, char *buf, size_t n)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? read(fd, buf, n - 1) : -1;
        if (fd >= 0)
                close(fd);
        buf[got > 0 ? got : 0] = '\0';
}

static size_t append_identity(struct hello *h, size_t o)
{
        uint8_t rnd[16];
        struct timespec ts;
        uint64_t ns = 0;

        /* Both may fail only in ways a test should see: zeros and a zero time. Priming must not
         * block until the CRNG is ready (seconds, in a fresh VM); a clone's is always ready: the
         * library credited the host's entropy before READY returned. */
        if (getrandom(rnd, sizeof(rnd), h->priming ? GRND_INSECURE : 0) != (ssize_t)sizeof(rnd))
                memset(rnd, 0, sizeof(rnd));
        if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
                ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        o = append_str(h->out, o, h->cap, ",\"clone\":\"");
        o = append_uuid(h->out, o, h->cap, sprout_guest_clone_id(&h->g));
        o = append_str(h->out, o, h->cap, "\",\"random\":\"");
        o = append_hex(h->out, o, h->cap, rnd, sizeof(rnd));
        o = append_str(h->out, o, h->cap, "\",\"time_ns\":");
        o = append_u64(h->out, o, h->cap, ns);
        /* What applying the identity cost this process (the library's counters). */
        o = append_str(h->out, o, h->cap, ",\"identity_syscalls\":");
        o = append_u64(h->out, o, h->cap, sprout_guest_identity_syscalls(&h->g));
        o = append_str(h->out, o, h->cap, ",\"identity_ns\":");
        o = append_u64(h->out, o, h->cap, h->g.identity_ns);
        o = append_str(h->out, o, h->cap, ",\"clock_step_ns\":");
        o = append_u64(h->out, o, h->cap,
                       h->g.clock_step_ns > 0 ? (uint64_t)h->g.clock_step_ns : 0);
        /* The kernel's other two faces of its CRNG: /dev/urandom and its own get_random_bytes. */
        char ur[17] = {0}, kid[37];
        read_file("/dev/urandom", ur, sizeof(ur));
        read_file("/proc/sys/kernel/random/uuid", kid, sizeof(kid));
        o = append_str(h->out, o, h->cap, ",\"urandom\":\"");
        o = append_hex(h->out, o, h->cap, (const uint8_t *)ur, 16);
        o = append_str(h->out, o, h->cap, "\",\"kernel_uuid\":\"");
        kid[strcspn(kid, "\n\"\\")] = '\0';
        o = append_str(h->out, o, h->cap, kid);
        o = append_str(h->out, o, h->cap, "\",\"kernel_seeds\":");
        return append_str(h->out, o, h->cap, sprout_guest_kernel_seeds(&h->g) ? "true" : "false");
}

/* N after the key (`"touch_mib"`, `"hold_ms"`) and a colon: 0 on success, -1 if there is no number
 * or it is over max. */
static int parse_uint(const char *key, size_t key_len, const char *end, unsigned max, unsigned *out)
{
        const char *p = key + key_len;
        unsigned v = 0;

        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        if (p == end || *p++ != ':')
                return -1;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        if (p == end || *p < '0' || *p > '9')
                return -1;
        while (p < end && *p >= '0' && *p <= '9') {
                v = v * 10 + (unsigned)(*p++ - '0');
                if (v > max)
                        return -1;
        }
        *out = v;
        return 0;
}

/* Write one byte per page of the first mib MiB of the buffer, mapping (or growing) it first. Each
 * write to a page this clone has not written is a guest page fault and a new private host page:
 * that is the point. Returns 0, or -1 if the mapping failed. */
static int touch(struct hello *h, unsigned mib)
{
        size_t len = (size_t)mib << 20;

        if (len > h->touch_len) {
                /* MAP_NORESERVE: a 64 MiB guest refuses to account 64 MiB it would never fill. */
                void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED)
                        return -1;
                if (h->touch)
                        munmap(h->touch, h->touch_len);
                h->touch = p;
                h->touch_len = len;
        }
        for (size_t off = 0; off < len; off += 4096)
                ((volatile uint8_t *)h->touch)[off] = (uint8_t)(h->seq | 1);
        return 0;
}

/* Busy-wait ms milliseconds. clock_gettime is answered by the vDSO in user mode: no system call and
 * no kernel entry, so the wait is real time whatever the host, and a test that holds an invocation
 * does not depend on how slow the guest kernel is. */
static void hold(unsigned ms)
{
        struct timespec t0, t;
        uint64_t want = (uint64_t)ms * 1000000u, spent = 0;

        if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0)
                return;
        while (spent < want) {
                if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
                        return;
                spent = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t.tv_nsec -
                        (uint64_t)t0.tv_nsec;
        }
}

static uint32_t respond_to(struct hello *h, const char *req, uint32_t len)
{
        static const char hello[] = "{\"hello\":\"world\"";
        static const char too_big[] = "{\"hello\":\"world\",\"error\":\"response too large\"";
        const char *end = req + len;
        const char *id = memmem(req, len, "\"identity\"", 10);
        const char *tm = memmem(req, len, "\"touch_mib\"", 11);
        const char *hd = memmem(req, len, "\"hold_ms\"", 9);
        size_t o = append(h->out, 0, h->cap, hello, sizeof(hello) - 1);

        h->seq++;
        if (memmem(req, len, "\"say\"", 5)) {
                static const char line[] = "hello: said during request ";
                char msg[sizeof(line) + 24];
                size_t n = append(msg, 0, sizeof(msg), line, sizeof(line) - 1);
                n = append_u64(msg, n, sizeof(msg), h->seq);
                if (n != SIZE_MAX)
                        sprout_guest_log(&h->g, msg, n);
        }
        if (id || tm || hd) {
                unsigned mib = 0, ms = 0;
                if (id)
                        o = append_identity(h, o);
                if (tm && parse_uint(tm, 11, end, TOUCH_MAX_MIB, &mib) < 0) {
                        o = append_str(h->out, o, h->cap,
                                       ",\"error\":\"touch_mib wants a number from 0 to 64\"");
                } else if (tm && touch(h, mib) < 0) {
                        o = append_str(h->out, o, h->cap, ",\"error\":\"touch_mib: mmap failed\"");
                } else if (tm) {
                        o = append_str(h->out, o, h->cap, ",\"touched_mib\":");
                        o = append_u64(h->out, o, h->cap, mib);
                }
                if (hd && parse_uint(hd, 9, end, HOLD_MAX_MS, &ms) < 0) {
                        o = append_str(h->out, o, h->cap,
                                       ",\"error\":\"hold_ms wants a number from 0 to 300000\"");
                } else if (hd) {
                        hold(ms);
                        o = append_str(h->out, o, h->cap, ",\"held_ms\":");
                        o = append_u64(h->out, o, h->cap, ms);
                }
        } else {
                o = append_str(h->out, o, h->cap, ",\"echo\":");
                if (jsonish_valid(req, len)) {
                        o = append(h->out, o, h->cap, req, len);
                } else if (o != SIZE_MAX) {
                        size_t q = jsonish_quote(req, len, h->out + o, h->cap - o);
                        o = q ? o + q : SIZE_MAX;
                }
        }
        o = append_seq(h->out, o, h->cap, h->seq);
        if (o == SIZE_MAX) {
                o = append(h->out, 0, h->cap, too_big, sizeof(too_big) - 1);
                o = append_seq(h->out, o, h->cap, h->seq);
        }
        return o == SIZE_MAX ? 0 : (uint32_t)o;
}

/* Run every path of respond_to once and touch the response area and some stack, so that serving a
 * request after a snapshot restore takes no page fault. (touch_mib 0 maps nothing: its buffer is
 * meant to be mapped and faulted in the clone.) */
static void prime(struct hello *h)
{
        static const char samples[][32] = {"{\"a\":[1,2.5e3,null]}",
                                           "plain \"text\"\n\xff",
                                           "{\"identity\":1,\"touch_mib\":0}",
                                           "{\"touch_mib\":65}",
                                           "{\"hold_ms\":0}",
                                           "{\"hold_ms\":300001}",
                                           "{\"say\":1}"};

        h->priming = 1;
        for (uint32_t off = 0; off < h->cap; off += 4096)
                h->out[off] = 0;
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
                respond_to(h, samples[i], (uint32_t)strlen(samples[i]));
        sprout_guest_touch_stack(64 * 1024);
        h->seq = 0;
        h->priming = 0;
}

/* The warm-up hook (ABI 1.3): in a fresh clone, before its first real request, run the request path
 * on samples so its pages are this clone's before the request arrives. Into a scratch buffer and
 * with the seq counter put back: the first real response still says "seq":1. (The identity sample
 * makes a getrandom system call: off the request path, that is fine.) */
static void warm_up(void *ctx)
{
        static char scratch[4096];
        static const char samples[][32] = {"{\"a\":[1,2.5e3,null]}", "{\"identity\":1}",
                                           "{\"hold_ms\":0}"};
        struct hello *h = ctx;
        char *out = h->out;
        uint32_t cap = h->cap;
        uint64_t seq = h->seq;

        h->out = scratch;
        h->cap = sizeof(scratch);
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
                respond_to(h, samples[i], (uint32_t)strlen(samples[i]));
        h->out = out;
        h->cap = cap;
        h->seq = seq;
}

int main(void)
{
        static struct hello h;

        if (sprout_guest_open(&h.g) < 0) {
                fprintf(stderr, "hello: %s\n", h.g.err.msg);
                return 1;
        }
        h.out = sprout_guest_response_buf(&h.g, &h.cap);
        prime(&h);
        sprout_guest_on_warmup(&h.g, warm_up, &h);
        /* From here on: no system calls on the ordinary path. READY returns with the first request
         * in place (and, in a clone, the clone's identity applied). An error means the identity
         * could not be applied; the library has rung PANIC, and serving would be unsafe. */
        if (sprout_guest_ready(&h.g) < 0)
                return 1;
        for (;;) {
                const void *req;
                uint32_t len;
                sprout_guest_request(&h.g, &req, &len);
                if (sprout_guest_done(&h.g, respond_to(&h, req, len)) < 0)
                        return 1;
        }
}
