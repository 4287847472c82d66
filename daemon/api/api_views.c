/* How snapshots and clones look in responses, and what each internal failure means as an API
 * error: one place, so every endpoint shows a resource and reports a failure the same way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sprout/escape.h"
#include "api.h"

/* A JSON string of text a client or a guest chose (paths, errors, the console tail): escaped
 * when it holds what jansson refuses (invalid UTF-8) or a terminal would act on. */
json_t *api_json_text(const char *s, unsigned flags)
{
        size_t n = s ? strlen(s) : 0;
        if (sprout_text_is_clean(s, n, flags))
                return json_stringn(s ? s : "", n);
        char *e = malloc(4 * n + 1);
        if (!e)
                return json_string("(out of memory)");
        size_t m = sprout_escape(e, 4 * n + 1, s, n, flags);
        json_t *j = json_stringn(e, m);
        free(e);
        return j;
}

static json_t *rfc3339(int64_t ns)
{
        char buf[96];
        time_t s = (time_t)(ns / 1000000000LL);
        struct tm tm;
        gmtime_r(&s, &tm);
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ns / 1000000 % 1000));
        return json_string(buf);
}

json_t *api_snapshot_json(struct sproutd *d, struct dsnap *e, bool admin)
{
        (void)d;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(e->id));
        json_object_set_new(o, "status", json_string(dsnap_status_name(e->status)));
        json_object_set_new(o, "image", api_json_text(e->image_name, 0));
        if (e->image[0])
                json_object_set_new(o, "image_path", api_json_text(e->image, 0));
        /* Where the daemon keeps its files is the host's business, not a tenant's. */
        if (admin)
                json_object_set_new(o, "path", api_json_text(e->path, 0));
        json_object_set_new(o, "created", rfc3339(e->created_ns));
        if (e->status == DSNAP_READY) {
                json_object_set_new(o, "ram_bytes", json_integer((json_int_t)e->ram_size));
                json_object_set_new(o, "file_bytes", json_integer((json_int_t)e->file_size));
                json_object_set_new(o, "nonzero_bytes", json_integer((json_int_t)e->nonzero_bytes));
                json_object_set_new(
                    o, "ratio",
                    json_real(e->file_size ? (double)e->ram_size / (double)e->file_size : 0));
        }
        if (e->boot_s > 0) {
                json_object_set_new(o, "boot_s", json_real(e->boot_s));
                json_object_set_new(o, "write_s", json_real(e->write_s));
        }
        if (e->status == DSNAP_SNAPSHOTTING && e->progress_total)
                json_object_set_new(
                    o, "progress", json_real((double)e->progress_done / (double)e->progress_total));
        json_object_set_new(o, "clones", json_integer(e->clones));
        json_object_set_new(o, "idle_clones", json_integer(e->nidle));
        json_object_set_new(o, "loaded", json_boolean(e->base != NULL));
        if (e->base) {
                json_object_set_new(o, "pooled_shells", json_integer(dbase_pooled(e->base)));
                json_object_set_new(o, "ready_clones", json_integer(dbase_ready(e->base)));
        }
        if (e->status == DSNAP_FAILED) {
                json_object_set_new(o, "error", api_json_text(e->error, 0));
                if (e->console_tail)
                        json_object_set_new(o, "console_tail",
                                            api_json_text(e->console_tail, SPROUT_ESC_KEEP_LINES));
        }
        return o;
}

json_t *api_clone_json(struct dclone *c, int64_t now, const uint64_t *private_bytes)
{
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(c->id));
        json_object_set_new(o, "snapshot", json_string(c->snap->id));
        json_object_set_new(o, "state", json_string(dclone_state_name(c->state)));
        json_object_set_new(o, "origin", json_string(dclone_origin_name(c->origin)));
        json_object_set_new(o, "created", rfc3339(c->created_real_ns));
        json_object_set_new(o, "age_s", json_real((double)(now - c->created_ns) / 1e9));
        json_object_set_new(o, "idle_s", json_real((double)(now - c->last_used_ns) / 1e9));
        json_object_set_new(o, "invocations", json_integer((json_int_t)c->invocations));
        json_object_set_new(o, "restore_ms", json_real(c->restore_ms));
        json_object_set_new(o, "pooled_shell", json_boolean(c->pooled_shell));
        if (private_bytes)
                json_object_set_new(o, "private_bytes", json_integer((json_int_t)*private_bytes));
        if (c->state == DC_DEAD)
                json_object_set_new(o, "dead_reason", api_json_text(c->dead_reason, 0));
        return o;
}

void api_clone_error(struct sproutd *d, struct api_resp *resp, int r, const struct sprout_err *err,
                     const char *id)
{
        enum api_errc code;
        switch (r) {
        case -EAGAIN:
                code = API_E_TOO_MANY_CLONES;
                break;
        case -EDQUOT:
                code = API_E_QUOTA_EXCEEDED;
                break;
        case -ENOENT:
                code = API_E_SNAPSHOT_NOT_FOUND;
                break;
        case -EBUSY:
                code = API_E_SNAPSHOT_NOT_READY;
                break;
        case -ESHUTDOWN:
                code = API_E_SHUTTING_DOWN;
                break;
        case -ENOTSUP:
                code = API_E_SNAPSHOT_INCOMPATIBLE;
                break;
        case -EUCLEAN:
                code = API_E_SNAPSHOT_LOAD_FAILED;
                break;
        case -ENODEV:
                code = API_E_KVM_UNAVAILABLE;
                break;
        case -ECONNRESET:
                code = API_E_WORKER_DIED;
                break;
        default:
                code = API_E_CLONE_FAILED;
        }
        api_error(d, resp, code, "snapshot %s: %s", id, err->msg);
}

struct dsnap *api_snapshot_get(struct sproutd *d, const struct api_cmd *cmd, const char *id)
{
        struct dsnap *e = registry_get(d, id);
        /* Another tenant's snapshot is answered as if it did not exist. */
        if (e && !owners_may_see(d, &cmd->caller, e)) {
                registry_put(d, e);
                return NULL;
        }
        return e;
}

struct dclone *api_clone_get(struct sproutd *d, const struct api_cmd *cmd, const char *id)
{
        struct dclone *c = clones_get(d, id);
        if (c && !owners_may_see(d, &cmd->caller, c->snap)) {
                clones_put(d, c);
                return NULL;
        }
        return c;
}
