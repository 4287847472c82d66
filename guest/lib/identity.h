/* The identity step run after a ring returns. Internal to the guest library. */
#ifndef SPROUT_GUEST_IDENTITY_H
#define SPROUT_GUEST_IDENTITY_H

#include "sprout/guest.h"

/* Apply the identity in the header (docs/guest-protocol.md): 0, or a negative errno after ringing
 * PANIC (SPROUT_PANIC_IDENTITY). */
int guest_apply_identity(struct sprout_guest *g);

/* The rare case of guest_after_ring: a new identity and/or warm-ups to answer (invoke.c). */
int guest_after_ring_slow(struct sprout_guest *g);

/* After every ring that hands the vCPU back with a request: one load when nothing is new. */
static inline int guest_after_ring(struct sprout_guest *g)
{
        if (__builtin_expect(g->hdr->flags & (SPROUT_MBF_NEW_IDENTITY | SPROUT_MBF_WARMUP), 0))
                return guest_after_ring_slow(g);
        return 0;
}

#endif
