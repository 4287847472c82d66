/* What a guest can make the host write, without KVM: LOG and PANIC text escaped, the token buckets
 * that bound LOG bytes and unknown rings per clone, the request area wiped between requests, and
 * the identity flag a guest must clear before it answers. White-box: a VM with only a mailbox and
 * a console log, driven through the sprout device's private entry points. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "vmm_internal.h"

static void vm_with_mailbox(struct sprout_vm *vm)
{
        struct sprout_err err = {0};
        memset(vm, 0, sizeof(*vm));
        CHECK(sprout_dev_init(&vm->sdev, &err) == 0, "mailbox: %s", err.msg);
        CHECK(console_log_init(&vm->console, 1 << 16, -1) == 0, "console log");
}

static void vm_free(struct sprout_vm *vm)
{
        sprout_dev_free(&vm->sdev);
        console_log_free(&vm->console);
}

static void guest_log(struct sprout_vm *vm, const void *text, uint32_t len)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        memcpy(vm->sdev.mailbox + SPROUT_MB_LOG_OFF, text, len);
        h->log_len = len;
}

/* One line of the daemon's own log, as the warn budget counts them. */
static bool warn_take(struct log_bucket *b, int64_t now_ns, uint64_t *resumed)
{
        return log_bucket_take(b, now_ns, 1, GUEST_WARN_PER_S, GUEST_WARN_BURST, resumed);
}

static void case_bucket(void)
{
        struct log_bucket b = {0};
        uint64_t resumed = 99;
        int64_t t = 5000000000LL;
        unsigned let = 0;
        for (int i = 0; i < 1000; i++)
                let += warn_take(&b, t, &resumed);
        CHECK(let == GUEST_WARN_BURST, "a burst at one instant let %u lines through", let);
        CHECK(b.suppressed == 1000 - GUEST_WARN_BURST, "suppressed %llu",
              (unsigned long long)b.suppressed);
        /* A tenth of a second later one more line is due, and it reports what was refused. */
        t += 1000000000LL / GUEST_WARN_PER_S;
        CHECK(warn_take(&b, t, &resumed) && resumed == 1000 - GUEST_WARN_BURST, "resumed with %llu",
              (unsigned long long)resumed);
        CHECK(!warn_take(&b, t, &resumed) && resumed == 0, "a second line at once");
        /* A steady flood for ten seconds: the rate, not the flood, decides. */
        let = 0;
        for (int64_t ms = 1; ms <= 10000; ms++)
                for (int k = 0; k < 10; k++)
                        let += warn_take(&b, t + ms * 1000000LL, &resumed);
        CHECK(let >= 10 * GUEST_WARN_PER_S && let <= 10 * GUEST_WARN_PER_S + 1,
              "10 s of 10,000 lines a second let %u through", let);
        /* A long silence refills the bucket to the burst, not beyond, and cannot overflow. */
        struct log_bucket q = {0};
        (void)warn_take(&q, 0, &resumed);
        let = 0;
        for (int i = 0; i < 1000; i++)
                let += warn_take(&q, INT64_MAX, &resumed);
        CHECK(let == GUEST_WARN_BURST, "after a long silence %u lines", let);
        /* A clock that goes backwards gains nothing. */
        struct log_bucket r = {0};
        for (int i = 0; i < GUEST_WARN_BURST; i++)
                (void)warn_take(&r, 1000000000LL, &resumed);
        CHECK(!warn_take(&r, 0, &resumed), "a backward clock refilled the bucket");
}

static void case_log_text(void)
{
        struct sprout_vm vm;
        struct sprout_vm_event ev;
        char tail[4096];
        vm_with_mailbox(&vm);
        static const char evil[] = "boot ok\n[guest] forged\x1b[2J\xff\xc3(\n";
        guest_log(&vm, evil, sizeof(evil) - 1);
        CHECK(sprout_dev_handle(&vm, SPROUT_CMD_LOG, &ev) == 0, "LOG stops the guest");
        console_log_read(&vm.console, 0, 10, tail, sizeof(tail), NULL);
        CHECK(strcmp(tail, "[guest] boot ok\n[guest] [guest] forged\\x1b[2J\\xff\\xc3(\n") == 0,
              "LOG text: '%s'", tail);

        /* PANIC text becomes the event's detail, escaped and bounded. */
        static const char why[] = "handler exited\n\x1b]0;owned\x07";
        guest_log(&vm, why, sizeof(why) - 1);
        CHECK(sprout_dev_handle(&vm, SPROUT_CMD_PANIC, &ev) == 1 && ev.kind == SPROUT_EV_PANIC,
              "PANIC is an event");
        CHECK(strcmp(ev.detail, "handler exited\\x0a\\x1b]0;owned\\x07") == 0, "PANIC detail: '%s'",
              ev.detail);
        uint8_t junk[SPROUT_MB_LOG_SIZE];
        memset(junk, 0xfe, sizeof(junk));
        guest_log(&vm, junk, sizeof(junk));
        ((struct sprout_mailbox_hdr *)vm.sdev.mailbox)->log_len = 0xffffffffu;
        CHECK(sprout_dev_handle(&vm, SPROUT_CMD_PANIC, &ev) == 1 &&
                  strlen(ev.detail) < sizeof(ev.detail) && strncmp(ev.detail, "\\xfe", 4) == 0,
              "4 KiB of invalid bytes and a lying length: %zu bytes", strlen(ev.detail));
        vm_free(&vm);
}

