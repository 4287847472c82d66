/* sproutd's settings: built-in defaults, then an optional JSON config file, then flags, each
 * overriding the one before. */
#ifndef SPROUTD_CONFIG_H
#define SPROUTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>

#include "sprout/err.h"

struct sproutd_config {
        char state_dir[PATH_MAX];
        char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char socket_group[64];      /* "" keeps the daemon's group */
        char image_roots[PATH_MAX]; /* colon-separated; "" is STATE_DIR/images */
        char admin_group[64];       /* "": only root sees every tenant's */
        int64_t workers;            /* threads that run clone, invoke and load requests */
        int64_t max_queue;          /* requests waiting for a worker before 429 */
        int64_t tenant_max_queue;   /* of those, one client's (0: a quarter of max_queue) */
        int64_t tenant_max_workers; /* one client's requests running at once (0: 3/4 of them) */
        int64_t max_clones;         /* live clones, including those being torn down, before 429 */
        int64_t max_connections;
        int64_t max_connections_per_client; /* per socket peer uid */
        int64_t max_prewarms;               /* prewarms booting at once; more wait as "queued" */
        int64_t max_prewarm_jobs;           /* prewarms queued or running before 429 */
        int64_t pool_shells;                /* VM shells each loaded base keeps prepared */
        int64_t pool_ready;        /* ready clones each loaded base keeps for fresh one-shots */
        int64_t pool_ready_max;    /* up to this many when demand asks (0: pool_ready) */
        int64_t recycle;           /* 1: finished clones are recycled into the ready pool */
        int64_t prefault_shells;   /* 1: the working set is copied into shells, not at first run */
        int64_t reapers;           /* threads that tear clones down */
        int64_t clones_per_worker; /* K: 0 keeps clones in this process (docs/workers.md) */
        char worker_exe[PATH_MAX]; /* "": the built or installed sprout-worker */
        int64_t worker_uid_base, worker_uids;
        int64_t worker_seccomp, worker_test_hooks;
        char cgroup_root[PATH_MAX]; /* "": workers are not put in cgroups */
        int64_t tenant_memory_max;  /* bytes; 0: none */
        /* Per tenant (a snapshot's owner; root is not limited), 0: none (quota.c) */
        int64_t tenant_max_clones, tenant_max_snapshots, tenant_max_prewarms;
        int64_t tenant_max_guest_memory_mib, tenant_max_disk_mib;
        int64_t invoke_timeout_ms;
        int64_t max_invoke_timeout_ms;
        int64_t idle_timeout_s;    /* an idle clone is destroyed after this long */
        int64_t base_keep_s;       /* a base with no clones is unloaded after this long */
        int64_t prewarm_timeout_s; /* boot to READY; the most a request may ask for */
        int64_t max_zstd_level;    /* the most a prewarm request may ask for */
        int64_t drain_timeout_s;   /* how long SIGTERM waits for in-flight work */
        int64_t log_level;         /* SPROUT_LOG_* */
        bool list_routes;          /* print the route table and exit */
};

/* Fills c from defaults, the file named by --config (if any) and the flags. Returns 0 to run, 1
 * when --help or --list-routes was handled (exit 0), or -EINVAL with err naming the bad flag or
 * field (exit 2). */
int sproutd_config_load(int argc, char **argv, struct sproutd_config *c, struct sprout_err *err);

void sproutd_usage(const char *prog, FILE *f);

/* The most ready clones a base may keep: --pool-ready-max, never below --pool-ready. */
static inline unsigned config_ready_cap(const struct sproutd_config *c)
{
        return (unsigned)(c->pool_ready_max > c->pool_ready ? c->pool_ready_max : c->pool_ready);
}

/* The most requests of one client (socket peer uid) that wait for a worker: a quarter of the
 * queue by default, so one client cannot fill it for the others. */
static inline unsigned config_tenant_queue(const struct sproutd_config *c)
{
        int64_t n = c->tenant_max_queue ? c->tenant_max_queue : c->max_queue / 4;
        return (unsigned)(n < 1 ? 1 : n > c->max_queue ? c->max_queue : n);
}

/* The most requests of one client running at once: by default all but a quarter of the workers,
 * which stay free for other clients. */
static inline unsigned config_tenant_workers(const struct sproutd_config *c)
{
        int64_t n = c->tenant_max_workers ? c->tenant_max_workers : c->workers - c->workers / 4;
        return (unsigned)(n < 1 ? 1 : n > c->workers ? c->workers : n);
}

#endif
