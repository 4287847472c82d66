/* File helpers for the image tests. Setup failures exit(2) here: this is test code, not library. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static void die(const char *what, const char *path)
{
        fprintf(stderr, "test setup: %s %s: %s\n", what, path, strerror(errno));
        exit(2);
}

char *tu_mkdtemp(const char *tag)
{
        const char *base = getenv("TMPDIR");
        char *p;
        if (asprintf(&p, "%s/sprout-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0)
                die("asprintf", tag);
        if (!mkdtemp(p))
                die("mkdtemp", p);
        return p;
}

char *tu_path(const char *dir, const char *name)
{
        char *p;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                die("asprintf", name);
        return p;
}

void tu_write(const char *dir, const char *name, const char *text, size_t len)
{
        char *p = tu_path(dir, name);
        if (len == (size_t)-1)
                len = strlen(text);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("open", p);
        if (write(fd, text, len) != (ssize_t)len)
                die("write", p);
        close(fd);
        free(p);
}

char *tu_read(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap + 1);
        size_t r;
        while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
                n += r;
                if (n == cap) {
                        char *nb = realloc(buf, cap * 2 + 1);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                                break;
                        }
                        buf = nb;
                        cap *= 2;
                }
        }
        fclose(f);
        if (buf) {
                buf[n] = '\0';
                *len = n;
        }
        return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void tu_rmtree(const char *dir)
{
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}
