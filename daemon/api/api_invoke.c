/* Invocations: on a given clone, and the one-shot call on a snapshot (take a fresh clone, or an
 * idle pooled one when the caller allows reuse; invoke it; give it back or tear it down). The
 * response body is the guest's response, byte for byte; with ?log=true it sits in an envelope
 * beside what the call logged (docs/api.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/escape.h"

#include "api.h"

int api_parse_invoke(struct api_req *rq, json_t *body, struct api_cmd *cmd, struct api_resp *resp)
{
        struct sproutd *d = api_req_daemon(rq);
        (void)body; /* already checked to be JSON; the guest gets the bytes as sent */
        cmd->timeout_ms = d->cfg.invoke_timeout_ms;
        cmd->reuse = false;
        if (api_query_int(rq, "timeout_ms", 1, d->cfg.max_invoke_timeout_ms, &cmd->timeout_ms,
                          resp) == -EINVAL)
                return -EINVAL;
        if (api_query_bool(rq, "reuse", &cmd->reuse, resp) == -EINVAL)
                return -EINVAL;
        cmd->log = false;
        if (api_query_bool(rq, "log", &cmd->log, resp) == -EINVAL)
                return -EINVAL;
        cmd->body = api_req_body(rq, &cmd->body_len);
        if (!cmd->body_len) {
                cmd->body = "{}";
                cmd->body_len = 2;
        }
        return 0;
}

static void invoke_error(struct sproutd *d, struct api_resp *resp, int r,
                         const struct sprout_err *err)
{
        enum api_errc code;
        switch (r) {
        case -EBUSY:
                code = API_E_CLONE_BUSY;
                break;
        case -EPIPE:
                code = API_E_CLONE_DEAD;
                break;
        case -EMSGSIZE:
                code = API_E_BODY_TOO_LARGE;
                break;
        case -ETIMEDOUT:
                code = API_E_INVOKE_TIMEOUT;
                break;
        case -ENOMEM:
                code = API_E_INTERNAL;
                break;
        case -ECONNRESET:
                code = API_E_WORKER_DIED;
                break;
        default:
                code = API_E_INVOKE_FAILED;
        }
        api_error(d, resp, code, "%s", err->msg);
}

/* {"log": ..., "log_lost": ..., "response": <the guest's bytes>}: the response is spliced in as
 * it came, so it stays byte for byte; when it is not JSON, it is "response_text", escaped. */
static void reply_with_log(struct sproutd *d, struct api_resp *resp, char *out, size_t len,
                           const struct invoke_log *log)
{
        json_t *o = json_object();
        json_t *text = api_json_text(log->text, SPROUT_ESC_KEEP_LINES);
        json_t *parsed = json_loadb(out, len, JSON_DECODE_ANY, NULL);
        bool is_json = parsed != NULL;
        json_decref(parsed);
        char *head = NULL, *body = NULL;
        if (o && text && !json_object_set_new(o, "log", text) &&
            !json_object_set_new(o, "log_lost", json_boolean(log->lost)) &&
            (is_json ||
             !json_object_set_new(o, "response_text", api_json_text(out, SPROUT_ESC_KEEP_LINES))))
                head = json_dumps(o, JSON_COMPACT);
        else
                json_decref(text);
        json_decref(o);
        size_t hn = head ? strlen(head) : 0;
        static const char key[] = ",\"response\":";
        if (head && (body = malloc(hn + sizeof(key) + len + 1))) {
                /* head ends with its closing brace: the response goes before it. */
                size_t n = hn - 1;
                memcpy(body, head, n);
                if (is_json) {
                        memcpy(body + n, key, sizeof(key) - 1);
                        n += sizeof(key) - 1;
                        memcpy(body + n, out, len);
                        n += len;
                }
                body[n++] = '}';
                body[n] = '\0';
                api_reply_raw(resp, 200, "application/json", body, n);
        } else {
                api_error(d, resp, API_E_INTERNAL, "out of memory");
        }
        free(head);
        free(out);
}

static void run(struct sproutd *d, struct dclone *c, const struct api_cmd *cmd,
                struct api_resp *resp, int *rc)
{
        struct sprout_err err = {0};
        char *out = NULL;
        size_t len = 0;
        struct invoke_log log = {0};
        int64_t t0 = sprout_mono_ns();
        int r = clones_invoke(d, c, cmd->body, cmd->body_len, cmd->timeout_ms, &out, &len,
                              cmd->log ? &log : NULL, &err);
        snprintf(resp->clone_id, sizeof(resp->clone_id), "%s", c->id);
        *rc = r;
        if (r < 0) {
                invoke_error(d, resp, r, &err);
                return;
        }
        resp->invoke_ms = (double)(sprout_mono_ns() - t0) / 1e6;
        if (cmd->log)
                reply_with_log(d, resp, out, len, &log);
        else
                api_reply_raw(resp, 200, "application/json", out, len);
        free(log.text);
}

void api_exec_clone_invoke(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dclone *c = api_clone_get(d, cmd, cmd->id);
        if (!c) {
                api_error(d, resp, API_E_CLONE_NOT_FOUND, "no clone %s", cmd->id);
                return;
        }
        int r;
        run(d, c, cmd, resp, &r);
        clones_put(d, c);
}

void api_exec_snap_invoke(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        int64_t t0 = sprout_mono_ns();
        struct dsnap *e = api_snapshot_get(d, cmd, cmd->id);
        if (!e) {
                api_error(d, resp, API_E_SNAPSHOT_NOT_FOUND, "no snapshot %s", cmd->id);
                return;
        }
        struct dclone *c = cmd->reuse ? clones_take_idle(d, e) : NULL;
        if (c) {
                atomic_fetch_add(&d->metrics.oneshot_reused, 1);
        } else {
                struct sprout_err err = {0};
                int r = clones_create(d, e, 1, cmd->reuse ? DC_POOL : DC_ONESHOT, &c, &err);
                if (r < 0) {
                        api_clone_error(d, resp, r, &err, e->id);
                        registry_put(d, e);
                        return;
                }
                atomic_fetch_add(&d->metrics.oneshot_fresh, 1);
        }
        int r;
        run(d, c, cmd, resp, &r);
        clones_release_oneshot(d, c, cmd->reuse && r == 0);
        registry_put(d, e);
        if (r == 0)
                histo_observe(&d->metrics.oneshot, sprout_mono_ns() - t0);
}
