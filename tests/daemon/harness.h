/* What the daemon tests share: start and stop a real sproutd on its own state directory and socket,
 * and talk HTTP to it over that socket with libcurl, as any client would. */
#ifndef SPROUT_TEST_DAEMON_HARNESS_H
#define SPROUT_TEST_DAEMON_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sprout/clock.h"

struct daemon {
        pid_t pid;
        char state[900];
        char sock[108]; /* sun_path's size */
        char log[1000];
};

/* Paths the test program was given (see main in test_daemon.c). */
extern const char *t_sproutd, *t_sprout, *t_images, *t_work;

/* A state directory of its own under t_work, emptied first. */
void make_state(struct daemon *d, const char *name);
/* Starts sproutd on d->state with extra flags (NULL-terminated) and waits for its socket.
 * 0, or -1 with the reason printed. */
int daemon_start(struct daemon *d, const char *const *flags);
/* Runs sproutd on d->state with flags and expects it to exit by itself within timeout_s (a refusal
 * to start); returns its exit status, or -1 if it kept running (it is then killed). */
int daemon_run_expect_exit(struct daemon *d, const char *const *flags, double timeout_s);
/* Sends sig and waits up to timeout_s for the exit; returns the exit status, 128+signal, or -1. */
int daemon_stop(struct daemon *d, int sig, double timeout_s);
/* Copies the shared fixture snapshot into d->state/snapshots, and the fixture daemon's snapshot key
 * into d->state unless it has one; returns its id (static) or NULL. */
const char *add_fixture_snapshot(struct daemon *d);

struct reply {
        long status;
        char *body;
        size_t len;
        json_t *json;
        char clone_id[40];
        char allow[64];
};

/* One request; ctype NULL sends application/json when there is a body. status 0: no answer. */
void http(const struct daemon *d, const char *method, const char *path, const char *ctype,
          const char *body, size_t len, struct reply *r);
void http_json(const struct daemon *d, const char *method, const char *path, const char *body,
               struct reply *r);
void reply_free(struct reply *r);

/* The error code of an error reply ("" if it is not one). */
const char *err_code(const struct reply *r);
const char *err_msg(const struct reply *r);

/* Waits until the snapshot's status is one of want ("ready", "failed", ...); returns the last
 * status seen (static). */
const char *wait_status(const struct daemon *d, const char *id, const char *const *want,
                        double timeout_s);

/* Runs a shell command line; returns its exit status and its stdout (malloc'd) in *out. */
int run(const char *cmd, char **out);

#endif
