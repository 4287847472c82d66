/* Anonymous bytes per mapping from /proc/self/smaps (include/sprout/smaps.h). */
#include <errno.h>
#include <stdio.h>

#include "sprout/smaps.h"

int sprout_smaps_anon(const uintptr_t *starts, size_t n, uint64_t *out)
{
        for (size_t i = 0; i < n; i++)
                out[i] = 0;
        if (!n)
                return 0;
        FILE *f = fopen("/proc/self/smaps", "re");
        if (!f)
                return -errno;
        char line[256];
        size_t cur = n; /* the mapping we are in, or n for none of ours */
        while (fgets(line, sizeof(line), f)) {
                unsigned long long a, b, kb;
                if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
                        cur = n;
                        for (size_t i = 0; i < n; i++)
                                if (starts[i] == a) {
                                        cur = i;
                                        break;
                                }
                        continue;
                }
                if (cur < n && sscanf(line, "Anonymous: %llu kB", &kb) == 1)
                        out[cur] = kb * 1024;
        }
        fclose(f);
        return 0;
}
