/* Where sproutd keeps its state and socket when nobody says: shared by the daemon and its clients
 * so both agree without configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sprout/daemon.h"

int sprout_default_state_dir(char *buf, size_t len, struct sprout_err *err)
{
        const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        int n;

        if (geteuid() == 0)
                n = snprintf(buf, len, "/var/lib/sprout");
        else if (xdg && *xdg == '/')
                n = snprintf(buf, len, "%s/sprout", xdg);
        else if (home && *home == '/')
                n = snprintf(buf, len, "%s/.local/state/sprout", home);
        else
                return sprout_err_set(
                    err, -ENOENT, "no state directory: set XDG_STATE_HOME or HOME, or pass one");
        if (n < 0 || (size_t)n >= len)
                return sprout_err_set(err, -ENAMETOOLONG, "the state directory path is too long");
        return 0;
}

int sprout_default_socket_path(char *buf, size_t len, struct sprout_err *err)
{
        const char *env = getenv("SPROUT_SOCKET");
        int n;

        if (env && *env) {
                n = snprintf(buf, len, "%s", env);
        } else {
                char dir[4096];
                int r = sprout_default_state_dir(dir, sizeof(dir), err);
                if (r < 0)
                        return r;
                n = snprintf(buf, len, "%s/%s", dir, SPROUT_SOCKET_NAME);
        }
        if (n < 0 || (size_t)n >= len)
                return sprout_err_set(err, -ENAMETOOLONG, "the socket path is too long");
        return 0;
}
