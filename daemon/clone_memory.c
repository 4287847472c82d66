/* Private memory of many clones in one pass over /proc/self/smaps: reading smaps walks every
 * mapping of the process, so asking per clone would cost O(clones^2) for a listing. */
#include <stdio.h>
#include <stdlib.h>

#include "sproutd.h"
#include "vmm_internal.h"

void clones_private_bytes(struct dclone **cs, size_t n, uint64_t *out)
{
        for (size_t i = 0; i < n; i++)
                out[i] = 0;
        if (!n)
                return;
        FILE *f = fopen("/proc/self/smaps", "re");
        if (!f)
                return;
        char line[256];
        size_t cur = n; /* the clone whose RAM mapping we are in, or n for none */
        while (fgets(line, sizeof(line), f)) {
                unsigned long long a, b, kb;
                if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
                        cur = n;
                        for (size_t i = 0; i < n; i++)
                                if ((uintptr_t)sprout_clone_vm(cs[i]->c)->ram == a) {
                                        cur = i;
                                        break;
                                }
                        continue;
                }
                /* Anonymous pages of a private file mapping are the clone's own copies. */
                if (cur < n && sscanf(line, "Anonymous: %llu kB", &kb) == 1)
                        out[cur] = kb * 1024;
        }
        fclose(f);
}