/* A mark names what came after it: an invocation's own output (?log=true), the newest of it when
 * the ring lost some or it does not fit, and the loss said. */
static void case_log_mark(void)
{
        struct console_log log;
        char out[64];
        bool lost = true;
        CHECK(console_log_init(&log, 32, -1) == 0, "console log");
        console_log_put(&log, "boot\n", 5);
        uint64_t mark = log.total;
        CHECK(console_log_read(&log, mark, UINT32_MAX, out, sizeof(out), &lost) == 0 && !lost &&
                  !out[0],
              "nothing after a fresh mark: '%s'", out);
        console_log_put(&log, "call 1\n", 7);
        size_t n = console_log_read(&log, mark, UINT32_MAX, out, sizeof(out), &lost);
        CHECK(n == 7 && !strcmp(out, "call 1\n") && !lost, "after the mark: '%s'", out);
        CHECK(console_log_read(&log, 0, UINT32_MAX, out, sizeof(out), &lost) == 12 &&
                  !strcmp(out, "boot\ncall 1\n") && !lost,
              "mark 0 is all that is kept: '%s'", out);
        CHECK(console_log_read(&log, log.total + 99, UINT32_MAX, out, sizeof(out), &lost) == 0 &&
                  !lost,
              "a mark from the future names nothing: '%s'", out);
        /* 40 more bytes through a 32-byte ring: the mark's start is gone. */
        mark = log.total;
        console_log_put(&log, "aaaaaaaaa\nbbbbbbbbb\nccccccccc\nddddddddd\n", 40);
        n = console_log_read(&log, mark, UINT32_MAX, out, sizeof(out), &lost);
        CHECK(n == 32 && lost && !strcmp(out + n - 10, "ddddddddd\n"),
              "the ring lost the start: %zu '%s' lost %d", n, out, lost);
        /* Cut to fit: whole lines, the newest. */
        char small[16];
        n = console_log_read(&log, mark, UINT32_MAX, small, sizeof(small), &lost);
        CHECK(lost && !strcmp(small, "ddddddddd\n"), "cut to fit: '%s' lost %d", small, lost);
        console_log_free(&log);
}

static void case_log_flood(void)
{
        struct sprout_vm vm;
        struct sprout_vm_event ev;
        vm_with_mailbox(&vm);
        /* What the guest makes the host write goes to the echo too: count it there. */
        vm.console.echo_fd = memfd_create("echo", 0);
        CHECK(vm.console.echo_fd >= 0, "memfd_create: %s", strerror(errno));
        static uint8_t line[SPROUT_MB_LOG_SIZE];
        memset(line, 'x', sizeof(line));
        guest_log(&vm, line, sizeof(line));
        /* 86,000 rings of 4 KiB as fast as they come: 352 MB asked for, one burst of text let
         * through plus the rate for as long as the flood lasted (however slow this build is). */
        int64_t t0 = sprout_mono_ns();
        for (int i = 0; i < 86000; i++)
                (void)sprout_dev_handle(&vm, SPROUT_CMD_LOG, &ev);
        double secs = (double)(sprout_mono_ns() - t0) / 1e9;
        struct stat st;
        /* ...and one "N suppressed" note (under 64 bytes) per line after the burst. */
        double allowed =
            (GUEST_LOG_BURST + secs * GUEST_LOG_PER_S) * (1 + 64.0 / SPROUT_MB_LOG_SIZE) +
            2 * SPROUT_MB_LOG_SIZE;
        CHECK(fstat(vm.console.echo_fd, &st) == 0 && (double)st.st_size <= allowed &&
                  st.st_size >= GUEST_LOG_BURST / 2,
              "86,000 LOG rings of 4 KiB in %.2f s wrote %lld bytes of console (at most %.0f)",
              secs, (long long)st.st_size, allowed);
        /* refused, not suppressed: suppressed restarts at 0 whenever a line gets through, as the
         * last one may once the bucket refills. */
        CHECK(vm.sdev.log_rl.refused > 0, "nothing was suppressed");
        close(vm.console.echo_fd);
        vm.console.echo_fd = -1;
        /* Unknown commands: the daemon's log is bounded the same way (their own bucket): a
         * burst, then the rate for as long as the flood lasted. */
        int stopped = 0;
        t0 = sprout_mono_ns();
        for (int i = 0; i < 86000; i++)
                stopped += sprout_dev_handle(&vm, 0x77, &ev);
        secs = (double)(sprout_mono_ns() - t0) / 1e9;
        CHECK(stopped == 0, "an unknown command stopped the guest %d times", stopped);
        CHECK(86000 - vm.sdev.warn_rl.refused <= GUEST_WARN_BURST + secs * GUEST_WARN_PER_S + 1,
              "%llu of 86,000 unknown rings logged in %.2f s",
              (unsigned long long)(86000 - vm.sdev.warn_rl.refused), secs);
        vm_free(&vm);
}

