/* sproutd's settings: one table names every setting once, for the flags, the JSON config file and
 * --help alike. */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/daemon.h"
#include "sprout/log.h"
#include "config.h"

enum opt_kind { O_PATH, O_STRING, O_INT, O_LEVEL };

struct opt {
        const char *name; /* the flag without "--"; the config key has '_' for '-' */
        enum opt_kind kind;
        size_t off, size;
        int64_t min, max;
        const char *help;
};

#define STR(field, k)                                                                              \
        k, offsetof(struct sproutd_config, field), sizeof(((struct sproutd_config *)0)->field)
#define INT(field) O_INT, offsetof(struct sproutd_config, field), sizeof(int64_t)

static const struct opt opts[] = {
    {"state-dir", STR(state_dir, O_PATH), 0, 0, "DIR: snapshots and the socket live here"},
    {"socket", STR(socket_path, O_PATH), 0, 0,
     "PATH: the API socket (default STATE_DIR/" SPROUT_SOCKET_NAME ")"},
    {"socket-group", STR(socket_group, O_STRING), 0, 0, "GROUP: give the socket to this group"},
    {"admin-group", STR(admin_group, O_STRING), 0, 0,
     "GROUP: its members see and act on every tenant's snapshots and clones, as root does"},
    {"image-roots", STR(image_roots, O_STRING), 0, 0,
     "DIR[:DIR...]: clients' images must be beneath these (default STATE_DIR/images)"},
    {"workers", INT(workers), 1, 256,
     "N: threads running clone/invoke requests (default 4 per CPU)"},
    {"max-queue", INT(max_queue), 1, 1000000, "N: requests waiting for a worker before 429"},
    {"tenant-max-queue", INT(tenant_max_queue), 0, 1000000,
     "N: requests of one client (socket peer uid) waiting for a worker before 429 (0: "
     "max-queue/4)"},
    {"tenant-max-workers", INT(tenant_max_workers), 0, 256,
     "N: requests of one client running at once; more wait their turn (0: 3/4 of --workers)"},
    {"max-clones", INT(max_clones), 1, 100000, "N: live clones before 429"},
    {"max-connections", INT(max_connections), 1, 100000, "N: open API connections"},
    {"max-connections-per-client", INT(max_connections_per_client), 1, 100000,
     "N: open API connections of one client (socket peer uid) before 429"},
    {"max-prewarms", INT(max_prewarms), 1, 64, "N: prewarms booting at once"},
    {"max-prewarm-jobs", INT(max_prewarm_jobs), 1, 1024,
     "N: prewarms queued or running before 429"},
    {"tenant-max-clones", INT(tenant_max_clones), 0, 100000,
     "N: live clones of one tenant's snapshots before 429 quota_exceeded (0: only --max-clones)"},
    {"tenant-max-snapshots", INT(tenant_max_snapshots), 0, 100000,
     "N: snapshots one tenant may hold, prewarms in flight included (0: no limit)"},
    {"tenant-max-prewarms", INT(tenant_max_prewarms), 0, 1024,
     "N: prewarms of one tenant queued or running (0: only --max-prewarm-jobs)"},
    {"tenant-max-guest-memory-mib", INT(tenant_max_guest_memory_mib), 0, 1LL << 30,
     "MiB: guest memory one tenant's clones may commit, each counting its whole RAM, with its "
     "ready clones and loaded bases (default half the host's RAM; 0: no limit)"},
    {"tenant-max-disk-mib", INT(tenant_max_disk_mib), 0, 1LL << 30,
     "MiB: disk one tenant's snapshot files may take (0: no limit)"},
    {"pool-shells", INT(pool_shells), 0, 64, "N: VM shells each loaded snapshot keeps ready"},
    {"pool-ready", INT(pool_ready), 0, 64,
     "N: ready clones each loaded snapshot keeps for fresh one-shot calls"},
    {"pool-ready-max", INT(pool_ready_max), 0, 64,
     "N: ready clones a snapshot may keep when its one-shot rate asks for more (0: --pool-ready)"},
    {"recycle", INT(recycle), 0, 1,
     "0|1: finished clones are reset in place into the ready pool (1), or torn down (0)"},
    {"prefault-shells", INT(prefault_shells), 0, 1,
     "0|1: a snapshot's working set is copied into a clone at its first run (0), or into every "
     "pooled shell as it is made (1: a named clone's first invoke is faster, and every waiting "
     "clone holds the copies, ~300 KiB for hello)"},
    {"reapers", INT(reapers), 1, 16, "N: threads tearing clones down"},
    {"clones-per-worker", INT(clones_per_worker), 0, 4096,
     "K: clones of one tenant per jailed worker process; 0 holds them all in sproutd itself"},
    {"worker-exe", STR(worker_exe, O_PATH), 0, 0,
     "PATH: the sprout-worker binary (default: the one built or installed with sproutd)"},
    {"worker-uid-base", INT(worker_uid_base), 1, 0xfffe0000LL,
     "UID: workers run as UID..UID+worker-uids-1, each its own (uid and gid alike)"},
    {"worker-uids", INT(worker_uids), 1, 1 << 20, "N: how many uids workers may use"},
    {"worker-seccomp", INT(worker_seccomp), 0, 1,
     "0|1: the workers' seccomp allow-lists (1; 0 only to find a missing system call)"},
    {"cgroup-root", STR(cgroup_root, O_STRING), 0, 0,
     "DIR: a cgroup v2 directory delegated to sproutd; each tenant's workers go in DIR/tenant-UID"},
    {"tenant-memory-max", INT(tenant_memory_max), 0, 1LL << 50,
     "BYTES: memory.max of each tenant's cgroup (0: no limit; needs --cgroup-root)"},
    {"worker-test-hooks", INT(worker_test_hooks), 0, 1,
     "0|1: let the daemon tests make a worker break its filter (never in production)"},
    {"invoke-timeout-ms", INT(invoke_timeout_ms), 1, 3600000,
     "MS: default time limit of an invocation"},
    {"max-invoke-timeout-ms", INT(max_invoke_timeout_ms), 1, 3600000,
     "MS: the most a request may ask for"},
    {"idle-timeout-s", INT(idle_timeout_s), 1, 86400 * 365, "S: destroy clones idle this long"},
    {"base-keep-s", INT(base_keep_s), 0, 86400 * 365,
     "S: keep a snapshot loaded this long after its last clone"},
    {"prewarm-timeout-s", INT(prewarm_timeout_s), 1, 86400,
     "S: a prewarm boot may take this long (and a request may ask for no more)"},
    {"max-zstd-level", INT(max_zstd_level), 1, 19,
     "N: the highest zstd level a prewarm request may ask for"},
    {"drain-timeout-s", INT(drain_timeout_s), 0, 3600,
     "S: on SIGTERM, wait this long for in-flight work"},
    {"log-level", O_LEVEL, offsetof(struct sproutd_config, log_level), sizeof(int64_t), 0, 3,
     "error|warn|info|debug"},
};

