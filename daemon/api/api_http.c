/* The HTTP side, on libmicrohttpd: match the route, bound and collect the body, parse it into a
 * typed command, run it inline or suspend the connection while a worker runs it, send the reply.
 * MHD's threads only do I/O and parsing, so a slow invocation never holds up other connections. */
#include <errno.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "sprout/log.h"
#include "api.h"

struct api_req {
        struct fq_item qi;     /* its place in the worker queue */
        int64_t queue_wait_ms; /* the longest it waits there for its clone (0: no limit) */
        struct sproutd *d;
        struct MHD_Connection *conn;
        const struct api_route *route;
        char id[SPROUTD_ID_LEN];
        char *body;
        size_t len, limit;
        bool queued;    /* a response is queued: ignore whatever else arrives */
        bool suspended; /* handed to a worker */
        bool too_large; /* a chunked body went past the limit: dropped, 413 at its end */
        bool close;     /* answer with Connection: close (one connection too many) */
        size_t discarded;
        atomic_bool done;
        struct api_cmd cmd;
        struct api_resp resp;
        int64_t t0;
        char method[8];
        char url[160];
};

struct sproutd *api_req_daemon(struct api_req *rq)
{
        return rq->d;
}

const char *api_req_body(struct api_req *rq, size_t *len)
{
        *len = rq->len;
        return rq->body ? rq->body : "";
}

const char *api_query(struct api_req *rq, const char *name)
{
        const char *v = NULL;
        size_t n = 0;
        /* "?force" without "=value" is present with no value: give "" rather than NULL. */
        if (MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                          &n) != MHD_YES)
                return NULL;
        return v ? v : "";
}

struct query_check {
        const char *allowed;
        const char *bad;
};

static enum MHD_Result check_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
        struct query_check *qc = cls;
        (void)kind;
        (void)value;
        size_t n = strlen(key);
        for (const char *p = qc->allowed; *p;) {
                size_t w = strcspn(p, " ");
                if (w == n && !strncmp(p, key, n))
                        return MHD_YES;
                p += w + (p[w] == ' ');
        }
        qc->bad = key;
        return MHD_NO;
}

static enum MHD_Result send_resp(struct api_req *rq)
{
        struct sproutd *d = rq->d;
        struct api_resp *r = &rq->resp;
        if (!r->body) /* an executor that forgot to answer is our bug, not the client's */
                api_error(d, r, API_E_INTERNAL, "no response");
        struct MHD_Response *m =
            MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!m)
                return MHD_NO;
        r->body = NULL;
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
        if (r->clone_id[0])
                MHD_add_response_header(m, "Sprout-Clone", r->clone_id);
        if (r->invoke_ms > 0) {
                char ms[32];
                snprintf(ms, sizeof(ms), "%.3f", r->invoke_ms);
                MHD_add_response_header(m, "Sprout-Invoke-Ms", ms);
        }
        if (r->allow[0])
                MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, r->allow);
        if (d->draining || rq->close)
                MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
        enum MHD_Result ret = MHD_queue_response(rq->conn, r->status, m);
        MHD_destroy_response(m);
        rq->queued = true;

        int64_t ns = sprout_mono_ns() - rq->t0;
        histo_observe(&d->metrics.request, ns);
        atomic_fetch_add(&d->metrics.requests, 1);
        /* Successful invocations, health and metrics come by the thousand: debug level. */
        bool quiet =
            rq->route && (rq->route->op == OP_METRICS || rq->route->op == OP_HEALTH ||
                          rq->route->op == OP_SNAP_INVOKE || rq->route->op == OP_CLONE_INVOKE);
        sp_log(quiet && r->status < 400 ? SPROUT_LOG_DEBUG : SPROUT_LOG_INFO, "%s %s %u %.3f ms",
               rq->method, rq->url, r->status, (double)ns / 1e6);
        return ret;
}

static enum MHD_Result fail(struct api_req *rq, enum api_errc code, const char *msg)
{
        api_error(rq->d, &rq->resp, code, "%s", msg);
        return send_resp(rq);
}

/* A body past the limit is counted and dropped when MHD cannot answer before it is read (MHD
 * answers only before the body or after all of it); past this much its connection is closed
 * instead. */
#define API_DISCARD_MAX (16u << 20)

static bool is_json_type(const char *ct)
{
        static const char want[] = "application/json";
        if (!ct || strncasecmp(ct, want, sizeof(want) - 1))
                return false;
        char c = ct[sizeof(want) - 1];
        return c == '\0' || c == ';' || c == ' ';
}

