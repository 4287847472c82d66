/* GET /metrics: the service's counters and histograms, gauges read from its state and the process's
 * memory, in the Prometheus text exposition format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void histo_print(FILE *f, const char *name, const char *help, struct histo *h)
{
        uint64_t cum = 0;
        fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        for (unsigned i = 0; i < HISTO_BUCKETS - 1; i++) {
                cum += atomic_load(&h->bucket[i]);
                fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, histo_bounds[i],
                        (unsigned long long)cum);
        }
        cum += atomic_load(&h->bucket[HISTO_BUCKETS - 1]);
        fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        fprintf(f, "%s_sum %.9f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_ns) / 1e9,
                name, (unsigned long long)cum);
}

static void one(FILE *f, const char *type, const char *name, const char *help, double v)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* Resident and anonymous bytes of this process: clones' private pages are among the anonymous. */
static void process_memory(uint64_t *rss, uint64_t *anon)
{
        char line[256];
        unsigned long long kb;
        *rss = *anon = 0;
        FILE *f = fopen("/proc/self/smaps_rollup", "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "Rss: %llu kB", &kb) == 1)
                        *rss = kb * 1024;
                else if (sscanf(line, "Anonymous: %llu kB", &kb) == 1)
                        *anon = kb * 1024;
        }
        fclose(f);
}

