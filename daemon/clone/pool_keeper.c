/* One wake-up of a pool thread (docs/architecture.md "Ready clones"): top up a base's shells and
 * ready clones, and decide how long to wait after a failure. The daemon's in-process bases and the
 * workers' bases both keep their pools with it, so they retry and give up the same way. */
#include <errno.h>

#include "sprout/clone.h"
#include "sprout/log.h"

static int64_t failed(struct sprout_pool_keeper *k)
{
        k->failures++;
        k->retry_ms = k->retry_ms ? k->retry_ms * 2 : SPROUT_KEEP_RETRY_MIN_MS;
        if (k->retry_ms > SPROUT_KEEP_RETRY_MAX_MS)
                k->retry_ms = SPROUT_KEEP_RETRY_MAX_MS;
        return k->retry_ms;
}

int64_t sprout_base_keep_pools(struct sprout_base *b, unsigned shells, unsigned ready_floor,
                               unsigned ready_cap, struct sprout_pool_keeper *k,
                               struct sprout_err *err)
{
        if (sprout_base_prepare(b, shells, err) < 0)
                return failed(k);
        if (ready_cap && !k->ready_off) {
                unsigned n = sprout_base_ready_target(b, ready_floor, ready_cap);
                int r = sprout_base_prepare_ready(b, n, err);
                if (r == -ENOTSUP) {
                        k->ready_off = true; /* the guest cannot warm up (ABI < 1.3): for good */
                        *err = (struct sprout_err){0};
                } else if (r < 0) {
                        if (++k->ready_failures >= SPROUT_KEEP_READY_GIVE_UP) {
                                /* A guest that fails every warm-up only burns CPU making clones it
                                 * then destroys: fresh one-shots restore on their own path. */
                                sp_warn("%u ready clones in a row failed their warm-up; the pool "
                                        "makes no more (last: %s)",
                                        k->ready_failures, err->msg);
                                k->ready_off = true;
                                struct sprout_err ignored = {0};
                                (void)sprout_base_prepare_ready(b, 0, &ignored);
                        }
                        return failed(k);
                } else {
                        k->ready_failures = 0;
                }
                /* Each ready clone used a shell: top the shells up again. */
                if (sprout_base_prepare(b, shells, err) < 0)
                        return failed(k);
        }
        k->failures = 0;
        k->retry_ms = 0;
        return 0;
}
