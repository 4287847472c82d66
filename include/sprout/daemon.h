/* sproutd, the clone API server (HTTP/1.1 + JSON on a Unix socket): its entry point, shared by the
 * sproutd binary and `sprout daemon`, and the default paths its clients find it by. */
#ifndef SPROUT_DAEMON_H
#define SPROUT_DAEMON_H

#include <stddef.h>

#include "sprout/err.h"

#define SPROUT_API_PREFIX  "/v1"
#define SPROUT_SOCKET_NAME "sproutd.sock"

/* Runs the daemon in the foreground until SIGTERM or SIGINT, then drains and returns the process
 * exit status (0 clean, 1 failed to start or to serve, 2 usage error). argv[0] is the program name;
 * `--help` lists the flags. */
int sproutd_main(int argc, char **argv);

/* The state directory used when none is given: /var/lib/sprout for root, else
 * $XDG_STATE_HOME/sprout, else $HOME/.local/state/sprout. */
int sprout_default_state_dir(char *buf, size_t len, struct sprout_err *err);

/* The socket clients use when none is given: $SPROUT_SOCKET, else the default state directory's
 * sproutd.sock. */
int sprout_default_socket_path(char *buf, size_t len, struct sprout_err *err);

#endif
