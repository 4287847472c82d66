/* GET /v1/health (is it up, what is it holding) and GET /metrics (Prometheus text). */
#include <stdlib.h>
#include <string.h>

#include "sprout/version.h"
#include "sprout/vmm.h"
#include "api.h"

void api_exec_health(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        (void)cmd;
        unsigned queued, busy;
        workers_counts(&d->workers, &queued, &busy);
        pthread_mutex_lock(&d->lock);
        unsigned nsnaps = 0;
        for (struct dsnap *e = d->snaps; e; e = e->next)
                nsnaps++;
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:f, s:i, s:{s:i, s:i, s:i, s:I}, s:i, s:{s:I, s:i, s:i}, "
            "s:{s:i, s:i}}",
            "status",
            atomic_load(&d->draining) ? "draining"
            : d->kvm                  ? "ok"
                                      : "no_kvm",
            "version", SPROUT_VERSION, "api", "v1", "host_kind",
            d->kvm ? sprout_host_kind_name(sprout_kvm_host_kind(d->kvm)) : "none", "uptime_s",
            (double)(sprout_mono_ns() - d->started_ns) / 1e9, "snapshots", (int)nsnaps, "clones",
            "live", (int)d->nclones_table, "total", (int)d->clones_total, "dying",
            (int)d->clones_dying, "limit", (json_int_t)d->cfg.max_clones, "bases_loaded",
            (int)d->bases_loaded, "workers", "threads", (json_int_t)d->cfg.workers, "busy",
            (int)busy, "queued", (int)queued, "prewarms", "running", (int)d->jobs_running,
            "pending", (int)d->jobs_pending);
        pthread_mutex_unlock(&d->lock);
        /* Where a client may put images (and `sprout deploy` builds them). */
        json_t *roots = json_array();
        for (size_t i = 0; i < d->image_roots.n; i++)
                json_array_append_new(roots, json_string(d->image_roots.paths[i]));
        if (o)
                json_object_set_new(o, "image_roots", roots);
        else
                json_decref(roots);
        /* Host settings that cost every clone (found at start; docs/workers.md). */
        json_t *advice = json_array();
        for (size_t i = 0; i < d->nadvice; i++)
                json_array_append_new(advice, json_string(d->advice[i].text));
        if (o)
                json_object_set_new(o, "host_advice", advice);
        else
                json_decref(advice);
        api_reply_json(resp, 200, o);
}

void api_exec_metrics(struct sproutd *d, const struct api_cmd *cmd, struct api_resp *resp)
{
        (void)cmd;
        size_t len;
        char *text = api_metrics_render(d, &len);
        if (!text) {
                api_error(d, resp, API_E_INTERNAL, "out of memory");
                return;
        }
        api_reply_raw(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