#undef STR
#undef INT

static const char *const levels[] = {"error", "warn", "info", "debug"};

void sproutd_usage(const char *prog, FILE *f)
{
        fprintf(
            f,
            "usage: %s [--config FILE] [--FLAG VALUE ...] [--list-routes]\n\n"
            "Serves the sprout clone API (HTTP/1.1 + JSON) on a Unix socket. Runs with no\n"
            "configuration; FILE is a JSON object whose keys are the flags below with '_' for\n"
            "'-' (flags win over it). SIGTERM or SIGINT drains in-flight requests and exits.\n\n"
            "flags:\n",
            prog);
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
                fprintf(f, "  --%-22s %s\n", opts[i].name, opts[i].help);
        fprintf(f, "  --%-22s %s\n", "config", "FILE: read settings from this JSON file first");
        fprintf(f, "  --%-22s %s\n", "list-routes", "print every API route and exit");
}

static void set_defaults(struct sproutd_config *c)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                cpus = 1;
        memset(c, 0, sizeof(*c));
        /* Workers block in KVM_RUN, in base loads and on busy clones, so more than one per CPU. */
        c->workers = cpus * 4 < 4 ? 4 : cpus * 4 > 64 ? 64 : cpus * 4;
        c->max_queue = 1024;
        c->max_clones = 1024;
        c->max_connections = 1024;
        c->max_connections_per_client = 256;
        c->max_prewarms = 1; /* a prewarm is a full cold boot: one at a time by default */
        c->max_prewarm_jobs = 16;
        /* One tenant can fill neither the prewarm queue nor the disk on its own. */
        c->tenant_max_prewarms = 4;
        c->tenant_max_snapshots = 256;
        /* Half the host's RAM: clone RAM is MAP_NORESERVE, so without a bound one tenant's clones
         * could commit more than the host has and bring the OOM killer to everyone's. */
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psize > 0)
                c->tenant_max_guest_memory_mib = (int64_t)pages / 2 / ((1 << 20) / psize);
        c->pool_shells = 8;
        c->pool_ready = 2;
        c->recycle = 1;
        c->reapers = 2;
        c->clones_per_worker = 64;
        /* Far above the uids of users and of Debian's subordinate ranges (100000 + 65536 n). */
        c->worker_uid_base = 1500000000;
        c->worker_uids = 65536;
        c->worker_seccomp = 1;
        c->invoke_timeout_ms = 10000;
        c->max_invoke_timeout_ms = 300000;
        c->idle_timeout_s = 300;
        c->base_keep_s = 600;
        c->prewarm_timeout_s = 300;
        /* Level 19 takes minutes of every core for a large guest: a DoS, not a setting. */
        c->max_zstd_level = 9;
        c->drain_timeout_s = 30;
        c->log_level = SPROUT_LOG_INFO;
        const char *env = getenv("SPROUT_LOG");
        if (env && *env >= '0' && *env <= '3' && !env[1])
                c->log_level = *env - '0';
}