/* The first call for a request: route it and refuse what we can before any body is read. */
static enum MHD_Result begin(struct api_req *rq, const char *url, const char *method)
{
        struct sproutd *d = rq->d;
        char allow[32];
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        snprintf(rq->url, sizeof(rq->url), "%s", url);
        int r = api_route_match(method, url, &rq->route, rq->id, allow, sizeof(allow));
        if (r == -ENOENT) {
                api_error(d, &rq->resp, API_E_NOT_FOUND, "no route %s", url);
                return send_resp(rq);
        }
        if (r == -EPERM) {
                snprintf(rq->resp.allow, sizeof(rq->resp.allow), "%s", allow);
                api_error(d, &rq->resp, API_E_METHOD_NOT_ALLOWED, "%s takes %s, not %s", url, allow,
                          method);
                return send_resp(rq);
        }
        if (d->draining)
                return fail(rq, API_E_SHUTTING_DOWN, "sproutd is shutting down");
        if (rq->id[0] == '!')
                return fail(rq, API_E_INVALID_ID,
                            "ids are lowercase UUIDs (8-4-4-4-12 hex digits)");
        struct query_check qc = {.allowed = rq->route->query};
        MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, check_query_arg, &qc);
        if (qc.bad) {
                api_error(d, &rq->resp, API_E_UNKNOWN_FIELD, "unknown query parameter '%s'",
                          qc.bad);
                return send_resp(rq);
        }

        /* Bodies are bounded before they are read: a huge Content-Length is refused at once and
         * nothing of it is buffered. Chunked bodies are counted as they arrive. */
        rq->limit = rq->route->max_body ? rq->route->max_body : API_BODY_MAX;
        const char *cl =
            MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
        const char *expect =
            MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if (clen > rq->limit && clen <= API_DISCARD_MAX && !expect) {
                /* A client already sending a modest body would see its connection reset
                 * mid-upload; reading it into nowhere lets it get the 413. */
                rq->too_large = true;
                return MHD_YES;
        }
        if (clen > rq->limit) {
                api_error(d, &rq->resp, API_E_BODY_TOO_LARGE,
                          "the body is %llu bytes; %s %s takes at most %zu", clen, method,
                          rq->route->path, rq->limit);
                return send_resp(rq);
        }
        if (rq->route->max_body && (clen > 0 || te) &&
            !is_json_type(MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_TYPE)))
                return fail(rq, API_E_UNSUPPORTED_MEDIA_TYPE,
                            "the body must be sent as Content-Type: application/json");
        return MHD_YES;
}

static enum MHD_Result append_body(struct api_req *rq, const char *data, size_t *size)
{
        size_t n = *size;
        *size = 0;
        if (rq->too_large || n > rq->limit - rq->len) {
                rq->too_large = true;
                rq->discarded += n;
                if (rq->discarded > API_DISCARD_MAX) {
                        sp_info("%s %s: closing a connection sending a body over %u MiB",
                                rq->method, rq->url, (API_DISCARD_MAX >> 20) + 1);
                        return MHD_NO;
                }
                return MHD_YES;
        }
        if (!rq->route->max_body)
                return MHD_YES; /* a body on a route that takes none is read and dropped */
        char *nb = realloc(rq->body, rq->len + n + 1);
        if (!nb)
                return MHD_NO; /* no answer can be queued mid-body: close the connection */
        memcpy(nb + rq->len, data, n);
        rq->body = nb;
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
}

/* Whose request it is for the fair queue (the client), and, for a request that needs a clone to
 * itself, the clone as its key and the request's time limit as the longest it waits for it
 * (docs/architecture.md "Fair queueing"). */
static void queue_item(struct api_req *rq)
{
        rq->qi = (struct fq_item){.tenant = (uint32_t)rq->cmd.caller.uid};
        int64_t wait_ms = rq->cmd.op == OP_CLONE_INVOKE ? rq->cmd.timeout_ms
                          : rq->cmd.op == OP_CLONE_LOG  ? rq->d->cfg.invoke_timeout_ms
                                                        : 0;
        uuid_t u;
        rq->queue_wait_ms = 0;
        if (!wait_ms || uuid_parse(rq->cmd.id, u) < 0)
                return;
        rq->queue_wait_ms = wait_ms;
        uint64_t a, b;
        memcpy(&a, u, 8);
        memcpy(&b, u + 8, 8);
        rq->qi.key = (a ^ b) ? (a ^ b) : 1;
        rq->qi.deadline_ns = sprout_mono_ns() + wait_ms * 1000000;
}

