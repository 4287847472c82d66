/* The API layer: a request is matched to a route, parsed into a typed command on the HTTP thread,
 * and executed inline (cheap bookkeeping) or on a worker (anything that touches KVM or may block).
 * Private to daemon/. */
#ifndef SPROUTD_API_H
#define SPROUTD_API_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/run_as.h"
#include "errors.h"
#include "service.h"

#define API_BODY_MAX        (64u << 10) /* control requests: a few fields */
#define API_MAX_CLIENT_UIDS 1024u       /* distinct clients counted for connection limits */

/* The HTTP server's state, which only this layer touches. */
struct api_server {
        struct MHD_Daemon *http;
        atomic_uint inflight; /* HTTP requests started and not yet completed */
        /* Open connections per client uid, for --max-connections-per-client. */
        pthread_mutex_t lock;
        struct {
                uid_t uid;
                unsigned n;
        } conns[API_MAX_CLIENT_UIDS];
        unsigned nconns;
};
#define API_MAX_CLONES_PER_REQUEST 256u

struct api_resp {
        unsigned status;
        char *body; /* malloc'd; handed to the HTTP library */
        size_t len;
        const char *content_type;
        char clone_id[SPROUTD_ID_LEN]; /* the Sprout-Clone header of an invocation */
        char allow[32];                /* the Allow header of a 405 */
        double invoke_ms;              /* the Sprout-Invoke-Ms header */
};

enum api_op {
        OP_HEALTH,
        OP_METRICS,
        OP_SNAP_LIST,
        OP_SNAP_CREATE,
        OP_SNAP_SHOW,
        OP_SNAP_DELETE,
        OP_SNAP_INVOKE,
        OP_CLONE_LIST,
        OP_CLONE_CREATE,
        OP_CLONE_SHOW,
        OP_CLONE_DELETE,
        OP_CLONE_INVOKE,
        OP_CLONE_LOG,
};

/* A request, parsed and checked: what an executor needs and nothing else. */
struct api_cmd {
        enum api_op op;
        char id[SPROUTD_ID_LEN]; /* the {id} of the path */
        struct prewarm_params prewarm;
        unsigned count;
        char snapshot[SPROUTD_ID_LEN]; /* list filter or clone source; "" for none */
        bool force, reuse;
        bool log; /* an invocation answers its log beside its response */
        int64_t timeout_ms;
        const char *body; /* an invocation's request, validated JSON */
        size_t body_len;
        struct sprout_creds caller; /* the client: its socket peer's uid, gid and groups */
};

struct api_req;

