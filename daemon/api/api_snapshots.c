/* /v1/snapshots: prewarm an image into a snapshot (202 and a job), list, show, delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/image.h"
#include "sprout/log.h"
#include "api.h"

int api_parse_none(struct api_req *rq, json_t *body, struct api_cmd *cmd, struct api_resp *resp)
{
        (void)rq;
        (void)body;
        (void)cmd;
        (void)resp;
        return 0;
}

int api_parse_snap_create(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                          struct api_resp *resp)
{
        static const struct api_field fields[] = {
            {"image", F_STRING, true, 1, 4095},
            {"cmdline", F_STRING, false, 0, 1023},
            {"timeout_s", F_INT, false, 1, 86400},
            {"zstd_level", F_INT, false, -7, 19},
        };
        struct sproutd *d = api_req_daemon(rq);
        if (api_check_fields(d, body, fields, sizeof(fields) / sizeof(fields[0]), resp) < 0)
                return -EINVAL;
        const char *image = json_string_value(json_object_get(body, "image"));
        if (image[0] != '/' ||
            strlen(image) != json_string_length(json_object_get(body, "image"))) {
                api_error(d, resp, API_E_INVALID_FIELD,
                          "field 'image' must be an absolute path (the daemon has its own "
                          "working directory) beneath one of its image roots");
                return -EINVAL;
        }
        struct prewarm_params *p = &cmd->prewarm;
        p->owner = cmd->caller.uid; /* the tenant: whoever asked */
        snprintf(p->image, sizeof(p->image), "%s", image);
        json_t *v = json_object_get(body, "cmdline");
        snprintf(p->cmdline, sizeof(p->cmdline), "%s", v ? json_string_value(v) : "");
        /* A request may lower the daemon's limits, never raise them. */
        v = json_object_get(body, "timeout_s");
        p->timeout_s = v ? json_integer_value(v) : d->cfg.prewarm_timeout_s;
        if (p->timeout_s > d->cfg.prewarm_timeout_s) {
                api_error(d, resp, API_E_INVALID_FIELD,
                          "field 'timeout_s' may be at most %lld (--prewarm-timeout-s)",
                          (long long)d->cfg.prewarm_timeout_s);
                return -EINVAL;
        }
        v = json_object_get(body, "zstd_level");
        p->zstd_level = v ? (int)json_integer_value(v) : 0;
        if (p->zstd_level > d->cfg.max_zstd_level) {
                api_error(d, resp, API_E_INVALID_FIELD,
                          "field 'zstd_level' may be at most %lld (--max-zstd-level)",
                          (long long)d->cfg.max_zstd_level);
                return -EINVAL;
        }
        return 0;
}

/* How long opening a client's image may take (a hung file system must not hold a worker). */
#define IMAGE_OPEN_TIMEOUT_MS 10000

/* A confined load on a thread with the client's credentials; after a timeout the thread owns it.
 */
struct image_open {
        const struct sprout_image_roots *roots;
        char image[4096];
        struct sprout_manifest *m;
        struct sprout_err err;
};

static int image_open_as_client(void *arg)
{
        struct image_open *io = arg;
        return sprout_manifest_load_confined(io->roots, io->image, &io->m, &io->err);
}

static void image_open_abandoned(void *arg, int result)
{
        struct image_open *io = arg;
        (void)result;
        sprout_manifest_free(io->m);
        free(io);
}

void api_exec_snap_create(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct sprout_err err = {0};
        struct image_open *io = calloc(1, sizeof(*io));
        if (!io) {
                api_error(d, resp, API_E_INTERNAL, "out of memory");
                return;
        }
        io->roots = &d->image_roots;
        /* A function directory is built first, as the client, into an image beside it. */
        int b =
            source_build(d, &cmd->caller, cmd->prewarm.image, io->image, sizeof(io->image), &err);
        if (b < 0) {
                api_error(d, resp,
                          b == -EAGAIN   ? API_E_TOO_MANY_PREWARMS
                          : b == -ENOMEM ? API_E_INTERNAL
                                         : API_E_INVALID_FIELD,
                          "field 'image': %s", err.msg);
                free(io);
                return;
        }
        if (!b)
                snprintf(io->image, sizeof(io->image), "%s", cmd->prewarm.image);
        /* The image is opened now, with the client's rights and beneath the image roots, so a typo
         * is a 400 rather than a job that fails later, and the job reads these descriptors only. */
        int r = sprout_run_as(&cmd->caller, IMAGE_OPEN_TIMEOUT_MS, image_open_as_client,
                              image_open_abandoned, io);
        if (r == -ETIMEDOUT) {
                api_error(d, resp, API_E_INVALID_FIELD,
                          "field 'image': opening it took longer than %d ms",
                          IMAGE_OPEN_TIMEOUT_MS);
                return; /* io is the thread's now */
        }
        struct sprout_manifest *m = io->m;
        if (r == 0 && !d->kvm) {
                /* The image was fine; the host is not: nothing could boot it. */
                api_error(d, resp, API_E_KVM_UNAVAILABLE, "%s", d->kvm_error);
                sprout_manifest_free(m);
                free(io);
                return;
        }
        if (r < 0) {
                api_error(d, resp, API_E_INVALID_FIELD, "field 'image': %s",
                          io->err.msg[0] ? io->err.msg : strerror(-r));
                sprout_manifest_free(m);
                free(io);
                return;
        }
        free(io);
        struct dsnap *e;
        r = jobs_start_prewarm(d, &cmd->prewarm, m, &e, &err);
        if (r < 0) {
                api_error(d, resp,
                          r == -EAGAIN      ? API_E_TOO_MANY_PREWARMS
                          : r == -EDQUOT    ? API_E_QUOTA_EXCEEDED
                          : r == -ESHUTDOWN ? API_E_SHUTTING_DOWN
                                            : API_E_INTERNAL,
                          "%s", err.msg);
                return;
        }
        pthread_mutex_lock(&d->lock);
        json_t *o = api_snapshot_json(d, e, owners_is_admin(d, &cmd->caller));
        pthread_mutex_unlock(&d->lock);
        registry_put(d, e);
        api_reply_json(resp, 202, o);
}

