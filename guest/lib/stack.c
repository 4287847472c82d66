/* Stack priming for handlers: pre-fault stack pages before READY so no first touch happens after a
 * snapshot restore, where each costs a guest page fault. */
#include <alloca.h>
#include <stdint.h>

#include "sprout/guest.h"

__attribute__((noinline)) void sprout_guest_touch_stack(size_t bytes)
{
        /* Cap it: the default 8 MiB stack limit must never be what this call hits. */
        if (bytes > (size_t)4 << 20)
                bytes = (size_t)4 << 20;
        volatile uint8_t *p = alloca(bytes + 1);
        /* Top down, the way the stack grows, one store per page. */
        for (size_t off = bytes + 1; off > 0;) {
                off = off > 4096 ? off - 4096 : 0;
                p[off] = 0;
        }
}