/* The whole body is in: parse it into a command and run it. */
static enum MHD_Result dispatch(struct api_req *rq)
{
        struct sproutd *d = rq->d;
        json_t *body = NULL;
        if (rq->len) {
                json_error_t je;
                body = json_loadb(rq->body, rq->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
                if (!body) {
                        api_error(d, &rq->resp, API_E_INVALID_JSON,
                                  "the body is not JSON: line %d column %d: %s", je.line, je.column,
                                  je.text);
                        return send_resp(rq);
                }
        }
        rq->cmd.op = rq->route->op;
        memcpy(rq->cmd.id, rq->id, sizeof(rq->id));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || api_peer_creds(ci->connect_fd, &rq->cmd.caller) < 0) {
                json_decref(body);
                api_error(d, &rq->resp, API_E_INTERNAL, "cannot tell who the client is");
                return send_resp(rq);
        }
        int r = rq->route->parse(rq, body, &rq->cmd, &rq->resp);
        json_decref(body);
        if (r < 0)
                return send_resp(rq);
        if (!rq->route->worker) {
                rq->route->exec(d, &rq->cmd, &rq->resp);
                return send_resp(rq);
        }
        queue_item(rq);
        /* Suspend first: a worker may finish and resume before we return. */
        rq->suspended = true;
        MHD_suspend_connection(rq->conn);
        if ((r = workers_submit(&d->workers, &rq->qi)) < 0) {
                unsigned q, busy;
                if (r == -EDQUOT) {
                        api_error(d, &rq->resp, API_E_QUEUE_FULL,
                                  "this client already has its share of the queue waiting "
                                  "(--tenant-max-queue); retry later");
                } else {
                        workers_counts(&d->workers, &q, &busy);
                        api_error(d, &rq->resp, API_E_QUEUE_FULL,
                                  "%u requests are already waiting for a worker; retry later", q);
                }
                atomic_store(&rq->done, true);
                MHD_resume_connection(rq->conn);
        }
        return MHD_YES;
}

/* ---- connections per client ---- */

/* What a connection's socket context holds: whose it is, and whether it was one too many. */
struct conn_owner {
        uid_t uid;
        bool counted, over;
};

/* Counts the connection against its client's share (--max-connections-per-client); one over
 * the share, or from one client too many, is marked and its requests get 429. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        struct sproutd *d = cls;
        struct api_server *s = d->api;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                struct conn_owner *o = calloc(1, sizeof(*o));
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                struct sprout_creds who;
                *socket_context = o;
                if (!o)
                        return;
                if (!ci || api_peer_creds(ci->connect_fd, &who) < 0) {
                        o->over = true; /* nobody we can name gets no share */
                        return;
                }
                o->uid = who.uid;
                pthread_mutex_lock(&s->lock);
                unsigned i = 0;
                while (i < s->nconns && s->conns[i].uid != who.uid)
                        i++;
                if (i == s->nconns && s->nconns < API_MAX_CLIENT_UIDS)
                        s->conns[s->nconns++] = (typeof(s->conns[0])){.uid = who.uid, .n = 0};
                if (i < s->nconns) {
                        o->counted = true;
                        o->over = ++s->conns[i].n > (unsigned)d->cfg.max_connections_per_client;
                } else {
                        o->over = true;
                }
                pthread_mutex_unlock(&s->lock);
                return;
        }
        struct conn_owner *o = *socket_context;
        if (o && o->counted) {
                pthread_mutex_lock(&s->lock);
                for (unsigned i = 0; i < s->nconns; i++) {
                        if (s->conns[i].uid != o->uid)
                                continue;
                        if (--s->conns[i].n == 0)
                                s->conns[i] = s->conns[--s->nconns];
                        break;
                }
                pthread_mutex_unlock(&s->lock);
        }
        free(o);
        *socket_context = NULL;
}

