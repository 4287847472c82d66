/* Read and write exactly: loops over short transfers and EINTR so callers see all or an error. */
#ifndef SPROUT_FILEIO_H
#define SPROUT_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads exactly len bytes at off: 0, -EIO when the file ends first, or -errno. */
int sprout_pread_exact(int fd, void *buf, size_t len, off_t off);
/* Writes all len bytes: 0 or -errno. */
int sprout_write_exact(int fd, const void *buf, size_t len);
/* Reads the whole of fd (a regular file or a pipe) into a malloc'd, NUL-terminated buffer of at
 * most cap bytes: 0 and *out, *len, -EFBIG when there is more than cap (nothing is cut), -ENOMEM or
 * -errno. */
int sprout_read_capped(int fd, size_t cap, char **out, size_t *len);

#endif