struct api_route {
        const char *method;
        const char *path;  /* segments; "{id}" matches a canonical lowercase UUID */
        const char *query; /* the query parameters it accepts, space-separated */
        enum api_op op;
        size_t max_body; /* 0: takes no body */
        bool worker;     /* executed on a worker thread, not the HTTP thread */
        int (*parse)(struct api_req *rq, json_t *body, struct api_cmd *cmd, struct api_resp *resp);
        void (*exec)(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
        const char *summary;
};

extern const struct api_route api_routes[];
extern const unsigned api_nroutes;

/* Finds the route: 0 and *out, or -ENOENT (no such path: 404) or -EPERM (the path exists, not
 * with this method: 405, allow filled with the methods it has). id gets the {id} segment. */
int api_route_match(const char *method, const char *url, const struct api_route **out,
                    char id[SPROUTD_ID_LEN], char *allow, size_t allow_len);
/* Whether s[0..n) is a canonical lowercase UUID: what snapshot and clone ids always are. */
bool api_is_id(const char *s, size_t n);
/* Prints "METHOD PATH" per route, for --list-routes and the OpenAPI check. */
void api_routes_print(FILE *f);

/* ---- the socket and the server (api_socket.c, api_http.c) ---- */

/* A listening Unix socket at path, mode 0660 (and group, if named). A stale socket file (nothing
 * accepts on it) is replaced; a live one is -EADDRINUSE. */
int api_socket_listen(const char *path, const char *group, int *fd, struct sprout_err *err);

/* ---- api_http.c ---- */
int api_http_start(struct sproutd *d, int listen_fd, struct sprout_err *err);
/* Stops accepting, refuses new requests with 503, waits up to deadline for in-flight ones, then
 * stops the server. */
void api_http_drain(struct sproutd *d, int64_t deadline_ns);

/* The credentials of the client at the other end of an accepted socket (SO_PEERCRED, and
 * SO_PEERGROUPS for its groups where the kernel has it). */
int api_peer_creds(int fd, struct sprout_creds *out);

/* The whole /metrics exposition, malloc'd; NULL when out of memory (api_metrics.c). */
char *api_metrics_render(struct sproutd *d, size_t *len);

/* ---- responses (api_json.c) ---- */
void api_reply_json(struct api_resp *resp, unsigned status, json_t *body); /* steals body */
void api_reply_raw(struct api_resp *resp, unsigned status, const char *ctype, char *body,
                   size_t len); /* steals body */
__attribute__((format(printf, 4, 5))) void api_error(struct sproutd *d, struct api_resp *resp,
                                                     enum api_errc code, const char *fmt, ...);

/* A JSON string of text a client or a guest chose, escaped where it must be (api_views.c). */
json_t *api_json_text(const char *s, unsigned flags);

/* ---- request checks (api_json.c) ---- */
enum api_ftype { F_STRING, F_INT, F_BOOL };
struct api_field {
        const char *name;
        enum api_ftype type;
        bool required;
        int64_t min, max; /* F_INT range; F_STRING length */
};
/* Checks that body is an object holding only these fields, each of its type and range; else fills
 * resp with the error naming the field. */
int api_check_fields(struct sproutd *d, json_t *body, const struct api_field *f, size_t n,
                     struct api_resp *resp);
/* A query parameter: 0 and its value, -ENOENT absent, or -EINVAL with resp filled. */
int api_query_bool(struct api_req *rq, const char *name, bool *out, struct api_resp *resp);
int api_query_int(struct api_req *rq, const char *name, int64_t min, int64_t max, int64_t *out,
                  struct api_resp *resp);
const char *api_query(struct api_req *rq, const char *name);
/* The raw request body (validated JSON, or empty). */
const char *api_req_body(struct api_req *rq, size_t *len);
struct sproutd *api_req_daemon(struct api_req *rq);

/* ---- views shared by the handlers (api_views.c) ---- */
/* Under d->lock; the snapshot file's host path only for admin (root, --admin-group). */
json_t *api_snapshot_json(struct sproutd *d, struct dsnap *e, bool admin);
json_t *api_clone_json(struct dclone *c, int64_t now, const uint64_t *private_bytes);
/* The snapshot or clone with this id, with a reference, if the client may see it (its own, or any
 * for an admin: owners.c); NULL for another tenant's exactly as for one that does not exist. */
struct dsnap *api_snapshot_get(struct sproutd *d, const struct api_cmd *cmd, const char *id);
struct dclone *api_clone_get(struct sproutd *d, const struct api_cmd *cmd, const char *id);
/* Fills resp with the error a clones_* failure means. */
void api_clone_error(struct sproutd *d, struct api_resp *resp, int r, const struct sprout_err *err,
                     const char *id);

/* ---- parsers and executors, by resource ---- */
int api_parse_none(struct api_req *rq, json_t *body, struct api_cmd *cmd, struct api_resp *resp);
int api_parse_snap_create(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                          struct api_resp *resp);
int api_parse_snap_delete(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                          struct api_resp *resp);
int api_parse_invoke(struct api_req *rq, json_t *body, struct api_cmd *cmd, struct api_resp *resp);
int api_parse_clone_list(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                         struct api_resp *resp);
int api_parse_clone_create(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                           struct api_resp *resp);

void api_exec_health(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_metrics(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_snap_list(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_snap_create(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_snap_show(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_snap_delete(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_snap_invoke(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_list(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_create(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_show(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_delete(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_invoke(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);
void api_exec_clone_log(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp);

#endif
