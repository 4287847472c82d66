/* Private memory of many clones in one pass over /proc/self/smaps (common/smaps.c): asking per
 * clone would cost O(clones^2) for a listing. */
#include <stdlib.h>

#include "sprout/smaps.h"
#include "service.h"

void clones_private_bytes(struct dclone **cs, size_t n, uint64_t *out)
{
        uintptr_t *starts = n ? calloc(n, sizeof(*starts)) : NULL;
        if (!starts) {
                for (size_t i = 0; i < n; i++)
                        out[i] = 0;
                return;
        }
        for (size_t i = 0; i < n; i++)
                starts[i] = sprout_vm_ram_start(sprout_clone_vm(cs[i]->c));
        (void)sprout_smaps_anon(starts, n, out);
        free(starts);
}
