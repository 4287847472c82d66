/* Prewarm jobs: each POST /v1/snapshots gets a thread that boots the image and writes the snapshot
 * (sprout_prewarm blocks for the whole boot), at most max_prewarms booting at once; the entry's
 * status follows the phases so clients can poll it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "sprout/log.h"
#include "service.h"

struct job {
        struct job *next;
        struct sproutd *d;
        struct dsnap *e; /* the job's reference */
        struct prewarm_params p;
        struct sprout_manifest *m; /* the image, opened by the API with the client's rights */
        pthread_t thread;
        atomic_bool finished;
};

static void on_progress(void *ctx, enum sprout_prewarm_phase phase, uint64_t done, uint64_t total)
{
        struct job *j = ctx;
        struct sproutd *d = j->d;
        enum dsnap_status s = phase == SPROUT_PW_BOOTING ? DSNAP_BOOTING : DSNAP_SNAPSHOTTING;
        pthread_mutex_lock(&d->lock);
        bool changed = j->e->status != s;
        j->e->status = s;
        j->e->progress_done = done;
        j->e->progress_total = total;
        pthread_mutex_unlock(&d->lock);
        if (changed)
                sp_info("snapshot %s: %s", j->e->id, dsnap_status_name(s));
}

static void run_prewarm(struct job *j)
{
        struct sproutd *d = j->d;
        struct dsnap *e = j->e;
        struct sprout_err err = {0};
        struct sprout_prewarm_stats *st = calloc(1, sizeof(*st));
        struct dsnap *meta = calloc(1, sizeof(*meta));
        int r = st && meta ? 0 : sprout_err_set(&err, -ENOMEM, "out of memory");

        if (r == 0) {
                struct sprout_prewarm_opts o = {
                    .image = j->p.image,
                    .manifest = j->m,
                    .out_path = e->path,
                    .cmdline = j->p.cmdline[0] ? j->p.cmdline : NULL,
                    .console_fd = -1,
                    .timeout_ms = j->p.timeout_s * 1000,
                    .zstd_level = j->p.zstd_level,
                    .uuid = e->uuid,
                    .key = &d->snap_key,
                    .progress = on_progress,
                    .progress_ctx = j,
                };
                r = d->kvm ? sprout_prewarm(d->kvm, &o, st, &err)
                           : sprout_err_set(&err, -ENODEV, "%s", d->kvm_error);
        }
        /* Who owns it survives a restart (owners.c). */
        if (r == 0)
                r = owners_write(d, e, e->owner, &err);
        if (r == 0) {
                /* Read back what is on disk: the listing shows the file, not our intentions. */
                snprintf(meta->path, sizeof(meta->path), "%s", e->path);
                r = registry_read_meta(d, meta, &err);
        }
        pthread_mutex_lock(&d->lock);
        if (r == 0) {
                e->file_size = meta->file_size;
                /* Admission checked the disk before the boot; only the file tells its size. */
                if ((r = quota_disk_locked(d, e, &err)) < 0)
                        e->file_size = 0;
        }
        if (r == 0) {
                e->ram_size = meta->ram_size;
                e->nonzero_bytes = meta->nonzero_bytes;
                e->created_ns = meta->created_ns;
                memcpy(e->image_name, meta->image_name, sizeof(e->image_name));
                e->boot_s = st->boot_s;
                e->write_s = st->write.seconds;
                e->status = DSNAP_READY;
        } else {
                snprintf(e->error, sizeof(e->error), "%s", err.msg);
                if (st && st->console_tail[0])
                        e->console_tail = strdup(st->console_tail);
                e->status = DSNAP_FAILED;
        }
        pthread_mutex_unlock(&d->lock);
        if (r == -EDQUOT) {
                /* Over the disk quota: the file goes, the failed entry says why. */
                owners_remove(d, e);
                if (unlink(e->path) < 0)
                        sp_warn("snapshot %s: removing it: %m", e->id);
        }
        if (r == 0) {
                atomic_fetch_add(&d->metrics.prewarms_ok, 1);
                sp_info("snapshot %s: ready (%s, boot %.2f s, %llu MiB RAM in %.2f MiB)", e->id,
                        e->image_name, st->boot_s, (unsigned long long)(e->ram_size >> 20),
                        (double)e->file_size / 1048576.0);
        } else {
                atomic_fetch_add(&d->metrics.prewarms_failed, 1);
                sp_warn("snapshot %s: prewarm of %s failed: %s", e->id, j->p.image, err.msg);
        }
        free(st);
        free(meta);
}

