/* Invocations: on a given clone, and the one-shot call on a snapshot (take a fresh clone, or an
 * idle pooled one when the caller allows reuse; invoke it; give it back or tear it down). The
 * response body is the guest's response, byte for byte. */
#include <errno.h>
#include <string.h>

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

static void run(struct sproutd *d, struct dclone *c, const struct api_cmd *cmd,
                struct api_resp *resp, int *rc)
{
        struct sprout_err err = {0};
        char *out = NULL;
        size_t len = 0;
        int64_t t0 = sprout_mono_ns();
        int r = clones_invoke(d, c, cmd->body, cmd->body_len, cmd->timeout_ms, &out, &len, &err);
        snprintf(resp->clone_id, sizeof(resp->clone_id), "%s", c->id);
        *rc = r;
        if (r < 0) {
                invoke_error(d, resp, r, &err);
                return;
        }
        resp->invoke_ms = (double)(sprout_mono_ns() - t0) / 1e6;
        api_reply_raw(resp, 200, "application/json", out, len);
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