static const struct opt *find_opt(const char *name, size_t len)
{
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
                if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
                        return &opts[i];
        return NULL;
}

/* Stores a value given as text (a flag). */
static int set_text(struct sproutd_config *c, const struct opt *o, const char *v,
                    struct sprout_err *err)
{
        char *dst = (char *)c + o->off;
        if (o->kind == O_PATH || o->kind == O_STRING) {
                if (strlen(v) >= o->size || (o->kind == O_PATH && !*v))
                        return sprout_err_set(err, -EINVAL,
                                              "--%s: '%s' is empty or longer than %zu bytes",
                                              o->name, v, o->size - 1);
                memcpy(dst, v, strlen(v) + 1);
                return 0;
        }
        if (o->kind == O_LEVEL) {
                for (int i = 0; i < 4; i++)
                        if (!strcmp(v, levels[i])) {
                                *(int64_t *)(void *)dst = i;
                                return 0;
                        }
                return sprout_err_set(err, -EINVAL, "--%s takes error, warn, info or debug",
                                      o->name);
        }
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < o->min || n > o->max)
                return sprout_err_set(err, -EINVAL, "--%s takes a whole number in %lld..%lld",
                                      o->name, (long long)o->min, (long long)o->max);
        *(int64_t *)(void *)dst = n;
        return 0;
}

/* Stores a value from the config file, which must have the type the setting has. */
static int set_json(struct sproutd_config *c, const struct opt *o, const char *key, json_t *v,
                    struct sprout_err *err)
{
        if (o->kind == O_INT) {
                if (!json_is_integer(v))
                        return sprout_err_set(err, -EINVAL, "config field '%s' must be an integer",
                                              key);
                json_int_t n = json_integer_value(v);
                if (n < o->min || n > o->max)
                        return sprout_err_set(err, -EINVAL,
                                              "config field '%s' must be in %lld..%lld", key,
                                              (long long)o->min, (long long)o->max);
                *(int64_t *)(void *)((char *)c + o->off) = n;
                return 0;
        }
        if (!json_is_string(v))
                return sprout_err_set(err, -EINVAL, "config field '%s' must be a string", key);
        struct sprout_err e2 = {0};
        if (set_text(c, o, json_string_value(v), &e2) < 0)
                return sprout_err_set(err, -EINVAL, "config field '%s': %s", key, e2.msg + 2);
        return 0;
}

