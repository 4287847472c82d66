/* The sprout device: a doorbell (port or MMIO write) and a mailbox memslot. Everything the guest
 * put in the mailbox is read once into a local and checked before use: the guest is untrusted. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/escape.h"
#include "sprout/log.h"
#include "vmm_internal.h"

/* A fresh mailbox is a new machine: its kernel seed page gets a seed of its own, so even a VM that
 * is never handed an identity (a booting one, whose CRNG this makes ready) has its own keys. */
static int mailbox_header(struct sprout_dev *d, struct sprout_err *err)
{
        struct sprout_mailbox_hdr *h = (struct sprout_mailbox_hdr *)d->mailbox;
        h->magic = SPROUT_MB_MAGIC;
        h->host_abi = SPROUT_ABI_VERSION;
        h->seed.magic = SPROUT_SEED_MAGIC;
        return sprout_dev_new_seed(d, err);
}

int sprout_dev_init(struct sprout_dev *d, struct sprout_err *err)
{
        memset(d, 0, sizeof(*d));
        void *mb = mmap(NULL, SPROUT_MAILBOX_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mb == MAP_FAILED)
                return sprout_err_errno(err, -errno, "mapping the mailbox");
        d->mailbox = mb;
        int r = mailbox_header(d, err);
        if (r < 0) {
                munmap(mb, SPROUT_MAILBOX_SIZE);
                d->mailbox = NULL;
        }
        return r;
}

int sprout_dev_reset(struct sprout_dev *d, struct sprout_err *err)
{
        /* Private anonymous pages: dropped, they read as zeros, whatever a caller or the guest
         * left in them (cheaper than writing 1 MiB of zeros when a call touched a few pages). */
        if (madvise(d->mailbox, SPROUT_MAILBOX_SIZE, MADV_DONTNEED) < 0)
                return sprout_err_errno(err, -errno, "wiping the mailbox");
        uint8_t *mb = d->mailbox;
        memset(d, 0, sizeof(*d));
        d->mailbox = mb;
        return mailbox_header(d, err);
}

void sprout_dev_free(struct sprout_dev *d)
{
        if (d->mailbox)
                munmap(d->mailbox, SPROUT_MAILBOX_SIZE);
        d->mailbox = NULL;
}

static void doorbell_io(struct sprout_vm *vm, void *dev, uint64_t offset, uint8_t *data,
                        uint32_t len, bool is_write)
{
        struct sprout_dev *d = dev;
        (void)vm;
        if (!is_write) {
                /* A read tells a probing guest which ABI the host speaks. */
                uint32_t v = SPROUT_ABI_VERSION;
                for (uint32_t i = 0; i < len; i++)
                        data[i] = (offset + i < 4) ? ((uint8_t *)&v)[offset + i] : 0xff;
                return;
        }
        if (offset != 0 || len != 4) {
                uint64_t missed;
                if (log_bucket_take(&d->warn_rl, sprout_mono_ns(), 1, GUEST_WARN_PER_S,
                                    GUEST_WARN_BURST, &missed))
                        sp_debug("sprout device: ignored %u-byte doorbell write at offset %llu "
                                 "(%llu lines suppressed before it)",
                                 len, (unsigned long long)offset, (unsigned long long)missed);
                return;
        }
        memcpy(&d->pending_db, data, 4);
        d->rang = true;
}

const struct io_device_ops sprout_db_ops = {
    .name = "sprout-doorbell",
    .io = doorbell_io,
};

bool log_bucket_take(struct log_bucket *b, int64_t now_ns, int64_t units, int64_t per_s,
                     int64_t burst, uint64_t *resumed)
{
        const int64_t unit = 1000000000LL / per_s, cost = units * unit, full = burst * unit;
        *resumed = 0;
        if (!b->primed) {
                b->primed = true;
                b->credit_ns = full;
                b->last_ns = now_ns;
        } else if (now_ns > b->last_ns) {
                /* Clamped before the add, so a long quiet spell cannot overflow the credit. */
                int64_t gained = now_ns - b->last_ns;
                b->credit_ns += gained < full ? gained : full;
                if (b->credit_ns > full)
                        b->credit_ns = full;
                b->last_ns = now_ns;
        }
        if (b->credit_ns < cost) {
                b->suppressed++;
                b->refused++;
                return false;
        }
        b->credit_ns -= cost;
        *resumed = b->suppressed;
        b->suppressed = 0;
        return true;
}

/* Guest text as one line: read once from the mailbox, a trailing newline dropped, and everything
 * a terminal or a JSON encoder would act on escaped (sprout_escape). */
static void copy_guest_text(char *out, size_t cap, const volatile uint8_t *src, uint32_t len)
{
        uint8_t raw[SPROUT_MB_LOG_SIZE];
        size_t n = len < sizeof(raw) ? len : sizeof(raw);
        for (size_t i = 0; i < n; i++)
                raw[i] = src[i];
        if (n && raw[n - 1] == '\n')
                n--;
        sprout_escape(out, cap, raw, n, 0);
}

/* A LOG ring: its text read once, then each line of it one console line behind "[guest] ", so
 * that a guest's text can never pass for the host's own notes ("[sprout] ..."), however it is cut.
 * The log budget is charged with what reaches the console. */
