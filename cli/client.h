/* The CLI's client of sproutd: HTTP over the daemon's Unix socket with libcurl, JSON bodies, and
 * one way of reporting a failed call for every daemon-mode command. */
#ifndef SPROUT_CLI_CLIENT_H
#define SPROUT_CLI_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "cli_util.h"

struct client {
        CURL *h;
        struct curl_slist *headers;
        char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char errbuf[CURL_ERROR_SIZE];
};

struct client_resp {
        long status;
        char *body; /* NUL-terminated */
        size_t len;
        json_t *json; /* the body parsed, when it is JSON */
        char clone_id[40];
        double invoke_ms; /* Sprout-Invoke-Ms, 0 if absent */
};

/* socket NULL: $SPROUT_SOCKET, else the default path. Returns 0 or CLI_EXIT_* after printing why.
 */
int client_open(struct client *c, const char *socket);
void client_close(struct client *c);

/* One request; body may be NULL. Returns 0 when the daemon answered (any status), -EHOSTDOWN when
 * nothing answered on the socket, or another -errno. */
int client_call(struct client *c, const char *method, const char *path, const char *body,
                size_t len, long timeout_ms, struct client_resp *r);
void client_resp_free(struct client_resp *r);

/* Reports a failed call (unreachable daemon, or an error response) on stderr as "sprout CMD: ..."
 * and returns the exit code for it. */
int client_fail(const char *cmd, const struct client *c, int r, const struct client_resp *resp);

/* GET path and insist on 200 with a JSON body; on failure reports and returns the exit code. */
int client_get_json(struct client *c, const char *cmd, const char *path, struct client_resp *r);

/* POSTs body as compact JSON text; returns as client_call does, or -ENOMEM. */
int client_post_json(struct client *c, const char *path, json_t *body, long timeout_ms,
                     struct client_resp *r);

/* A snapshot object's "status", or "?" if it has none. */
const char *snapshot_status(json_t *snap);

/* Prints j as JSON text (json_dumps flags) and a newline on stdout. */
void print_json(json_t *j, size_t flags);

/* Human formats for tables. */
void fmt_bytes(char *buf, size_t len, double bytes);
void fmt_age(char *buf, size_t len, double seconds);

#endif