static int load_file(struct sproutd_config *c, const char *path, struct sprout_err *err)
{
        json_error_t je;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return sprout_err_set(err, -EINVAL, "%s:%d:%d: %s", path, je.line, je.column,
                                      je.text);
        int r = 0;
        if (!json_is_object(root)) {
                r = sprout_err_set(err, -EINVAL, "%s: the config must be a JSON object", path);
                goto out;
        }
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
                char name[64];
                size_t n = strlen(key);
                if (n >= sizeof(name))
                        n = sizeof(name) - 1;
                for (size_t i = 0; i < n; i++)
                        name[i] = key[i] == '_' ? '-' : key[i];
                const struct opt *o = strchr(key, '-') ? NULL : find_opt(name, n);
                if (!o) {
                        r = sprout_err_set(err, -EINVAL, "%s: unknown field '%s'", path, key);
                        goto out;
                }
                r = set_json(c, o, key, v, err);
                if (r < 0)
                        goto out;
        }
out:
        json_decref(root);
        return r;
}

/* Splits "--name=value" or "--name value"; returns the number of argv slots used, or -EINVAL. */
static int split_flag(int argc, char **argv, int i, const char **name, size_t *nlen,
                      const char **val)
{
        const char *a = argv[i] + 2, *eq = strchr(a, '=');
        *name = a;
        if (eq) {
                *nlen = (size_t)(eq - a);
                *val = eq + 1;
                return 1;
        }
        *nlen = strlen(a);
        *val = i + 1 < argc ? argv[i + 1] : NULL;
        return 2;
}

int sproutd_config_load(int argc, char **argv, struct sproutd_config *c, struct sprout_err *err)
{
        const char *config = NULL;
        int r;

        set_defaults(c);
        /* First pass: the flags that are not settings, so the file is read before the flags. */
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        sproutd_usage(argv[0], stdout);
                        return 1;
                }
                if (!strcmp(argv[i], "--list-routes")) {
                        c->list_routes = true;
                        continue;
                }
                if (strncmp(argv[i], "--", 2))
                        return sprout_err_set(err, -EINVAL, "unexpected argument '%s'", argv[i]);
                const char *name, *val;
                size_t nlen;
                int used = split_flag(argc, argv, i, &name, &nlen, &val);
                bool is_config = nlen == 6 && !strncmp(name, "config", 6);
                if (!is_config && !find_opt(name, nlen))
                        return sprout_err_set(err, -EINVAL, "unknown flag '--%.*s'", (int)nlen,
                                              name);
                if (!val)
                        return sprout_err_set(err, -EINVAL, "%s needs a value", argv[i]);
                if (is_config)
                        config = val;
                i += used - 1;
        }
        if (c->list_routes)
                return 1;
        if (config && (r = load_file(c, config, err)) < 0)
                return r;
        for (int i = 1; i < argc; i++) {
                const char *name, *val;
                size_t nlen;
                if (!strcmp(argv[i], "--list-routes"))
                        continue;
                int used = split_flag(argc, argv, i, &name, &nlen, &val);
                const struct opt *o = find_opt(name, nlen);
                if (o && (r = set_text(c, o, val, err)) < 0)
                        return r;
                i += used - 1;
        }
        if (!c->state_dir[0] &&
            (r = sprout_default_state_dir(c->state_dir, sizeof(c->state_dir), err)) < 0)
                return r;
        if (!c->socket_path[0]) {
                int n = snprintf(c->socket_path, sizeof(c->socket_path), "%s/%s", c->state_dir,
                                 SPROUT_SOCKET_NAME);
                if (n < 0 || (size_t)n >= sizeof(c->socket_path))
                        return sprout_err_set(
                            err, -ENAMETOOLONG,
                            "the socket path %s/%s is longer than a Unix socket allows; "
                            "give a shorter --socket",
                            c->state_dir, SPROUT_SOCKET_NAME);
        }
        if (c->invoke_timeout_ms > c->max_invoke_timeout_ms)
                return sprout_err_set(err, -EINVAL,
                                      "--invoke-timeout-ms exceeds --max-invoke-timeout-ms");
        return 0;
}
