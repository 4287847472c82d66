/* sproutd's life: settings, state directory, KVM, the snapshots already on disk, the socket and
 * the server; then wait for SIGTERM/SIGINT, drain in-flight requests and tear everything down. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sprout/daemon.h"
#include "sprout/log.h"
#include "sprout/version.h"
#include "api.h"

/* Each clone holds a few descriptors (VM, vCPU) and each connection one. */
static void raise_fd_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* Host settings that cost every clone, said once at start and kept for /v1/health: a floor VM
 * shows which threads KVM starts per VM here. */
static void find_host_advice(struct sproutd *d)
{
        struct sprout_floor f;
        struct sprout_err err = {0};
        if (sprout_floor_measure(d->kvm, &f, &err) < 0) {
                sp_warn("%s", err.msg);
                memset(&f, 0, sizeof(f));
        }
        d->nadvice = sprout_host_advice(&f, d->advice, sizeof(d->advice) / sizeof(d->advice[0]));
        for (size_t i = 0; i < d->nadvice; i++)
                sp_warn("host: %s", d->advice[i].text);
}

static struct sproutd *sproutd_new(void)
{
        struct sproutd *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->jobs_cv, NULL);
        d->lock_fd = -1;
        d->cgroup_fd = -1;
        d->started_ns = sprout_mono_ns();
        return d;
}

/* Everything left goes to the reaper; returns once it is all torn down. */
static void teardown(struct sproutd *d)
{
        pthread_mutex_lock(&d->lock);
        while (d->snaps) {
                struct dsnap *e = d->snaps;
                clones_remove_snapshot_locked(d, e);
                registry_unlist_locked(d, e);
        }
        pthread_mutex_unlock(&d->lock);
        reaper_stop(d);
        placement_stop(d);
}

/* 0 after a clean stop, 1 when prewarm threads still run (nothing may be freed), or -errno. */
static int serve(struct sproutd *d, const sigset_t *sigs)
{
        struct sprout_err err = {0};
        int lfd = -1, r;

        if ((r = state_dir_open(d, &err)) < 0 || (r = snapshot_key_open(d, &err)) < 0 ||
            (r = owners_init(d, &err)) < 0 || (r = placement_init(d, &err)) < 0 ||
            (r = cgroups_init(d, &err)) < 0) {
                sp_err("%s", err.msg);
                goto out;
        }
        /* Without KVM the daemon still serves: it lists snapshots, checks requests and says why
         * it cannot run VMs (503 kvm_unavailable), which is what an operator needs to see. */
        if (sprout_kvm_open(&d->kvm, &err) < 0) {
                snprintf(d->kvm_error, sizeof(d->kvm_error), "%s", err.msg);
                sp_warn("%s: prewarms and clones will fail until sproutd is restarted with KVM",
                        err.msg);
                d->kvm = NULL;
                sprout_err_clear(&err);
        }
        if (d->kvm)
                find_host_advice(d);
        if ((r = registry_scan(d, &err)) < 0 ||
            (r = reaper_start(d, (unsigned)d->cfg.reapers, &err)) < 0) {
                sp_err("%s", err.msg);
                goto out;
        }
        if ((r = api_socket_listen(d->cfg.socket_path, d->cfg.socket_group, &lfd, &err)) < 0 ||
            (r = api_http_start(d, lfd, &err)) < 0) {
                sp_err("%s", err.msg);
                if (lfd >= 0) {
                        close(lfd);
                        unlink(d->cfg.socket_path);
                }
                teardown(d);
                goto out;
        }
        unsigned nsnaps = 0;
        pthread_mutex_lock(&d->lock); /* requests are already being served */
        for (struct dsnap *e = d->snaps; e; e = e->next)
                nsnaps++;
        pthread_mutex_unlock(&d->lock);
        char where[64] = "in this process";
        if (d->cfg.clones_per_worker)
                snprintf(where, sizeof(where), "in worker processes of %lld",
                         (long long)d->cfg.clones_per_worker);
        sp_info("sproutd %s serving on %s (state %s, %s host, %u snapshots, %lld threads, clones "
                "%s)",
                SPROUT_VERSION, d->cfg.socket_path, d->cfg.state_dir,
                d->kvm ? sprout_host_kind_name(sprout_kvm_host_kind(d->kvm)) : "none (no KVM)",
                nsnaps, (long long)d->cfg.workers, where);

        int sig;
        while (sigwait(sigs, &sig) == 0 && sig == SIGHUP)
                sp_info("SIGHUP: nothing to reload (settings are read at start)");
        sp_info("%s: draining (up to %lld s)", strsignal(sig), (long long)d->cfg.drain_timeout_s);

        int64_t deadline = sprout_mono_ns() + d->cfg.drain_timeout_s * 1000000000LL;
        api_http_drain(d, deadline);
        unlink(d->cfg.socket_path);
        pthread_mutex_lock(&d->lock);
        pthread_cond_broadcast(&d->jobs_cv); /* queued prewarms give up */
        pthread_mutex_unlock(&d->lock);
        unsigned left = jobs_join(d, true, deadline);
        if (left) {
                /* A boot cannot be interrupted; the process exit ends it, and the next start
                 * removes the temporary file it may leave. Nothing is freed under its feet. */
                sp_warn("exiting with %u prewarms unfinished", left);
                return 1;
        }
        teardown(d);
        sp_info("stopped");
        r = 0;
out:
        if (d->kvm)
                sprout_kvm_close(d->kvm);
        snapshot_key_close(d);
        cgroups_close(d);
        state_dir_close(d);
        return r;
}

int sproutd_main(int argc, char **argv)
{
        struct sprout_err err = {0};
        struct sproutd *d = sproutd_new();
        if (!d) {
                fprintf(stderr, "%s: out of memory\n", argv[0]);
                return 1;
        }
        int r = sproutd_config_load(argc, argv, &d->cfg, &err);
        if (r != 0) {
                if (r == 1 && d->cfg.list_routes)
                        api_routes_print(stdout);
                if (r < 0)
                        fprintf(stderr, "%s: %s (see --help)\n", argv[0], err.msg);
                free(d);
                return r < 0 ? 2 : 0;
        }
        sprout_log_level = (int)d->cfg.log_level;

        /* Every thread inherits this mask, so only the sigwait below sees these signals. */
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();

        r = serve(d, &sigs);
        if (r == 1)
                return 0;
        free(d);
        return r < 0 ? 1 : 0;
}
