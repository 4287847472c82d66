/* Helpers shared by the snapshot tests; see snap_test.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_test.h"

const char *t_tmpdir(const char *tag)
{
        static char buf[4][256];
        static int n;
        const char *base = getenv("TMPDIR");
        char *d = buf[n++ % 4];
        snprintf(d, sizeof(buf[0]), "%s/sprout-%s.XXXXXX", base && *base ? base : "/tmp", tag);
        if (!mkdtemp(d)) {
                perror("mkdtemp");
                abort();
        }
        return d;
}

void t_rmdir(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
        rmdir(dir);
}

int t_count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

int t_count_fds(void)
{
        return t_count_entries("/proc/self/fd") - 1; /* the DIR's own fd */
}

uint64_t t_rand(uint64_t *s)
{
        /* splitmix64: fast, and good enough to defeat compression. */
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

void t_fill_random(void *p, size_t n, uint64_t seed)
{
        uint8_t *b = p;
        /* Scramble the seed: splitmix streams from seeds a step apart would be shifted copies. */
        uint64_t s = seed;
        s = t_rand(&s);
        for (size_t i = 0; i < n; i += 8) {
                uint64_t v = t_rand(&s);
                memcpy(b + i, &v, n - i < 8 ? n - i : 8);
        }
}

void t_fill_text(void *p, size_t n, uint64_t seed)
{
        static const char *words[] = {"import ", "def ",    "return ", "self",   ".value",
                                      " = ",     "None",    "(x, y)",  "\n    ", "json",
                                      "http",    "0x7f",    "lambda ", ": ",     "for i in range(",
                                      "):",      "\"key\"", "True",    "class ", "{}"};
        uint8_t *b = p;
        uint64_t s = seed;
        s = t_rand(&s);
        size_t i = 0;
        while (i < n) {
                const char *w = words[t_rand(&s) % (sizeof(words) / sizeof(words[0]))];
                size_t l = strlen(w);
                if (l > n - i)
                        l = n - i;
                memcpy(b + i, w, l);
                i += l;
        }
}

uint8_t *t_slurp(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        struct stat sb;
        fstat(fd, &sb);
        uint8_t *buf = malloc((size_t)sb.st_size + 1);
        size_t done = 0;
        while (buf && done < (size_t)sb.st_size) {
                ssize_t n = read(fd, buf + done, (size_t)sb.st_size - done);
                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        close(fd);
        *len = done;
        return buf;
}

int t_spit(const char *path, const void *buf, size_t len)
{
        /* A fresh inode: truncating and rewriting one makes ext4 (auto_da_alloc) flush on close,
         * which turns thousands of forged files into thousands of disk writes. */
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        const uint8_t *p = buf;
        size_t done = 0;
        while (done < len) {
                ssize_t n = write(fd, p + done, len - done);
                if (n <= 0) {
                        close(fd);
                        return -EIO;
                }
                done += (size_t)n;
        }
        close(fd);
        return 0;
}

void t_reseal(uint8_t *file)
{
        struct snap_fmt_header *h = t_hdr(file);
        h->index_checksum = snapfmt_hash(file + h->index_off, h->index_len);
        h->header_checksum = snapfmt_header_hash(h, file + h->sections_off, h->sections_len);
}

struct snap_write_opts t_opts(const char *path, const void *ram, uint64_t ram_size)
{
        struct snap_write_opts o = {
            .path = path,
            .host = {.host_kind = 1,
                     .cpu_vendor = "GenuineIntel",
                     .family = 6,
                     .model = 85,
                     .stepping = 7,
                     .kvm_api = 12},
            .vcpus = 1,
            .ram = ram,
            .ram_size = ram_size,
        };
        return o;
}

bool t_contains(const char *haystack, const char *needle)
{
        return haystack && strstr(haystack, needle) != NULL;
}
