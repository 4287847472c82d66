/* Private memory of mappings, from one pass over /proc/self/smaps: the Anonymous pages of a
 * MAP_PRIVATE file mapping are the copies its writes made, so this is what a clone costs. */
#ifndef SPROUT_SMAPS_H
#define SPROUT_SMAPS_H

#include <stddef.h>
#include <stdint.h>

/* For each of the n mappings starting at starts[i], out[i] = its Anonymous bytes (0 when no
 * mapping starts there). One read of smaps whatever n is: reading it walks every mapping of the
 * process, so asking per mapping would cost O(n^2) for a listing. -errno when smaps is unreadable
 * (out is then all 0). */
int sprout_smaps_anon(const uintptr_t *starts, size_t n, uint64_t *out);

#endif
