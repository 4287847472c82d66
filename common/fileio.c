/* Exact reads and writes over short transfers and EINTR (include/sprout/fileio.h). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "sprout/fileio.h"

int sprout_pread_exact(int fd, void *buf, size_t len, off_t off)
{
        uint8_t *p = buf;
        size_t done = 0;
        while (done < len) {
                ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t)n;
        }
        return 0;
}

int sprout_write_exact(int fd, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        size_t done = 0;
        while (done < len) {
                ssize_t n = write(fd, p + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t)n;
        }
        return 0;
}

int sprout_read_capped(int fd, size_t cap, char **out, size_t *len)
{
        char *buf = malloc(cap + 1);
        size_t n = 0;
        if (!buf)
                return -ENOMEM;
        /* One byte past the cap, so an oversized file is refused rather than cut. */
        while (n <= cap) {
                ssize_t r = read(fd, buf + n, cap + 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        int e = -errno;
                        free(buf);
                        return e;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        if (n > cap) {
                free(buf);
                return -EFBIG;
        }
        buf[n] = '\0';
        *out = buf;
        *len = n;
        return 0;
}
