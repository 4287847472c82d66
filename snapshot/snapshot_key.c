/* The authenticator key: its identifier, and the key file a daemon keeps it in (created once with
 * random bytes, then only read, and refused when anyone else could have read or replaced it). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_internal.h"

void snap_key_id(const struct snap_key *key, uint8_t id[8])
{
        _Static_assert(SNAP_KEY_ID_LEN == 8, "snap_key_id's signature says 8");
        if (sodium_init() < 0)
                memset(id, 0, 8); /* cannot happen once a key exists: loading one initialised it */
        else
                snapfmt_key_id(key, id);
}

void snap_key_wipe(struct snap_key *key)
{
        sodium_memzero(key, sizeof(*key));
}

static int read_key(int fd, const char *path, struct snap_key *key, struct sprout_err *err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return sprout_err_errno(err, -errno, "%s: fstat", path);
        if (!S_ISREG(st.st_mode))
                return sprout_err_set(err, -EINVAL, "%s: the snapshot key is not a regular file",
                                      path);
        if (st.st_uid != geteuid())
                return sprout_err_set(err, -EPERM,
                                      "%s: the snapshot key belongs to uid %u, not to this "
                                      "process's %u",
                                      path, (unsigned)st.st_uid, (unsigned)geteuid());
        if (st.st_mode & 077)
                return sprout_err_set(err, -EPERM,
                                      "%s: the snapshot key has mode %04o: others may have read "
                                      "it; expected 0600 (make a new key: snapshots under this "
                                      "one must then be imported again)",
                                      path, (unsigned)(st.st_mode & 07777));
        if (st.st_size != SNAP_KEY_BYTES)
                return sprout_err_set(err, -EINVAL,
                                      "%s: the snapshot key is %lld bytes, expected %u", path,
                                      (long long)st.st_size, SNAP_KEY_BYTES);
        size_t done = 0;
        while (done < SNAP_KEY_BYTES) {
                ssize_t n = pread(fd, key->k + done, SNAP_KEY_BYTES - done, (off_t)done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        snap_key_wipe(key);
                        return n < 0 ? sprout_err_errno(err, -errno, "%s: reading the key", path)
                                     : sprout_err_set(err, -EIO, "%s: the key file shrank", path);
                }
                done += (size_t)n;
        }
        return 0;
}

/* Random bytes into a temporary file beside path, fsynced, then linked (not renamed) to path: link
 * never replaces, so of two creators racing, one key wins and both use it. *won: this one did. */
static int create_key(const char *path, bool *won, struct sprout_err *err)
{
        char tmp[PATH_MAX], dir[PATH_MAX];
        struct snap_key k;
        uint32_t salt = randombytes_random();
        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%08x", path, (long)getpid(), salt) >=
                (int)sizeof(tmp) ||
            snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
                return sprout_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s: creating the snapshot key", tmp);
        randombytes_buf(k.k, sizeof(k.k));
        int rc = 0;
        ssize_t n = write(fd, k.k, sizeof(k.k));
        snap_key_wipe(&k);
        if (n != (ssize_t)sizeof(k.k))
                rc = n < 0 ? sprout_err_errno(err, -errno, "%s: writing the snapshot key", tmp)
                           : sprout_err_set(err, -EIO, "%s: short write of the snapshot key", tmp);
        else if (fsync(fd) < 0)
                rc = sprout_err_errno(err, -errno, "%s: fsync", tmp);
        close(fd);
        if (rc == 0) {
                if (link(tmp, path) == 0)
                        *won = true;
                else if (errno != EEXIST)
                        rc =
                            sprout_err_errno(err, -errno, "%s: linking the new snapshot key", path);
        }
        unlink(tmp);
        if (rc < 0)
                return rc;
        /* The name must survive a crash too, or snapshots written under the key would outlive it.
         */
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                if (fsync(dfd) < 0)
                        rc = sprout_err_errno(err, -errno, "fsync of the directory of %s", path);
                close(dfd);
        }
        return rc;
}

int snap_key_file_load(const char *path, bool create, struct snap_key *key, bool *created,
                       struct sprout_err *err)
{
        int rc = snap_crypto_init(err);
        if (created)
                *created = false;
        if (rc < 0)
                return rc;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT && create) {
                bool won = false;
                rc = create_key(path, &won, err);
                if (rc < 0)
                        return rc;
                if (created)
                        *created = won;
                fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        }
        if (fd < 0) {
                if (errno == ELOOP)
                        return sprout_err_set(err, -ELOOP, "%s: the snapshot key is a symlink",
                                              path);
                return sprout_err_errno(err, -errno, "%s: opening the snapshot key", path);
        }
        rc = read_key(fd, path, key, err);
        close(fd);
        return rc;
}
