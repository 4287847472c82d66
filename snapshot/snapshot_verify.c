/* snap_verify(): the full integrity check for `sprout inspect`: every frame read, hashed,
 * decompressed and its content checksum checked, with nothing kept. */
#include "snapshot_internal.h"

int snap_verify(struct snap_file *f, struct sprout_err *err)
{
        struct snap_pool_result res;
        return snap_pool_run(f, 0, -1, &res, err);
}
