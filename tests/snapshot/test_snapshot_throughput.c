/* Throughput print, not a benchmark gate: write and load a 256 MiB RAM image (half zero pages, a
 * quarter text-like, a quarter random) and an all-random one, each without and with the
 * authenticator (the +key lines: what the keyed BLAKE2b tags cost), checking only that the loaded
 * bytes match. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "snap_test.h"
#include "sprout/clock.h"

#define MiB  (1ull << 20)
#define SIZE (256 * MiB)

static void measure(const char *dir, const char *label, const uint8_t *ram,
                    const struct snap_key *key)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s.snap", dir, label);
        struct snap_write_opts o = t_opts(path, ram, SIZE);
        o.key = key;
        struct snap_write_stats ws;
        struct sprout_err err = {0};
        int rc = snap_write(&o, &ws, &err);
        CHECK(rc == 0, "%s: write: %s", label, err.msg);
        if (rc)
                return;
        struct snap_file *f;
        double t_open = sprout_mono_s();
        rc = snap_open_keyed(path, key, &f, &err);
        t_open = sprout_mono_s() - t_open;
        CHECK(rc == 0, "%s: open: %s", label, err.msg);
        if (rc)
                return;
        double t0 = sprout_mono_s();
        rc = snap_verify(f, &err);
        double tv = sprout_mono_s() - t0;
        CHECK(rc == 0, "%s: verify: %s", label, err.msg);
        printf("%-10s RAM %llu MiB, non-zero %llu MiB, file %.1f MiB (ratio %.2f of RAM)\n", label,
               (unsigned long long)(SIZE / MiB), (unsigned long long)(ws.nonzero_bytes / MiB),
               (double)ws.file_size / MiB, (double)ws.file_size / SIZE);
        printf(
            "%-10s write: %.3f s, %.0f MiB/s of RAM (default threads, level 3, fsync included)\n",
            label, ws.seconds, SIZE / MiB / ws.seconds);
        printf("%-10s open: %.3f ms\n", label, t_open * 1e3);
        printf("%-10s verify: %.3f s, %.0f MiB/s of RAM\n", label, tv, SIZE / MiB / tv);
        unsigned counts[] = {1, 0};
        for (unsigned k = 0; k < 2; k++) {
                int fd = -1;
                struct snap_load_stats ls;
                rc = snap_load_ram(f, counts[k], &fd, &ls, &err);
                CHECK(rc == 0, "%s: load: %s", label, err.msg);
                if (rc)
                        continue;
                struct stat sb;
                fstat(fd, &sb); /* before the compare: read faults on holes allocate pages */
                uint8_t *m = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
                CHECK(m != MAP_FAILED && memcmp(m, ram, SIZE) == 0, "%s: loaded RAM differs",
                      label);
                if (m != MAP_FAILED)
                        munmap(m, SIZE);
                printf("%-10s load (%u thread%s): %.3f s, %.0f MiB/s of RAM, %.0f MiB/s "
                       "decompressed, memfd holds %.1f MiB\n",
                       label, ls.threads, ls.threads == 1 ? "" : "s", ls.seconds, ls.mb_per_s,
                       ls.written_bytes / (double)MiB / ls.seconds, sb.st_blocks * 512.0 / MiB);
                close(fd);
        }
        snap_close(f);
        unlink(path);
}

int main(void)
{
        const char *dir = t_tmpdir("snap-tput");
        uint8_t *ram = calloc(1, SIZE);
        uint64_t s = 11;
        for (uint64_t off = 0; off < SIZE; off += SNAP_PAGE_SIZE) {
                uint64_t k = t_rand(&s) % 4;
                if (k == 2)
                        t_fill_text(ram + off, SNAP_PAGE_SIZE, s);
                else if (k == 3)
                        t_fill_random(ram + off, SNAP_PAGE_SIZE, s);
        }
        struct snap_key key;
        t_fill_random(key.k, sizeof(key.k), 99);
        measure(dir, "mixed", ram, NULL);
        measure(dir, "mixed+key", ram, &key);
        t_fill_random(ram, SIZE, 12);
        measure(dir, "random", ram, NULL);
        measure(dir, "random+key", ram, &key);
        free(ram);
        t_rmdir(dir);
        return check_finish();
}