static bool connection_over_share(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        const struct conn_owner *o = ci ? ci->socket_context : NULL;
        return !o || o->over;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
        struct sproutd *d = cls;
        struct api_req *rq = *con_cls;
        (void)version;

        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                rq->d = d;
                rq->conn = conn;
                rq->t0 = sprout_mono_ns();
                *con_cls = rq;
                atomic_fetch_add(&d->api->inflight, 1);
                snprintf(rq->method, sizeof(rq->method), "%s", method);
                snprintf(rq->url, sizeof(rq->url), "%s", url);
                if (connection_over_share(conn)) {
                        rq->close = true;
                        return fail(rq, API_E_TOO_MANY_CONNECTIONS,
                                    "this client has too many connections open "
                                    "(--max-connections-per-client); close some and retry");
                }
                return begin(rq, url, method);
        }
        if (rq->queued) {
                *upload_size = 0;
                return MHD_YES;
        }
        if (*upload_size)
                return append_body(rq, upload, upload_size);
        if (rq->suspended)
                return atomic_load(&rq->done) ? send_resp(rq) : MHD_YES;
        if (rq->too_large) {
                api_error(d, &rq->resp, API_E_BODY_TOO_LARGE,
                          "the body is over %zu bytes; %s %s takes at most %zu", rq->limit,
                          rq->method, rq->route->path, rq->limit);
                return send_resp(rq);
        }
        return dispatch(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct sproutd *d = cls;
        struct api_req *rq = *con_cls;
        (void)conn;
        if (!rq)
                return;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                sp_debug("%s %s: connection ended early (%d)", rq->method, rq->url, (int)toe);
        free(rq->body);
        free(rq->resp.body);
        free(rq);
        *con_cls = NULL;
        atomic_fetch_sub(&d->api->inflight, 1);
}

/* A worker runs the command, then hands the connection back to MHD; rq is MHD's again after the
 * resume, so nothing touches it afterwards. */
static void run_item(void *ctx, struct fq_item *item, bool expired)
{
        struct sproutd *d = ctx;
        struct api_req *rq = (struct api_req *)((char *)item - offsetof(struct api_req, qi));
        if (expired)
                api_error(d, &rq->resp, API_E_CLONE_BUSY,
                          "the request waited %lld ms for clone %s (busy with another request) "
                          "or for a worker of this client's share",
                          (long long)rq->queue_wait_ms, rq->cmd.id);
        else
                rq->route->exec(d, &rq->cmd, &rq->resp);
        atomic_store(&rq->done, true);
        MHD_resume_connection(rq->conn);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        sp_warn("http: %s", msg);
}

static void api_server_free(struct sproutd *d)
{
        if (!d->api)
                return;
        pthread_mutex_destroy(&d->api->lock);
        free(d->api);
        d->api = NULL;
}

int api_http_start(struct sproutd *d, int listen_fd, struct sprout_err *err)
{
        d->api = calloc(1, sizeof(*d->api));
        if (!d->api)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        pthread_mutex_init(&d->api->lock, NULL);
        int r = workers_start(&d->workers, (unsigned)d->cfg.workers, (unsigned)d->cfg.max_queue,
                              config_tenant_queue(&d->cfg), config_tenant_workers(&d->cfg),
                              run_item, d, err);
        if (r < 0) {
                api_server_free(d);
                return r;
        }
        /* Two I/O threads: they only parse and copy, and a worker thread does the rest. */
        d->api->http = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                MHD_USE_ERROR_LOG,
            0, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, d, MHD_OPTION_THREAD_POOL_SIZE, 2u,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)d->cfg.max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
        if (!d->api->http) {
                workers_stop(&d->workers);
                api_server_free(d);
                return sprout_err_set(err, -EIO, "libmicrohttpd would not start on the socket");
        }
        return 0;
}

void api_http_drain(struct sproutd *d, int64_t deadline_ns)
{
        /* Stop accepting; the listening socket is ours again and closed here. */
        MHD_socket lfd = MHD_quiesce_daemon(d->api->http);
        if (lfd != MHD_INVALID_SOCKET)
                close(lfd);
        atomic_store(&d->draining, true);
        unsigned left;
        while ((left = atomic_load(&d->api->inflight)) && sprout_mono_ns() < deadline_ns)
                usleep(10000);
        if (left)
                sp_warn("drain: %u requests still in flight at the deadline; finishing them", left);
        /* Queued work still runs (bounded by the invocation timeouts), so no suspended connection
         * is left for MHD_stop_daemon to find. */
        workers_stop(&d->workers);
        for (int i = 0; i < 500 && atomic_load(&d->api->inflight); i++)
                usleep(10000);
        MHD_stop_daemon(d->api->http);
        d->api->http = NULL;
        api_server_free(d);
}
