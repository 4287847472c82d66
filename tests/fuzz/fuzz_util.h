/* What the fuzz targets share: scratch directories on tmpfs, whole-file writes, a quiet log and a
 * process held to one CPU (the targets must not take more than one core of a shared machine). */
#ifndef SPROUT_FUZZ_UTIL_H
#define SPROUT_FUZZ_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/err.h"
#include "sprout/log.h"

/* SPROUT_FUZZ_VERBOSE=1: say what each run came to, to check what a seed reaches. */
static int fuzz_verbose;

static inline void fuzz_note(const char *what, int rc, const struct sprout_err *err)
{
        if (fuzz_verbose)
                fprintf(stderr, "fuzz: %s: %d %s\n", what, rc, rc < 0 && err ? err->msg : "");
}

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

/* Removes dir and everything under it, symlinks as links. */
static inline void fuzz_rm_tree(const char *dir)
{
        nftw(dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directories, removed when the fuzzer exits normally (a crash leaves them to look
 * at). */
static char *fuzz_dirs[4];

static inline void fuzz_rm_dirs(void)
{
        for (unsigned i = 0; i < sizeof(fuzz_dirs) / sizeof(fuzz_dirs[0]); i++)
                if (fuzz_dirs[i])
                        fuzz_rm_tree(fuzz_dirs[i]);
}

/* A new directory under $TMPDIR, else /dev/shm: every input is written out, so tmpfs keeps the
 * executions per second up and the disk out of it. Aborts on failure: a harness that cannot make
 * its scratch space has nothing to test. */
static inline char *fuzz_mkdtemp(const char *tag)
{
        const char *base = getenv("TMPDIR");
        char *d;
        if (asprintf(&d, "%s/sprout-fuzz-%s.XXXXXX", base && *base ? base : "/dev/shm", tag) < 0 ||
            !mkdtemp(d)) {
                perror("fuzz: scratch directory");
                abort();
        }
        for (unsigned i = 0; i < sizeof(fuzz_dirs) / sizeof(fuzz_dirs[0]); i++) {
                if (!fuzz_dirs[i]) {
                        if (i == 0)
                                atexit(fuzz_rm_dirs);
                        fuzz_dirs[i] = d;
                        break;
                }
        }
        return d;
}

static inline void fuzz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0) {
                perror(path);
                abort();
        }
}

/* Once, from LLVMFuzzerInitialize: hostile inputs make the libraries log on every run, and their
 * worker pools size themselves by the CPUs they may use. */
static inline void fuzz_setup(void)
{
        fuzz_verbose = getenv("SPROUT_FUZZ_VERBOSE") != NULL;
        sprout_log_level = fuzz_verbose ? SPROUT_LOG_DEBUG : -1;
        int cpu = sched_getcpu();
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu < 0 ? 0 : cpu, &one);
        sched_setaffinity(0, sizeof(one), &one);
}

#endif
