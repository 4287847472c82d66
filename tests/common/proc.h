/* What a leak test reads about its own process: open file descriptors and resident memory. */
#ifndef SPROUT_TEST_PROC_H
#define SPROUT_TEST_PROC_H

#include <dirent.h>
#include <stdio.h>

static inline int proc_count_fds(void)
{
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        while (d && readdir(d))
                n++;
        if (d)
                closedir(d);
        return n;
}

#ifdef __SANITIZE_ADDRESS__
/* compiler-rt and libsanitizer both export it: drains ASan's quarantine of freed blocks. */
void __sanitizer_purge_allocator(void);
#endif

/* Resident memory. Under ASan, freed blocks wait in its quarantine (up to 256 MiB) and would read
 * as growth: they are released first, so what remains is memory still in use. */
static inline long proc_rss_kib(void)
{
#ifdef __SANITIZE_ADDRESS__
        __sanitizer_purge_allocator();
#endif
        long pages = 0, rss = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
                rss = 0;
        if (f)
                fclose(f);
        return rss * 4;
}

#endif