char *api_metrics_render(struct sproutd *d, size_t *len)
{
        char *buf = NULL;
        FILE *f = open_memstream(&buf, len);
        if (!f)
                return NULL;
        struct metrics *m = &d->metrics;

        histo_print(
            f, "sprout_restore_seconds",
            "VMM restore of a clone: state ioctls, plus VM creation when no shell was pooled",
            &m->restore);
        histo_print(f, "sprout_clone_create_seconds",
                    "a clone created by the daemon, the first clone's base load included",
                    &m->clone);
        histo_print(f, "sprout_invoke_seconds", "one successful invocation of a clone", &m->invoke);
        histo_print(f, "sprout_oneshot_seconds",
                    "a one-shot snapshot call: take a clone, invoke it", &m->oneshot);
        histo_print(f, "sprout_http_request_seconds", "an API request, first byte to response",
                    &m->request);

        one(f, "counter", "sprout_http_requests_total", "API requests answered",
            (double)atomic_load(&m->requests));
        one(f, "counter", "sprout_invocations_total", "successful invocations",
            (double)atomic_load(&m->invocations));
        one(f, "counter", "sprout_invoke_failures_total", "invocations that failed",
            (double)atomic_load(&m->invoke_failures));
        one(f, "counter", "sprout_clones_created_total", "clones created",
            (double)atomic_load(&m->clones_created));
        one(f, "counter", "sprout_clones_destroyed_total", "clones torn down",
            (double)atomic_load(&m->clones_destroyed));
        one(f, "counter", "sprout_clones_reaped_idle_total", "clones destroyed for idleness",
            (double)atomic_load(&m->clones_reaped_idle));
        one(f, "counter", "sprout_base_loads_total", "snapshots loaded as bases",
            (double)atomic_load(&m->base_loads));
        one(f, "counter", "sprout_worker_deaths_total",
            "worker processes that died or were killed (their clones with them)",
            (double)atomic_load(&m->workers_died));
        one(f, "counter", "sprout_ready_clones_taken_total",
            "fresh clones taken from a ready pool instead of restored",
            (double)atomic_load(&m->ready_taken));
        one(f, "counter", "sprout_ready_pool_misses_total",
            "one-shot calls that found no ready clone and restored one",
            (double)atomic_load(&m->ready_missed));
        one(f, "counter", "sprout_recycled_clones_taken_total",
            "ready clones handed out that had been recycled in place, not restored afresh",
            (double)atomic_load(&m->recycled_taken));
        fprintf(f,
                "# HELP sprout_oneshot_total one-shot calls by the clone they used\n"
                "# TYPE sprout_oneshot_total counter\n"
                "sprout_oneshot_total{clone=\"reused\"} %llu\n"
                "sprout_oneshot_total{clone=\"fresh\"} %llu\n",
                (unsigned long long)atomic_load(&m->oneshot_reused),
                (unsigned long long)atomic_load(&m->oneshot_fresh));
        fprintf(f,
                "# HELP sprout_prewarms_total prewarms finished\n"
                "# TYPE sprout_prewarms_total counter\n"
                "sprout_prewarms_total{result=\"ok\"} %llu\n"
                "sprout_prewarms_total{result=\"failed\"} %llu\n",
                (unsigned long long)atomic_load(&m->prewarms_ok),
                (unsigned long long)atomic_load(&m->prewarms_failed));
        fprintf(f, "# HELP sprout_errors_total error responses by code\n"
                   "# TYPE sprout_errors_total counter\n");
        for (int i = 0; i < API_E_COUNT; i++)
                fprintf(f, "sprout_errors_total{code=\"%s\"} %llu\n", api_err_code(i),
                        (unsigned long long)atomic_load(&m->errors[i]));

        unsigned queued, busy;
        workers_counts(&d->workers, &queued, &busy);
        unsigned by_status[DSNAP_FAILED + 1] = {0}, idle = 0, shells = 0, ready = 0;
        uint64_t base_bytes = 0;
        pthread_mutex_lock(&d->lock);
        for (struct dsnap *e = d->snaps; e; e = e->next) {
                by_status[e->status]++;
                idle += e->nidle;
                if (e->base) {
                        shells += dbase_pooled(e->base);
                        ready += dbase_ready(e->base);
                        base_bytes += e->ram_size;
                }
        }
        unsigned live = d->nclones_table, total = d->clones_total, dying = d->clones_dying;
        unsigned bases = d->bases_loaded, jobs = d->jobs_running, pending = d->jobs_pending;
        pthread_mutex_unlock(&d->lock);

        one(f, "gauge", "sprout_clones_live", "clones in the clone table", live);
        one(f, "gauge", "sprout_clones_total",
            "clones counted against the limit (live, one-shot, dying)", total);
        one(f, "gauge", "sprout_clones_dying", "clones waiting for teardown", dying);
        one(f, "gauge", "sprout_clones_idle_pooled", "idle clones kept for one-shot reuse", idle);
        one(f, "gauge", "sprout_ready_clones",
            "ready clones (restored and warmed up) waiting for fresh one-shot calls", ready);
        one(f, "gauge", "sprout_clone_limit", "the live clone limit", (double)d->cfg.max_clones);
        one(f, "gauge", "sprout_bases_loaded", "snapshots loaded as bases", bases);
        one(f, "gauge", "sprout_base_ram_bytes", "guest RAM of the loaded bases",
            (double)base_bytes);
        one(f, "gauge", "sprout_shells_pooled", "VM shells prepared for restores", shells);
        one(f, "gauge", "sprout_worker_processes", "worker processes holding clones",
            placement_workers(d));
        one(f, "gauge", "sprout_workers_busy", "workers running a request", busy);
        one(f, "gauge", "sprout_requests_queued", "requests waiting for a worker", queued);
        one(f, "gauge", "sprout_prewarms_running", "prewarms booting or writing", jobs);
        one(f, "gauge", "sprout_prewarms_pending", "prewarms queued or running", pending);
        fprintf(f, "# HELP sprout_snapshots snapshots by status\n# TYPE sprout_snapshots gauge\n");
        for (int s = 0; s <= DSNAP_FAILED; s++)
                fprintf(f, "sprout_snapshots{status=\"%s\"} %u\n", dsnap_status_name(s),
                        by_status[s]);
        uint64_t rss, anon;
        process_memory(&rss, &anon);
        one(f, "gauge", "sprout_process_resident_bytes", "resident memory of sproutd", (double)rss);
        one(f, "gauge", "sprout_process_anonymous_bytes",
            "anonymous memory of sproutd, clones' private pages included", (double)anon);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