static int by_created(const void *a, const void *b)
{
        const struct dsnap *x = *(struct dsnap *const *)a;
        const struct dsnap *y = *(struct dsnap *const *)b;
        return (x->created_ns > y->created_ns) - (x->created_ns < y->created_ns);
}

void api_exec_snap_list(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        bool admin = owners_is_admin(d, &cmd->caller);
        json_t *arr = json_array();
        pthread_mutex_lock(&d->lock);
        size_t n = 0;
        for (struct dsnap *e = d->snaps; e; e = e->next)
                n++;
        struct dsnap **v = calloc(n ? n : 1, sizeof(*v));
        if (v) {
                n = 0;
                for (struct dsnap *e = d->snaps; e; e = e->next)
                        if (owners_may_see(d, &cmd->caller, e))
                                v[n++] = e;
                qsort(v, n, sizeof(*v), by_created);
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, api_snapshot_json(d, v[i], admin));
        }
        pthread_mutex_unlock(&d->lock);
        free(v);
        if (!v) {
                json_decref(arr);
                api_error(d, resp, API_E_INTERNAL, "out of memory");
                return;
        }
        api_reply_json(resp, 200, json_pack("{s:o}", "snapshots", arr));
}

void api_exec_snap_show(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dsnap *e = api_snapshot_get(d, cmd, cmd->id);
        if (!e) {
                api_error(d, resp, API_E_SNAPSHOT_NOT_FOUND, "no snapshot %s", cmd->id);
                return;
        }
        pthread_mutex_lock(&d->lock);
        json_t *o = api_snapshot_json(d, e, owners_is_admin(d, &cmd->caller));
        pthread_mutex_unlock(&d->lock);
        registry_put(d, e);
        api_reply_json(resp, 200, o);
}

int api_parse_snap_delete(struct api_req *rq, json_t *body, struct api_cmd *cmd,
                          struct api_resp *resp)
{
        (void)body;
        cmd->force = false;
        return api_query_bool(rq, "force", &cmd->force, resp) == -EINVAL ? -EINVAL : 0;
}

void api_exec_snap_delete(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        struct dsnap *e = api_snapshot_get(d, cmd, cmd->id);
        if (!e) {
                api_error(d, resp, API_E_SNAPSHOT_NOT_FOUND, "no snapshot %s", cmd->id);
                return;
        }
        unsigned destroyed = 0;
        bool unlink_file = false;
        pthread_mutex_lock(&d->lock);
        if (!e->listed) {
                api_error(d, resp, API_E_SNAPSHOT_NOT_FOUND, "no snapshot %s", cmd->id);
        } else if (e->status != DSNAP_READY && e->status != DSNAP_FAILED) {
                api_error(d, resp, API_E_SNAPSHOT_BUSY,
                          "snapshot %s is %s; delete it once it is ready or failed", e->id,
                          dsnap_status_name(e->status));
        } else if (e->api_clones && !cmd->force) {
                api_error(d, resp, API_E_SNAPSHOT_IN_USE,
                          "snapshot %s has %u clones; destroy them first or pass ?force=true",
                          e->id, e->api_clones);
        } else {
                destroyed = clones_remove_snapshot_locked(d, e);
                unlink_file = e->status == DSNAP_READY;
                registry_unlist_locked(d, e);
                api_reply_json(
                    resp, 200,
                    json_pack("{s:s, s:i}", "deleted", e->id, "clones_destroyed", (int)destroyed));
        }
        pthread_mutex_unlock(&d->lock);
        /* Clones already made keep their base memory; only new ones are refused. */
        if (unlink_file)
                owners_remove(d, e);
        if (unlink_file && unlink(e->path) < 0 && errno != ENOENT)
                sp_warn("snapshot %s: removing %s: %m", e->id, e->path);
        if (unlink_file)
                sp_info("snapshot %s deleted (%u clones destroyed)", e->id, destroyed);
        registry_put(d, e);
}
