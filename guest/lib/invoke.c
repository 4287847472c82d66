/* The protocol steps of the guest library: READY, LOG, PANIC, the request/response loop and the
 * answering of warm-ups. No system calls here: these run on the hot path of a restored clone. (A
 * new clone identity is applied after READY or DONE returns: identity.c, the one exception.) */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "sprout/guest.h"
#include "identity.h"

int guest_after_ring_slow(struct sprout_guest *g)
{
        for (;;) {
                uint32_t flags = *(volatile uint32_t *)&g->hdr->flags;
                if (flags & SPROUT_MBF_NEW_IDENTITY) {
                        int rc = guest_apply_identity(g);
                        if (rc < 0)
                                return rc;
                }
                if (!(flags & SPROUT_MBF_WARMUP))
                        return 0;
                /* A warm-up: the runtime's hook, then an empty answer; the next ring returns with
                 * the next request, which may be another warm-up. */
                if (g->on_warmup)
                        g->on_warmup(g->on_warmup_ctx);
                g->warmups++;
                g->hdr->flags &= ~SPROUT_MBF_WARMUP;
                g->hdr->resp_len = 0;
                sprout_guest_ring(g, SPROUT_CMD_DONE, 0);
                if (!(*(volatile uint32_t *)&g->hdr->flags &
                      (SPROUT_MBF_NEW_IDENTITY | SPROUT_MBF_WARMUP)))
                        return 0;
        }
}

void sprout_guest_on_warmup(struct sprout_guest *g, void (*fn)(void *ctx), void *ctx)
{
        g->on_warmup = fn;
        g->on_warmup_ctx = ctx;
}

int sprout_guest_ready(struct sprout_guest *g)
{
        if (!g->hdr)
                return -EBADF;
        struct timespec ts;
        g->hdr->abi_version = SPROUT_ABI_VERSION;
        g->hdr->guest_features = g->kernel_seeds ? SPROUT_GF_KERNEL_SEED : 0;
        /* vDSO: no system call. The host compares it with its own clock at the exit. */
        clock_gettime(CLOCK_REALTIME, &ts);
        g->hdr->guest_realtime_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        sprout_guest_ring(g, SPROUT_CMD_READY, 0);
        return guest_after_ring(g);
}

static uint32_t put_log(struct sprout_guest *g, const char *text, size_t len)
{
        if (len > SPROUT_MB_LOG_SIZE)
                len = SPROUT_MB_LOG_SIZE;
        memcpy(g->mb + SPROUT_MB_LOG_OFF, text, len);
        g->hdr->log_len = (uint32_t)len;
        return (uint32_t)len;
}

void sprout_guest_log(struct sprout_guest *g, const char *text, size_t len)
{
        put_log(g, text, len);
        sprout_guest_ring(g, SPROUT_CMD_LOG, 0);
}

void sprout_guest_panic(struct sprout_guest *g, uint32_t code, const char *text)
{
        if (!g->hdr) {
                /* Never opened (or open failed): the code alone, through the port. */
                (void)sprout_guest_ring_port(SPROUT_CMD_PANIC, code);
                return;
        }
        put_log(g, text, text ? strnlen(text, SPROUT_MB_LOG_SIZE) : 0);
        sprout_guest_ring(g, SPROUT_CMD_PANIC, code);
}

void sprout_guest_request(struct sprout_guest *g, const void **buf, uint32_t *len)
{
        /* Read the host's length once and clamp it: the area, not the host, bounds the read. */
        uint32_t n = *(volatile uint32_t *)&g->hdr->req_len;

        *len = n > SPROUT_MB_REQ_SIZE ? SPROUT_MB_REQ_SIZE : n;
        *buf = g->mb + SPROUT_MB_REQ_OFF;
}

void *sprout_guest_response_buf(struct sprout_guest *g, uint32_t *cap)
{
        *cap = SPROUT_MB_RESP_SIZE;
        return g->mb + SPROUT_MB_RESP_OFF;
}

int sprout_guest_done(struct sprout_guest *g, uint32_t len)
{
        if (len > SPROUT_MB_RESP_SIZE)
                return -EMSGSIZE;
        g->hdr->resp_len = len;
        sprout_guest_ring(g, SPROUT_CMD_DONE, 0);
        return guest_after_ring(g);
}

int sprout_guest_respond(struct sprout_guest *g, const void *buf, uint32_t len)
{
        uint8_t *area = g->mb + SPROUT_MB_RESP_OFF;

        if (len > SPROUT_MB_RESP_SIZE)
                return -EMSGSIZE;
        if (buf != area)
                memmove(area, buf, len);
        return sprout_guest_done(g, len);
}
