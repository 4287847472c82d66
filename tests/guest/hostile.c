/* A guest handler that lies to the VMM: impossible lengths, unknown commands, odd-sized rings. The
 * VMM must survive every one, and report the lies it cannot ignore. Driven by tests/vmm/.
 * With SPROUT_HOSTILE=spin on the kernel command line it never rings READY: it logs "spinning" and
 * loops in user mode, for tests of deadlines that must hold however fast the host boots; with
 * SPROUT_HOSTILE=sleep it logs "sleeping" and sleeps for good instead (its vCPU halts). With
 * SPROUT_HOSTILE=pit it programs the PIT to tick as fast as it can before READY. With
 * SPROUT_HOSTILE=warmup the handler dies whenever a clone is warmed up, so no ready clone of it
 * can ever be made (the pools' give-up rule, tests/vmm/test_clone.c "keeper"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/io.h>

#include "sprout/guest.h"

static void die_on_warmup(void *ctx)
{
        (void)ctx;
        _exit(9);
}

int main(void)
{
        struct sprout_guest g;
        if (sprout_guest_open(&g) < 0)
                return 1;
        const char *mode = getenv("SPROUT_HOSTILE");
        if (mode && !strcmp(mode, "spin")) {
                static const char msg[] = "spinning";
                sprout_guest_log(&g, msg, sizeof(msg) - 1);
                for (volatile int spin = 1; spin;)
                        ;
        }
        if (mode && !strcmp(mode, "sleep")) {
                static const char msg[] = "sleeping";
                sprout_guest_log(&g, msg, sizeof(msg) - 1);
                for (;;)
                        pause();
        }
        if (mode && !strcmp(mode, "warmup"))
                sprout_guest_on_warmup(&g, die_on_warmup, NULL);
        if (mode && !strcmp(mode, "pit")) {
                /* PIT channel 0 periodic (mode 2) at the fastest rate: a clone restored with this
                 * would make KVM fire a host hrtimer every kvm.min_timer_period_us while idle. */
                if (ioperm(0x40, 4, 1) == 0) {
                        outb(0x34, 0x43); /* channel 0, lobyte/hibyte, mode 2 */
                        outb(2, 0x40);
                        outb(0, 0x40);
                        outb(0xe2, 0x43); /* read back channel 0's status */
                        unsigned st = inb(0x40);
                        static const char fmt[] = "pit: mode %u";
                        char msg[32];
                        int n = snprintf(msg, sizeof(msg), fmt, (st >> 1) & 7);
                        sprout_guest_log(&g, msg, (uint32_t)n);
                }
        }
        /* Before READY: every lie here must be survivable, and READY must still arrive. */
        g.hdr->log_len = 0xffffffffu; /* LOG with a length past the log area: truncated */
        sprout_guest_ring(&g, SPROUT_CMD_LOG, 0);
        sprout_guest_ring(&g, 0xee, 0xabcdef);  /* unknown command: ignored */
        outb(0x42, SPROUT_DOORBELL_PORT);       /* a 1-byte ring: ignored */
        outw(0x4242, SPROUT_DOORBELL_PORT + 2); /* a ring at the wrong offset: ignored */
        memcpy(g.mb + SPROUT_MB_LOG_OFF, "hostile\x01\x1b[31m", 13);
        g.hdr->log_len = 13;
        sprout_guest_ring(&g, SPROUT_CMD_LOG, 0); /* control bytes: escaped */
        if (sprout_guest_ready(&g) < 0)           /* a clone resumes here, its identity applied */
                return 1;
        /* After READY, each request gets a different lie, selected by its first byte. */
        for (;;) {
                const void *req;
                uint32_t len;
                sprout_guest_request(&g, &req, &len);
                /* The first byte picks the lie; through the API a body is JSON, so a string
                 * ("P") counts from after its quote. */
                const char *q = req;
                if (len > 1 && q[0] == '"')
                        q++, len--;
                char c = len ? *q : 0;
                if (c == 'B') { /* a response longer than the response area */
                        g.hdr->resp_len = 0xfffffff0u;
                        sprout_guest_ring(&g, SPROUT_CMD_DONE, 0);
                } else if (c == 'L') { /* loop forever: only the invoke timeout ends this */
                        for (volatile int spin = 1; spin;)
                                ;
                } else if (c == 'X') { /* the handler dies mid-request */
                        _exit(7);
                } else if (c == 'Z') {
                        /* Answer with a bare ring: the next resume skips the library's identity
                         * step, so a new identity given before the next request is never applied
                         * and that request is answered with SPROUT_MBF_NEW_IDENTITY still set. */
                        memcpy(g.mb + SPROUT_MB_RESP_OFF, "ok", 2);
                        g.hdr->resp_len = 2;
                        sprout_guest_ring(&g, SPROUT_CMD_DONE, 0);
                } else if (c == 'P') { /* PIT channel 0's mode, as this clone sees it */
                        outb(0xe2, 0x43);
                        char out[16];
                        int n = snprintf(out, sizeof(out), "pit %u", (inb(0x40) >> 1) & 7);
                        sprout_guest_respond(&g, out, (uint32_t)n);
                } else if (c == 'V') { /* READY again with a foreign ABI major */
                        g.hdr->abi_version = 0x7f0000u;
                        sprout_guest_ring(&g, SPROUT_CMD_READY, 0);
                } else {
                        sprout_guest_respond(&g, "ok", 2);
                }
        }
}