static void log_guest_lines(struct sprout_vm *vm, const volatile uint8_t *src, uint32_t len)
{
        static const char prefix[] = "[guest] ";
        uint8_t raw[SPROUT_MB_LOG_SIZE];
        size_t n = len < sizeof(raw) ? len : sizeof(raw); /* a lying length only truncates */
        for (size_t i = 0; i < n; i++)
                raw[i] = src[i];
        if (n && raw[n - 1] == '\n')
                n--;
        int64_t lines = 1;
        for (size_t i = 0; i < n; i++)
                lines += raw[i] == '\n';
        uint64_t missed;
        if (!log_bucket_take(&vm->sdev.log_rl, sprout_mono_ns(),
                             (int64_t)n + lines * (int64_t)sizeof(prefix), GUEST_LOG_PER_S,
                             GUEST_LOG_BURST, &missed))
                return;
        if (missed) {
                char note[96];
                int k = snprintf(note, sizeof(note), "[sprout] %llu guest log lines suppressed\n",
                                 (unsigned long long)missed);
                console_log_put(&vm->console, note, (size_t)k);
        }
        char text[4 * SPROUT_MB_LOG_SIZE + 1]; /* escaped: up to 4 bytes a byte */
        for (size_t at = 0; at <= n;) {
                const uint8_t *nl = memchr(raw + at, '\n', n - at);
                size_t end = nl ? (size_t)(nl - raw) : n;
                sprout_escape(text, sizeof(text), raw + at, end - at, 0);
                console_log_put(&vm->console, prefix, sizeof(prefix) - 1);
                console_log_put(&vm->console, text, strlen(text));
                console_log_put(&vm->console, "\n", 1);
                at = end + 1;
        }
}

int sprout_dev_handle(struct sprout_vm *vm, uint32_t db, struct sprout_vm_event *ev)
{
        volatile struct sprout_mailbox_hdr *h =
            (volatile struct sprout_mailbox_hdr *)vm->sdev.mailbox;
        const volatile uint8_t *log_area = vm->sdev.mailbox + SPROUT_MB_LOG_OFF;
        uint32_t cmd = SPROUT_DB_CMD(db), arg = SPROUT_DB_ARG(db);

        memset(ev, 0, sizeof(*ev));
        ev->arg = arg;
        switch (cmd) {
        case SPROUT_CMD_READY: {
                uint32_t ver = h->abi_version;
                ev->abi_version = ver;
                if ((ver >> 16) != SPROUT_ABI_MAJOR) {
                        ev->kind = SPROUT_EV_PANIC;
                        ev->arg = SPROUT_PANIC_ABI;
                        snprintf(ev->detail, sizeof(ev->detail),
                                 "guest speaks sprout ABI %u.%u, this VMM speaks %u.%u", ver >> 16,
                                 ver & 0xffff, SPROUT_ABI_MAJOR, SPROUT_ABI_MINOR);
                        return 1;
                }
                /* How far the guest's wall clock is from ours: KVM's kvmclock epoch can be
                 * off by a second on some hosts, and a clone inherits it. 0 means unknown. */
                uint64_t g = h->guest_realtime_ns;
                int64_t host = sprout_real_ns(), skew = 0;
                /* g is the guest's word: a value that overflows the difference is no skew. */
                if (g > INT64_MAX || __builtin_sub_overflow((int64_t)g, host, &skew))
                        skew = 0;
                vm->clock_skew_ns = g ? skew : 0;
                vm->guest_abi = ver; /* what the VMM may send it (warm-ups need 1.3) */
                /* Informational only (the guest decides how it re-seeds): a 1.3 guest left the
                 * word zero, and nothing the VMM does depends on it. */
                vm->guest_features = (ver & 0xffffu) >= 4 ? h->guest_features : 0;
                ev->kind = SPROUT_EV_READY;
                return 1;
        }
        case SPROUT_CMD_DONE: {
                uint32_t n = h->resp_len;
                if (n > SPROUT_MB_RESP_SIZE) {
                        ev->kind = SPROUT_EV_PANIC;
                        snprintf(ev->detail, sizeof(ev->detail),
                                 "guest reported a %u-byte response; the response area holds %llu",
                                 n, (unsigned long long)SPROUT_MB_RESP_SIZE);
                        return 1;
                }
                ev->kind = SPROUT_EV_DONE;
                ev->arg = n;
                return 1;
        }
        case SPROUT_CMD_LOG:
                log_guest_lines(vm, log_area, h->log_len);
                return 0;
        case SPROUT_CMD_PANIC: {
                uint32_t n = h->log_len;
                if (n > SPROUT_MB_LOG_SIZE)
                        n = SPROUT_MB_LOG_SIZE;
                ev->kind = SPROUT_EV_PANIC;
                copy_guest_text(ev->detail, sizeof(ev->detail), log_area, n);
                return 1;
        }
        case SPROUT_CMD_POWEROFF:
                vm->stopped = true;
                snprintf(vm->stop_reason, sizeof(vm->stop_reason), "guest powered off");
                ev->kind = SPROUT_EV_STOPPED;
                snprintf(ev->detail, sizeof(ev->detail), "%s", vm->stop_reason);
                return 1;
        default: {
                /* One guest once rang 86,000 of these in a second: the log is the host's. */
                uint64_t missed;
                if (!log_bucket_take(&vm->sdev.warn_rl, sprout_mono_ns(), 1, GUEST_WARN_PER_S,
                                     GUEST_WARN_BURST, &missed))
                        return 0;
                if (missed)
                        sp_warn("sprout device: %llu lines about this guest's rings suppressed",
                                (unsigned long long)missed);
                sp_warn("sprout device: guest rang unknown command %u (arg %u); ignored", cmd, arg);
                return 0;
        }
        }
}
