/* /v1/clones: create clones of a snapshot, list, show, destroy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/log.h"
#include "api.h"

int api_parse_clone_list(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                         struct api_resp *resp)
{
        (void)body;
        const char *s = api_query(rq, "snapshot");
        cmd->snapshot[0] = '\0';
        if (!s)
                return 0;
        if (!api_is_id(s, strlen(s))) {
                api_error(api_req_daemon(rq), resp, API_E_INVALID_ID,
                          "query parameter 'snapshot' must be a snapshot id (a lowercase UUID)");
                return -EINVAL;
        }
        snprintf(cmd->snapshot, sizeof(cmd->snapshot), "%s", s);
        return 0;
}

static int by_created(const void *a, const void *b)
{
        const struct dclone *x = *(struct dclone *const *)a, *y = *(struct dclone *const *)b;
        return (x->created_ns > y->created_ns) - (x->created_ns < y->created_ns);
}

void api_exec_clone_list(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        pthread_mutex_lock(&d->lock);
        size_t cap = d->nclones_table, n = 0;
        struct dclone **v = calloc(cap ? cap : 1, sizeof(*v));
        uint64_t *priv = calloc(cap ? cap : 1, sizeof(*priv));
        for (unsigned b = 0; v && priv && b < CLONE_BUCKETS; b++)
                for (struct dclone *c = d->table[b]; c && n < cap; c = c->hnext)
                        if ((!cmd->snapshot[0] || !strcmp(c->snap->id, cmd->snapshot)) &&
                            owners_may_see(d, &cmd->caller, c->snap)) {
                                clones_ref_locked(c);
                                v[n++] = c;
                        }
        pthread_mutex_unlock(&d->lock);
        if (!v || !priv) {
                free(v);
                free(priv);
                api_error(d, resp, API_E_INTERNAL, "out of memory");
                return;
        }
        qsort(v, n, sizeof(*v), by_created);
        /* The references keep each clone's VM mapped while smaps is read without the lock. */
        clones_private_bytes(d, v, n, priv);
        json_t *arr = json_array();
        int64_t now = sprout_mono_ns();
        pthread_mutex_lock(&d->lock);
        for (size_t i = 0; i < n; i++) {
                json_array_append_new(arr, api_clone_json(v[i], now, &priv[i]));
                clones_put_locked(d, v[i]);
        }
        pthread_mutex_unlock(&d->lock);
        free(v);
        free(priv);
        api_reply_json(resp, 200, json_pack("{s:o}", "clones", arr));
}

int api_parse_clone_create(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                           struct api_resp *resp)
{
        static const struct api_field fields[] = {
            {"snapshot", F_STRING, true, 1, 64},
            {"count", F_INT, false, 1, API_MAX_CLONES_PER_REQUEST},
        };
        struct sproutd *d = api_req_daemon(rq);
        if (api_check_fields(d, body, fields, sizeof(fields) / sizeof(fields[0]), resp) < 0)
                return -EINVAL;
        const char *s = json_string_value(json_object_get(body, "snapshot"));
        if (!api_is_id(s, strlen(s))) {
                api_error(d, resp, API_E_INVALID_FIELD,
                          "field 'snapshot' must be a snapshot id (a lowercase UUID)");
                return -EINVAL;
        }
        snprintf(cmd->snapshot, sizeof(cmd->snapshot), "%s", s);
        json_t *v = json_object_get(body, "count");
        cmd->count = v ? (unsigned)json_integer_value(v) : 1;
        return 0;
}

void api_exec_clone_create(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dsnap *e = api_snapshot_get(d, cmd, cmd->snapshot);
        if (!e) {
                api_error(d, resp, API_E_SNAPSHOT_NOT_FOUND, "no snapshot %s", cmd->snapshot);
                return;
        }
        struct dclone *out[API_MAX_CLONES_PER_REQUEST];
        struct sprout_err err = {0};
        int r = clones_create(d, e, cmd->count, DC_API, out, &err);
        if (r < 0) {
                api_clone_error(d, resp, r, &err, e->id);
                registry_put(d, e);
                return;
        }
        json_t *arr = json_array();
        int64_t now = sprout_mono_ns();
        pthread_mutex_lock(&d->lock);
        for (unsigned i = 0; i < cmd->count; i++) {
                json_array_append_new(arr, api_clone_json(out[i], now, NULL));
                clones_put_locked(d, out[i]); /* the table keeps its own */
        }
        registry_put_locked(d, e);
        pthread_mutex_unlock(&d->lock);
        api_reply_json(resp, 201, json_pack("{s:o}", "clones", arr));
}

void api_exec_clone_show(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dclone *c = api_clone_get(d, cmd, cmd->id);
        if (!c) {
                api_error(d, resp, API_E_CLONE_NOT_FOUND, "no clone %s", cmd->id);
                return;
        }
        uint64_t priv;
        clones_private_bytes(d, &c, 1, &priv);
        pthread_mutex_lock(&d->lock);
        json_t *o = api_clone_json(c, sprout_mono_ns(), &priv);
        clones_put_locked(d, c);
        pthread_mutex_unlock(&d->lock);
        api_reply_json(resp, 200, o);
}

void api_exec_clone_delete(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dclone *c = api_clone_get(d, cmd, cmd->id);
        if (!c) {
                api_error(d, resp, API_E_CLONE_NOT_FOUND, "no clone %s", cmd->id);
                return;
        }
        pthread_mutex_lock(&d->lock);
        clones_remove_locked(d, c);
        /* A request running on it keeps its reference; the reaper destroys it after. */
        clones_put_locked(d, c);
        pthread_mutex_unlock(&d->lock);
        sp_info("clone %s deleted", cmd->id);
        api_reply_json(resp, 200, json_pack("{s:s}", "deleted", cmd->id));
}

void api_exec_clone_log(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dclone *c = api_clone_get(d, cmd, cmd->id);
        if (!c) {
                api_error(d, resp, API_E_CLONE_NOT_FOUND, "no clone %s", cmd->id);
                return;
        }
        struct sprout_err err = {0};
        char *text = NULL;
        size_t len = 0;
        int r = clones_log(d, c, d->cfg.invoke_timeout_ms, &text, &len, &err);
        clones_put(d, c);
        if (r == -EBUSY)
                api_error(d, resp, API_E_CLONE_BUSY, "%s", err.msg);
        else if (r == -ECONNRESET)
                api_error(d, resp, API_E_WORKER_DIED, "%s", err.msg);
        else if (r < 0)
                api_error(d, resp, API_E_INTERNAL, "%s", err.msg);
        else
                api_reply_raw(resp, 200, "text/plain; charset=utf-8", text, len);
}
