/* Crash safety of snap_write: a full disk (a 1 MiB tmpfs in a private mount namespace), a cancelled
 * write, a writer killed mid-way and a missing directory never leave a file under the final name;
 * the failures that return also leave no temporary file. Needs root for unshare and mount. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/check.h"
#include "snap_test.h"

#define MiB (1ull << 20)

static bool exists(const char *p)
{
        struct stat sb;
        return stat(p, &sb) == 0;
}

static void disk_full(void)
{
        const char *dir = t_tmpdir("snap-enospc");
        char path[512];
        snprintf(path, sizeof(path), "%s/full.snap", dir);

        int rc = unshare(CLONE_NEWNS);
        CHECK(rc == 0, "unshare(CLONE_NEWNS): %s (this test needs root)", strerror(errno));
        if (rc)
                return;
        /* Keep the tmpfs mount out of the parent namespace. */
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %s",
              strerror(errno));
        rc = mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700");
        CHECK(rc == 0, "mount 1 MiB tmpfs on %s: %s", dir, strerror(errno));
        if (rc)
                return;

        /* RAM that does not compress: the chunks overflow the file system. */
        uint64_t size = 8 * MiB;
        uint8_t *ram = malloc(size);
        t_fill_random(ram, size, 77);
        struct snap_write_opts o = t_opts(path, ram, size);
        o.threads = 2;
        struct sprout_err err = {0};
        rc = snap_write(&o, NULL, &err);
        CHECK(rc == -ENOSPC, "full disk (chunks): rc %d, want -ENOSPC: %s", rc, err.msg);
        CHECK(t_contains(err.msg, "No space left on device") &&
                  t_contains(err.msg, "writing the frame of RAM chunk"),
              "full disk (chunks): message \"%s\"", err.msg);
        CHECK(!exists(path) && t_count_entries(dir) == 0,
              "full disk (chunks): %d entries left in %s", t_count_entries(dir), dir);

        /* A section bigger than the file system fails before any chunk. */
        struct snap_section big = {.tag = 1, .data = ram, .len = 2 * MiB};
        o = t_opts(path, ram, 64 << 10);
        o.sections = &big;
        o.nsections = 1;
        sprout_err_clear(&err);
        rc = snap_write(&o, NULL, &err);
        CHECK(rc == -ENOSPC && t_contains(err.msg, "sections area") &&
                  t_contains(err.msg, "No space left on device"),
              "full disk (sections): rc %d \"%s\"", rc, err.msg);
        CHECK(t_count_entries(dir) == 0, "full disk (sections): %d entries left",
              t_count_entries(dir));

        /* The same file system still takes a snapshot that fits. */
        memset(ram + 64 * 1024, 0, size - 64 * 1024);
        o = t_opts(path, ram, size);
        sprout_err_clear(&err);
        rc = snap_write(&o, NULL, &err);
        CHECK(rc == 0 && exists(path) && t_count_entries(dir) == 1,
              "small snapshot on the tmpfs: %s", err.msg);
        struct snap_file *f;
        CHECK(snap_open(path, &f, &err) == 0, "open on the tmpfs: %s", err.msg);
        if (f) {
                CHECK(snap_verify(f, &err) == 0, "verify on the tmpfs: %s", err.msg);
                snap_close(f);
        }
        free(ram);
        umount(dir);
        t_rmdir(dir);
}

static int cancel_half(void *ctx, uint64_t done, uint64_t total)
{
        (void)ctx;
        return done * 2 >= total;
}

static void cancelled(void)
{
        const char *dir = t_tmpdir("snap-cancel");
        char path[512];
        snprintf(path, sizeof(path), "%s/c.snap", dir);
        uint64_t size = 32 * MiB;
        uint8_t *ram = malloc(size);
        t_fill_random(ram, size, 3);
        struct snap_write_opts o = t_opts(path, ram, size);
        o.progress = cancel_half;
        struct sprout_err err = {0};
        int rc = snap_write(&o, NULL, &err);
        CHECK(rc == -ECANCELED && t_contains(err.msg, "cancelled"), "cancel: rc %d \"%s\"", rc,
              err.msg);
        CHECK(t_count_entries(dir) == 0, "cancel: %d entries left", t_count_entries(dir));
        free(ram);
        t_rmdir(dir);
}

static int die_half(void *ctx, uint64_t done, uint64_t total)
{
        (void)ctx;
        if (done * 2 >= total)
                raise(SIGKILL);
        return 0;
}

/* A writer killed mid-way: the old snapshot under the name survives intact; the temporary file
 * stays behind (nothing runs to remove it), with its distinct name. */
static void killed(void)
{
        const char *dir = t_tmpdir("snap-kill");
        char path[512];
        snprintf(path, sizeof(path), "%s/k.snap", dir);
        uint64_t size = 32 * MiB;
        uint8_t *ram = malloc(size);
        t_fill_random(ram, size, 4);
        uint8_t uuid[16] = {1, 2, 3};
        struct snap_write_opts o = t_opts(path, ram, 16 * MiB);
        o.uuid = uuid;
        struct sprout_err err = {0};
        CHECK(snap_write(&o, NULL, &err) == 0, "kill: first snapshot: %s", err.msg);

        pid_t pid = fork();
        if (pid == 0) {
                struct snap_write_opts o2 = t_opts(path, ram, size);
                o2.progress = die_half;
                struct sprout_err e2 = {0};
                snap_write(&o2, NULL, &e2);
                _exit(3); /* not reached: the callback kills us */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill: child status 0x%x",
              status);

        struct snap_file *f = NULL;
        int rc = snap_open(path, &f, &err);
        CHECK(rc == 0, "kill: the old snapshot must still open: %s", err.msg);
        if (f) {
                CHECK(memcmp(snap_get_info(f)->uuid, uuid, 16) == 0 &&
                          snap_get_info(f)->ram_size == 16 * MiB,
                      "kill: the name now holds something else");
                CHECK(snap_verify(f, &err) == 0, "kill: old snapshot verify: %s", err.msg);
                snap_close(f);
        }
        CHECK(t_count_entries(dir) == 2,
              "kill: want the snapshot and one leftover temp file, have %d", t_count_entries(dir));
        free(ram);
        t_rmdir(dir);
}

static void no_directory(void)
{
        const char *dir = t_tmpdir("snap-nodir");
        char path[512];
        snprintf(path, sizeof(path), "%s/missing/x.snap", dir);
        uint8_t ram[4096] = {1};
        struct snap_write_opts o = t_opts(path, ram, sizeof(ram));
        struct sprout_err err = {0};
        int rc = snap_write(&o, NULL, &err);
        CHECK(rc == -ENOENT && t_contains(err.msg, "cannot open snapshot directory") &&
                  t_contains(err.msg, "missing"),
              "missing directory: rc %d \"%s\"", rc, err.msg);
        CHECK(t_count_entries(dir) == 0, "missing directory: %d entries created",
              t_count_entries(dir));
        t_rmdir(dir);
}

int main(void)
{
        int fds = t_count_fds();
        cancelled();
        killed();
        no_directory();
        disk_full();
        CHECK(t_count_fds() == fds, "fd leak: %d open, %d at start", t_count_fds(), fds);
        return check_finish();
}