static void case_request_wipe(void)
{
        struct sprout_vm vm;
        vm_with_mailbox(&vm);
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)vm.sdev.mailbox;
        const uint8_t *area = vm.sdev.mailbox + SPROUT_MB_REQ_OFF;
        static const char secret[] = "{\"token\":\"alice-secret-0123456789\"}";
        sprout_dev_put_request(&vm.sdev, secret, sizeof(secret) - 1);
        CHECK(h->req_len == sizeof(secret) - 1 && memcmp(area, secret, h->req_len) == 0,
              "request copied");
        sprout_dev_put_request(&vm.sdev, "{}", 2);
        CHECK(h->req_len == 2 && memcmp(area, "{}", 2) == 0, "second request copied");
        bool clean = true;
        for (size_t i = 2; i < sizeof(secret) + 64; i++)
                clean &= area[i] == 0;
        CHECK(clean, "bytes of the earlier request remain past req_len");
        /* The wipe is our count, not the header's: a guest that grows req_len gains nothing. */
        sprout_dev_put_request(&vm.sdev, secret, sizeof(secret) - 1);
        h->req_len = 16;
        memset((uint8_t *)area + 200, 'g', 8); /* the guest's own scribble, beyond any request */
        sprout_dev_put_request(&vm.sdev, NULL, 0);
        CHECK(h->req_len == 0 && area[0] == 0 && area[sizeof(secret) - 2] == 0,
              "a warm-up (no request) leaves the previous one behind");
        CHECK(area[200] == 'g', "wiped past the previous request (cost grows with the area)");
        vm_free(&vm);
}

static void case_identity(void)
{
        struct sprout_err err = {0};
        const uint32_t v11 = (1u << 16) | 1, v13 = (1u << 16) | 3, v10 = 1u << 16;
        CHECK(sprout_dev_check_answer(v13, SPROUT_MBF_NEW_IDENTITY, &err) == -EPROTO &&
                  strstr(err.msg, "NEW_IDENTITY"),
              "a 1.3 guest answered with the flag set: '%s'", err.msg);
        sprout_err_clear(&err);
        CHECK(sprout_dev_check_answer(v11, SPROUT_MBF_NEW_IDENTITY | SPROUT_MBF_WARMUP, &err) ==
                  -EPROTO,
              "a 1.1 guest answered with the flag set");
        CHECK(sprout_dev_check_answer(v13, 0, &err) == 0, "flag cleared: refused");
        CHECK(sprout_dev_check_answer(v13, SPROUT_MBF_WARMUP, &err) == 0,
              "other flags are not the identity's");
        CHECK(sprout_dev_check_answer(v10, SPROUT_MBF_NEW_IDENTITY, &err) == 0,
              "a 1.0 guest never clears the flag");
        CHECK(sprout_dev_check_answer(0, SPROUT_MBF_NEW_IDENTITY, &err) == 0,
              "unknown ABI (an old snapshot): not judged");
        CHECK(sprout_dev_check_answer((2u << 16) | 5, SPROUT_MBF_NEW_IDENTITY, &err) == 0,
              "another major is refused at READY, not here");
}

int main(void)
{
        case_bucket();
        case_log_text();
        case_log_mark();
        case_log_flood();
        case_request_wipe();
        case_identity();
        return check_finish();
}
