/* The API socket: a Unix stream socket created mode 0660 (never world-writable: whoever can write
 * to it can run code in clones). A socket file left by a daemon that died is detected (nothing
 * accepts a connection on it) and replaced; one a live daemon serves is left alone. */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sprout/log.h"
#include "api.h"

static int group_id(const char *name, gid_t *gid, struct sprout_err *err)
{
        struct group gr, *res = NULL;
        char buf[4096];
        int r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
        if (r || !res)
                return sprout_err_set(err, -ENOENT, "no group '%s'", name);
        *gid = gr.gr_gid;
        return 0;
}

/* Whether something accepts connections at addr; a refused connect means a stale file. */
static int probe(const struct sockaddr_un *addr)
{
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        int r = connect(s, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : -errno;
        close(s);
        return r;
}

/* Whoever may write the socket's directory may replace the socket with one of their own: refuse a
 * directory others can write to, unless it is sticky (/tmp), where they cannot remove ours. */
static int socket_dir_safe(const char *path, struct sprout_err *err)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        struct stat st;
        if (stat(dir, &st) < 0)
                return sprout_err_errno(err, -errno, "the socket's directory %s", dir);
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
                return sprout_err_set(
                    err, -EPERM,
                    "the socket's directory %s is writable by others (mode %04o): "
                    "anyone there could replace the socket; use chmod go-w",
                    dir, (unsigned)(st.st_mode & 07777));
        return 0;
}

static int bind_socket(int s, const struct sockaddr_un *addr)
{
        /* The umask makes bind create the file 0660 at once: no window with a wider mode. */
        mode_t old = umask(0117);
        int r = bind(s, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : -errno;
        umask(old);
        return r;
}

int api_socket_listen(const char *path, const char *group, int *fd, struct sprout_err *err)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        gid_t gid = 0;
        int r;

        if (strlen(path) >= sizeof(addr.sun_path))
                return sprout_err_set(err, -ENAMETOOLONG, "socket path %s is too long", path);
        if (group[0] && (r = group_id(group, &gid, err)) < 0)
                return r;
        if ((r = socket_dir_safe(path, err)) < 0)
                return r;
        memcpy(addr.sun_path, path, strlen(path) + 1);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return sprout_err_errno(err, -errno, "socket");
        r = bind_socket(s, &addr);
        if (r == -EADDRINUSE) {
                struct stat st;
                if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
                        r = sprout_err_set(err, -EEXIST, "%s exists and is not a socket", path);
                        goto fail;
                }
                int p = probe(&addr);
                if (p == 0) {
                        r = sprout_err_set(err, -EADDRINUSE, "another sproutd is serving on %s",
                                           path);
                        goto fail;
                }
                if (p != -ECONNREFUSED) {
                        r = sprout_err_errno(err, p, "probing the existing socket %s", path);
                        goto fail;
                }
                sp_info("replacing the stale socket %s (nothing accepts on it)", path);
                if (unlink(path) < 0 && errno != ENOENT) {
                        r = sprout_err_errno(err, -errno, "removing the stale socket %s", path);
                        goto fail;
                }
                r = bind_socket(s, &addr);
        }
        if (r < 0) {
                sprout_err_errno(err, r, "binding %s", path);
                goto fail;
        }
        /* bind made it 0660 (the umask above); lchown never follows a symlink that replaced it. */
        if (group[0] && lchown(path, (uid_t)-1, gid) < 0) {
                r = sprout_err_errno(err, -errno, "setting the owner and mode of %s", path);
                unlink(path);
                goto fail;
        }
        if (listen(s, 1024) < 0) {
                r = sprout_err_errno(err, -errno, "listen on %s", path);
                unlink(path);
                goto fail;
        }
        *fd = s;
        return 0;
fail:
        close(s);
        return r;
}

int api_peer_creds(int fd, struct sprout_creds *out)
{
        struct ucred uc;
        socklen_t len = sizeof(uc);
        memset(out, 0, sizeof(*out));
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        out->uid = uc.uid;
        out->gid = uc.gid;
        len = sizeof(out->groups);
        /* Without the groups (an old kernel, or too many) the client keeps only its primary group:
         * it may read less than it could, never more. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out->groups, &len) == 0)
                out->ngroups = len / sizeof(gid_t);
        return 0;
}
