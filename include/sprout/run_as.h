/* Running a piece of work with another user's credentials, so a file a client names is opened with
 * the client's rights and never the daemon's (docs/api.md, "Files a request names"). */
#ifndef SPROUT_RUN_AS_H
#define SPROUT_RUN_AS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPROUT_CREDS_MAX_GROUPS 64

/* Whose rights: a uid, its primary gid and its supplementary groups. */
struct sprout_creds {
        uid_t uid;
        gid_t gid;
        size_t ngroups; /* at most SPROUT_CREDS_MAX_GROUPS */
        gid_t groups[SPROUT_CREDS_MAX_GROUPS];
};

/*
 * Runs fn(arg) on a new thread that holds exactly who's credentials (and, for a non-root who, no
 * capabilities), and returns what fn returned. When the process already is who (uid and gid), the
 * thread keeps them. -EPERM when the process may not become who (a daemon not running as root);
 * -ETIMEDOUT when fn has not returned within timeout_ms (a file system that hangs): the thread is
 * then left to finish on its own and calls abandon(arg, result) when it does, so arg and whatever
 * fn made belong to abandon from then on. The caller's thread and the rest of the process keep
 * their credentials throughout: Linux credentials are per thread, and the raw system calls used
 * here change only the calling thread (glibc's setresuid would change all of them).
 */
int sprout_run_as(const struct sprout_creds *who, int64_t timeout_ms, int (*fn)(void *arg),
                  void (*abandon)(void *arg, int result), void *arg);

#endif