static void *job_main(void *arg)
{
        struct job *j = arg;
        struct sproutd *d = j->d;
        bool run;

        pthread_mutex_lock(&d->lock);
        while (d->jobs_running >= (unsigned)d->cfg.max_prewarms && !atomic_load(&d->draining))
                pthread_cond_wait(&d->jobs_cv, &d->lock);
        run = !atomic_load(&d->draining);
        if (run)
                d->jobs_running++;
        else {
                j->e->status = DSNAP_FAILED;
                snprintf(j->e->error, sizeof(j->e->error), "sproutd shut down before it started");
        }
        pthread_mutex_unlock(&d->lock);

        if (run)
                run_prewarm(j);
        sprout_manifest_free(j->m); /* its files are read: close them now, not at the join */
        j->m = NULL;

        pthread_mutex_lock(&d->lock);
        if (run)
                d->jobs_running--;
        d->jobs_pending--;
        pthread_cond_broadcast(&d->jobs_cv);
        registry_put_locked(d, j->e);
        pthread_mutex_unlock(&d->lock);
        atomic_store(&j->finished, true);
        return NULL;
}

int jobs_start_prewarm(struct sproutd *d, const struct prewarm_params *p, struct sprout_manifest *m,
                       struct dsnap **out, struct sprout_err *err)
{
        uint8_t uuid[16];
        struct job *j = calloc(1, sizeof(*j));
        if (!j) {
                sprout_manifest_free(m);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        j->m = m;
        uuid_generate_random(uuid);
        struct dsnap *e = registry_new(uuid);
        if (!e) {
                sprout_manifest_free(m);
                free(j);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        if (snprintf(e->path, sizeof(e->path), "%s/%s.snap", d->snap_dir, e->id) >=
            (int)sizeof(e->path)) {
                registry_free_entry(d, e);
                sprout_manifest_free(m);
                free(j);
                return sprout_err_set(err, -ENAMETOOLONG, "the state directory path is too long");
        }
        snprintf(e->image, sizeof(e->image), "%s", p->image);
        e->status = DSNAP_QUEUED;
        e->owner = p->owner;
        e->created_ns = sprout_real_ns();
        j->d = d;
        j->e = e;
        j->p = *p;

        pthread_mutex_lock(&d->lock);
        int r = 0;
        if (atomic_load(&d->draining))
                r = sprout_err_set(err, -ESHUTDOWN, "sproutd is shutting down");
        else if (d->jobs_pending >= (unsigned)d->cfg.max_prewarm_jobs)
                r = sprout_err_set(err, -EAGAIN,
                                   "%u prewarms are already queued or running (the limit is %lld)",
                                   d->jobs_pending, (long long)d->cfg.max_prewarm_jobs);
        else if ((r = quota_prewarm_locked(d, p->owner, err)) == 0)
                r = registry_add_locked(d, e);
        if (r == 0) {
                d->jobs_pending++;
                e->refs++; /* the job's */
                r = -pthread_create(&j->thread, NULL, job_main, j);
                if (r < 0) {
                        sprout_err_errno(err, r, "starting the prewarm thread");
                        d->jobs_pending--;
                        e->refs--;
                        registry_unlist_locked(d, e);
                } else {
                        j->next = d->jobs;
                        d->jobs = j;
                }
        }
        pthread_mutex_unlock(&d->lock);
        if (r < 0) {
                if (!e->reaping)
                        registry_free_entry(d, e);
                sprout_manifest_free(m);
                free(j);
                return r;
        }
        sp_info("snapshot %s: prewarm of %s queued", e->id, p->image);
        *out = e;
        return 0;
}

unsigned jobs_join(struct sproutd *d, bool wait, int64_t deadline_ns)
{
        for (;;) {
                struct job *done = NULL;
                unsigned left = 0;
                pthread_mutex_lock(&d->lock);
                for (struct job **p = &d->jobs; *p;) {
                        struct job *j = *p;
                        if (atomic_load(&j->finished)) {
                                *p = j->next;
                                j->next = done;
                                done = j;
                        } else {
                                left++;
                                p = &j->next;
                        }
                }
                pthread_mutex_unlock(&d->lock);
                while (done) {
                        struct job *j = done;
                        done = j->next;
                        pthread_join(j->thread, NULL);
                        free(j);
                }
                if (!wait || !left || sprout_mono_ns() >= deadline_ns)
                        return left;
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
        }
}
