/* snap_load_ram(): materialise guest RAM as a sealed memfd, the "base" every clone maps
 * MAP_PRIVATE. The memfd is sized with ftruncate and only non-zero pages are written, so left-out
 * pages stay holes and cost no memory until something faults them in. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h> /* memfd_create */
#include <unistd.h>

#include "snapshot_internal.h"

int snap_load_ram(struct snap_file *f, unsigned threads, int *memfd, struct snap_load_stats *st,
                  struct sprout_err *err)
{
        double t0 = snap_now();
        uint64_t size = f->info.ram_size;
        struct snap_pool_result res;
        char name[64];
        const uint8_t *u = f->info.uuid;
        int rc;

        *memfd = -1;
        /* The name shows in /proc/PID/maps; the UUID prefix ties a mapping to its snapshot. */
        snprintf(name, sizeof(name), "sprout-base-%02x%02x%02x%02x", u[0], u[1], u[2], u[3]);
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "memfd_create for %s", f->path);
        if (ftruncate(fd, (off_t)size) < 0) {
                rc = sprout_err_errno(err, -errno, "ftruncate of the base memfd to %llu bytes",
                                      (unsigned long long)size);
                goto close_fd;
        }
        rc = snap_pool_run(f, threads, fd, &res, err);
        if (rc < 0)
                goto close_fd;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                rc = sprout_err_errno(err, -errno, "sealing the base memfd of %s", f->path);
                goto close_fd;
        }
        if (st) {
                st->read_bytes = res.read_bytes;
                st->written_bytes = res.written_bytes;
                st->threads = res.threads;
                st->seconds = snap_now() - t0;
                st->mb_per_s = st->seconds > 0 ? (double)size / (1 << 20) / st->seconds : 0;
        }
        *memfd = fd;
        return 0;
close_fd:
        close(fd);
        return rc;
}
