/* sprout bench clone SNAPSHOT: restore, invoke, memory and base-load figures, beside the KVM floor
 * of this host and QEMU restoring the same guest from a migration file. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_qemu.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/floor.h"

/* QEMU restoring the snapshot's guest from a migration file, for comparison in the same run. */
static void bench_qemu_restore(const struct sprout_base *base, int host_kind, bool json)
{
        enum { RUNS = 20 };
        const char *mj = sprout_base_info(base)->manifest_json;
        json_t *j = mj ? json_loads(mj, 0, NULL) : NULL;
        const char *kernel = json_string_value(json_object_get(j, "kernel"));
        const char *initrd = json_string_value(json_object_get(j, "initrd"));
        const char *cmdline = json_string_value(json_object_get(j, "cmdline"));
        json_int_t mib = json_integer_value(json_object_get(j, "memory_mib"));
        char dir[] = "/tmp/sprout-qemu-XXXXXX";
        double t[RUNS];
        struct sprout_err err = {0};

        if (!kernel || !initrd || !cmdline || mib <= 0) {
                sprout_err_set(&err, -EINVAL,
                               "the snapshot's manifest lacks kernel/initrd/cmdline");
        } else if (!mkdtemp(dir)) {
                sprout_err_errno(&err, -errno, "mkdtemp %s", dir);
        } else {
                struct sprout_manifest m = {.kernel_fd = -1,
                                            .initrd_fd = -1,
                                            .kernel_path = (char *)kernel,
                                            .initrd_path = (char *)initrd,
                                            .mem_size = (uint64_t)mib << 20};
                if (!json)
                        fprintf(stderr, "  qemu: booting the same guest to save it (takes a while "
                                        "on PVM hosts)...\n");
                if (qemu_restore_bench(&m, cmdline, host_kind, dir, RUNS, t, &err) == 0) {
                        for (int i = 0; i < RUNS; i++)
                                t[i] *= 1e3;
                        bench_row("qemu: restore from file to running", summarize(t, RUNS), "ms",
                                  json);
                }
                rmdir(dir);
        }
        if (err.code)
                bench_failed_row("qemu", err.msg, json);
        json_decref(j);
}

/* Everything one run measures; latencies in ms. */
struct clone_run {
        const char *path, *req;
        const char *old_rng_path; /* the same image booted with sprout.seed=off, or NULL */
        struct sprout_base *old_rng;
        long n, pool;
        struct sprout_kvm *kvm;
        struct sprout_base *base;
        struct snap_info si;
        double *floor_total, *floor_vm, *floor_slot, *floor_vcpu, *floor_run; /* FLOOR_RUNS */
        double *cold;                                                         /* COLD_RUNS */
        double *load_ms, *load_mbs;                                           /* LOADS */
        double *priv;                                                         /* MEM_SAMPLES, KiB */
        double *restore, *first, *second, *teardown; /* n: pooled restores and their invokes */
        double *ready_first, *warm;                  /* n: ready clones */
        /* n each: a served clone back to a ready one, recycled in place or destroyed and
         * restored afresh (the old path), and the first invoke of each kind of ready clone. */
        double *recycle, *replace, *recycled_first;
        /* n each, alternating: a fresh clone's restore + first invoke whose kernel takes the seed
         * page, and one whose guest library re-seeds with ioctls (old_rng); the guest's own
         * identity-step time, where the answer reports it (hello's "identity"). */
        double *seed_first, *ioctl_first, *seed_id, *ioctl_id;
        /* n each, in turn, indexed by enum sprout_prefault: a fresh clone from a new shell with
         * the working set pre-faulted at its first run, into the shell, and not at all; restore +
         * first invoke, making the shell (off the request path), and the page faults KVM took in
         * the first invoke (its pf_taken: a count, the same on any host; pf_counted false where
         * KVM has no statistics). */
        double *pf_first[3], *pf_shell[3], *pf_faults[3];
        long npf;
        bool pf_counted;
        struct sprout_floor last_floor; /* the threads KVM started for a floor VM */
        size_t nf, nc, np;
        long nid, nseed_id, nioctl_id;
        long nr, nw, nrc, nrep, nrp;
        bool warmup_ok; /* false: the guest predates warm-ups (ABI 1.3) */
};

enum { FLOOR_RUNS = 200, COLD_RUNS = 100, LOADS = 5, MEM_SAMPLES = 50 };

static int run_alloc(struct clone_run *b)
{
        double **const fixed[] = {&b->floor_total, &b->floor_vm, &b->floor_slot, &b->floor_vcpu,
                                  &b->floor_run};
        double **const per_clone[] = {
            &b->restore,        &b->first,       &b->second,      &b->teardown,
            &b->ready_first,    &b->warm,        &b->recycle,     &b->replace,
            &b->recycled_first, &b->seed_first,  &b->ioctl_first, &b->seed_id,
            &b->ioctl_id,       &b->pf_first[0], &b->pf_first[1], &b->pf_first[2],
            &b->pf_shell[0],    &b->pf_shell[1], &b->pf_shell[2], &b->pf_faults[0],
            &b->pf_faults[1],   &b->pf_faults[2]};
        int rc = 0;
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                if (!(*fixed[i] = calloc(FLOOR_RUNS, sizeof(double))))
                        rc = -ENOMEM;
        for (size_t i = 0; i < sizeof(per_clone) / sizeof(per_clone[0]); i++)
                if (!(*per_clone[i] = calloc(b->n, sizeof(double))))
                        rc = -ENOMEM;
        if (!(b->cold = calloc(COLD_RUNS, sizeof(double))) ||
            !(b->load_ms = calloc(LOADS, sizeof(double))) ||
            !(b->load_mbs = calloc(LOADS, sizeof(double))) ||
            !(b->priv = calloc(MEM_SAMPLES, sizeof(double))))
                rc = -ENOMEM;
        return rc;
}

static void run_free(struct clone_run *b)
{
        double *const all[] = {b->floor_total,  b->floor_vm,       b->floor_slot,  b->floor_vcpu,
                               b->floor_run,    b->restore,        b->first,       b->second,
                               b->teardown,     b->cold,           b->load_ms,     b->load_mbs,
                               b->priv,         b->ready_first,    b->warm,        b->recycle,
                               b->replace,      b->recycled_first, b->seed_first,  b->ioctl_first,
                               b->seed_id,      b->ioctl_id,       b->pf_first[0], b->pf_first[1],
                               b->pf_first[2],  b->pf_shell[0],    b->pf_shell[1], b->pf_shell[2],
                               b->pf_faults[0], b->pf_faults[1],   b->pf_faults[2]};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                free(all[i]);
        sprout_base_free(b->old_rng);
        sprout_base_free(b->base);
        sprout_kvm_close(b->kvm);
}

/* Base loads: each decompresses the whole RAM into a fresh memfd; the last one stays loaded. */
static int measure_loads(struct clone_run *b)
{
        struct sprout_err err = {0};
        for (long i = 0; i < LOADS; i++) {
                int r = sprout_base_load(b->kvm, b->path, 0, &b->base, &err);
                if (r < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        return r;
                }
                b->load_ms[i] = sprout_base_info(b->base)->load.seconds * 1e3;
                b->load_mbs[i] = sprout_base_info(b->base)->load.mb_per_s;
                if (i + 1 < LOADS) {
                        sprout_base_free(b->base);
                        b->base = NULL;
                }
        }
        return 0;
}

/* The cheapest VM KVM can create and run on this host. */
static int measure_floor(struct clone_run *b)
{
        struct sprout_err err = {0};
        for (long i = 0; i < FLOOR_RUNS; i++) {
                struct sprout_floor fl;
                int r = sprout_floor_measure(b->kvm, &fl, &err);
                if (r < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        return r;
                }
                b->floor_total[b->nf] = fl.total_us / 1e3;
                b->floor_vm[b->nf] = fl.create_vm_us / 1e3;
                b->floor_slot[b->nf] = fl.memslot_us / 1e3;
                b->floor_vcpu[b->nf] = fl.vcpu_us / 1e3;
                b->floor_run[b->nf++] = fl.run_us / 1e3;
                b->last_floor = fl;
        }
        return 0;
}

/* Cold restores: no pool, so VM creation is on the clock. */
static int measure_cold(struct clone_run *b)
{
        struct sprout_err err = {0};
        for (long i = 0; i < COLD_RUNS; i++) {
                struct sprout_clone *c;
                struct sprout_clone_timing t;
                int r = sprout_clone_create(b->base, -1, &c, &t, &err);
                if (r < 0) {
                        fprintf(stderr, "sprout bench: cold clone: %s\n", err.msg);
                        return r;
                }
                b->cold[b->nc++] = t.restore_ms;
                sprout_clone_destroy(c);
        }
        return 0;
}

/* Clone `done` of the pooled run: restore, two invokes, private memory, teardown. */
static int pooled_one(struct clone_run *b, long done)
{
        struct sprout_err err = {0};
        struct sprout_clone *c;
        struct sprout_clone_timing t;
        const void *resp;
        size_t len;
        const char *req = b->req;
        int r = sprout_clone_create(b->base, -1, &c, &t, &err);
        if (r < 0) {
                fprintf(stderr, "sprout bench: clone %ld: %s\n", done, err.msg);
                return r;
        }
        int64_t t0 = sprout_mono_ns();
        r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
        int64_t t1 = sprout_mono_ns();
        if (r == 0)
                r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
        int64_t t2 = sprout_mono_ns();
        if (r < 0) {
                fprintf(stderr, "sprout bench: invoke on clone %ld: %s\n", done, err.msg);
                sprout_clone_destroy(c);
                return r;
        }
        b->restore[done] = t.restore_ms;
        b->first[done] = t.restore_ms + (double)(t1 - t0) / 1e6;
        b->second[done] = (double)(t2 - t1) / 1e6;
        if (b->np < (size_t)MEM_SAMPLES && done % (b->n / MEM_SAMPLES + 1) == 0)
                b->priv[b->np++] = (double)sprout_clone_private_bytes(c) / 1024.0;
        int64_t t3 = sprout_mono_ns();
        sprout_clone_destroy(c);
        b->teardown[done] = (double)(sprout_mono_ns() - t3) / 1e6;
        return 0;
}

/* Pooled restores, each followed by two invocations. */
static int measure_pooled(struct clone_run *b)
{
        struct sprout_err err = {0};
        long done = 0;
        while (done < b->n) {
                int r = b->pool ? sprout_base_prepare(b->base, (unsigned)b->pool, &err) : 0;
                if (r < 0) {
                        fprintf(stderr, "sprout bench: preparing shells: %s\n", err.msg);
                        return r;
                }
                long batch = b->pool ? b->pool : 1;
                for (long k = 0; k < batch && done < b->n; k++, done++)
                        if ((r = pooled_one(b, done)) < 0)
                                return r;
        }
        return 0;
}

/* Times the warm-up of `batch` fresh clones (create, then warm up: what prepare_ready does per
 * clone). Clears warmup_ok when the guest has no warm-up. */
static int time_warmups(struct clone_run *b, long batch)
{
        struct sprout_err err = {0};
        for (long k = 0; k < batch; k++) {
                struct sprout_clone *c;
                int r = sprout_clone_create(b->base, -1, &c, NULL, &err);
                if (r < 0) {
                        fprintf(stderr, "sprout bench: clone: %s\n", err.msg);
                        return r;
                }
                int64_t t0 = sprout_mono_ns();
                r = sprout_clone_warmup(c, 10000, &err);
                b->warm[b->nw] = (double)(sprout_mono_ns() - t0) / 1e6;
                sprout_clone_destroy(c);
                if (r == -ENOTSUP) {
                        b->warmup_ok = false;
                        return 0;
                }
                if (r < 0) {
                        fprintf(stderr, "sprout bench: warm-up: %s\n", err.msg);
                        return r;
                }
                b->nw++;
        }
        return 0;
}

/* Ready clones (ABI 1.3 guests): restored and warmed up off the request path, through the base's
 * ready pool; only the first invoke is timed on the request path. */
static int measure_ready(struct clone_run *b)
{
        struct sprout_err err = {0};
        const char *req = b->req;
        b->warmup_ok = true;
        while (b->nr < b->n && b->warmup_ok) {
                long batch = b->pool ? b->pool : 1;
                if (batch > b->n - b->nr)
                        batch = b->n - b->nr;
                int r = time_warmups(b, batch);
                if (r < 0)
                        return r;
                if (!b->warmup_ok)
                        break;
                if ((r = sprout_base_prepare_ready(b->base, (unsigned)batch, &err)) < 0) {
                        fprintf(stderr, "sprout bench: preparing ready clones: %s\n", err.msg);
                        return r;
                }
                struct sprout_clone *c;
                while (b->nr < b->n && sprout_clone_take_ready(b->base, &c) == 0) {
                        const void *resp;
                        size_t len;
                        int64_t t0 = sprout_mono_ns();
                        r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
                        int64_t t1 = sprout_mono_ns();
                        sprout_clone_destroy(c);
                        if (r < 0) {
                                fprintf(stderr, "sprout bench: invoke on ready clone %ld: %s\n",
                                        b->nr, err.msg);
                                return r;
                        }
                        b->ready_first[b->nr++] = (double)(t1 - t0) / 1e6;
                }
        }
        return 0;
}

/* One served clone (it answered req) back to a ready one, timed: with recycling on, released
 * into the pool and reset in place by the refill (docs/architecture.md, "Recycling"); off, torn
 * down and a new one restored into a VM created for it, as before recycling. Both include the
 * warm-up, so the difference is the reset against teardown + VM creation + restore. */
static int served_to_ready(struct clone_run *b, bool recycle, double *ms, double *first_ms)
{
        struct sprout_err err = {0};
        struct sprout_clone *c;
        const void *resp;
        size_t len;
        int r = sprout_base_prepare_ready(b->base, 1, &err);
        if (r == 0 && (r = sprout_clone_take_ready(b->base, &c)) < 0)
                sprout_err_set(&err, r, "the ready pool gave no clone");
        if (r < 0) {
                fprintf(stderr, "sprout bench: ready clone: %s\n", err.msg);
                return r;
        }
        int64_t t0 = sprout_mono_ns();
        r = sprout_clone_invoke(c, b->req, strlen(b->req), 10000, &resp, &len, &err);
        if (first_ms && sprout_clone_generation(c) > 0)
                *first_ms = (double)(sprout_mono_ns() - t0) / 1e6;
        if (r < 0) {
                fprintf(stderr, "sprout bench: invoke: %s\n", err.msg);
                sprout_clone_destroy(c);
                return r;
        }
        sprout_base_set_recycle(b->base, recycle);
        t0 = sprout_mono_ns();
        sprout_clone_release(c);
        r = sprout_base_prepare_ready(b->base, 1, &err);
        *ms = (double)(sprout_mono_ns() - t0) / 1e6;
        if (r < 0)
                fprintf(stderr, "sprout bench: refilling the pool: %s\n", err.msg);
        return r;
}

/* Recycle against the old path, alternating so that both see the same machine. The base's shell
 * pool is emptied first: the old path then pays for its VM, as it does once a pool drains. */
static int measure_recycle(struct clone_run *b)
{
        struct sprout_err err = {0};
        while (sprout_base_pooled(b->base) > 0) {
                struct sprout_clone *c;
                if (sprout_clone_create(b->base, -1, &c, NULL, &err) < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        return -EIO;
                }
                sprout_clone_destroy(c);
        }
        if (!b->warmup_ok)
                return 0;
        int r = 0;
        for (long i = 0; r == 0 && i < b->n; i++) {
                /* Each round recycles the clone the old path made, then the old path replaces
                 * the recycled one after its first invoke. */
                double first = -1;
                r = served_to_ready(b, true, &b->recycle[b->nrc], &first);
                if (r < 0)
                        break;
                b->nrc++;
                if (first >= 0 && b->nrp < b->n)
                        b->recycled_first[b->nrp++] = first;
                first = -1;
                r = served_to_ready(b, false, &b->replace[b->nrep], &first);
                if (r < 0)
                        break;
                b->nrep++;
                if (first >= 0 && b->nrp < b->n)
                        b->recycled_first[b->nrp++] = first;
        }
        sprout_base_set_recycle(b->base, true);
        return r;
}

/* A fresh clone of base: restore + first invoke in ms, and the guest's identity step in ms when
 * its answer reports "identity_ns" (else -1). */
static int first_with_identity(struct clone_run *b, struct sprout_base *base, double *ms,
                               double *id_ms)
{
        struct sprout_err err = {0};
        struct sprout_clone *c;
        struct sprout_clone_timing t;
        const void *resp;
        size_t len;
        int r = sprout_clone_create(base, -1, &c, &t, &err);
        if (r < 0) {
                fprintf(stderr, "sprout bench: identity clone: %s\n", err.msg);
                return r;
        }
        int64_t t0 = sprout_mono_ns();
        r = sprout_clone_invoke(c, b->req, strlen(b->req), 10000, &resp, &len, &err);
        *ms = t.restore_ms + (double)(sprout_mono_ns() - t0) / 1e6;
        *id_ms = -1;
        if (r == 0) {
                json_t *j = json_loadb(resp, len, 0, NULL);
                json_t *v = json_object_get(j, "identity_ns");
                if (json_is_integer(v))
                        *id_ms = (double)json_integer_value(v) / 1e6;
                json_decref(j);
        } else {
                fprintf(stderr, "sprout bench: identity invoke: %s\n", err.msg);
        }
        sprout_clone_destroy(c);
        return r;
}

/* The identity step with the kernel seed page against the guest library's ioctls (the old path,
 * a snapshot booted with sprout.seed=off), alternating on the same machine. */
static int measure_identity(struct clone_run *b)
{
        if (!b->old_rng_path)
                return 0;
        struct sprout_err err = {0};
        if (sprout_base_load(b->kvm, b->old_rng_path, 0, &b->old_rng, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                return -EIO;
        }
        for (long i = 0; i < b->n; i++) {
                double id;
                int r = first_with_identity(b, b->base, &b->seed_first[b->nid], &id);
                if (r == 0 && id >= 0)
                        b->seed_id[b->nseed_id++] = id;
                if (r == 0)
                        r = first_with_identity(b, b->old_rng, &b->ioctl_first[b->nid], &id);
                if (r < 0)
                        return r;
                if (id >= 0)
                        b->ioctl_id[b->nioctl_id++] = id;
                b->nid++;
        }
        return 0;
}

/* A shell made (timed) with or without the working set, then a fresh clone in it: restore +
 * first invoke, and KVM's page faults in it. No warm-up: this is the request path of a pool miss.
 */
static int prefault_one(struct clone_run *b, enum sprout_prefault when, double *shell_ms,
                        double *first_ms, double *faults)
{
        struct sprout_err err = {0};
        struct sprout_clone *c;
        struct sprout_clone_timing t;
        const void *resp;
        size_t len;
        sprout_base_set_prefault(b->base, when);
        int64_t t0 = sprout_mono_ns();
        int r = sprout_base_prepare(b->base, 1, &err);
        *shell_ms = (double)(sprout_mono_ns() - t0) / 1e6;
        if (r == 0)
                r = sprout_clone_create(b->base, -1, &c, &t, &err);
        if (r < 0) {
                fprintf(stderr, "sprout bench: working-set clone: %s\n", err.msg);
                return r;
        }
        uint64_t f0 = 0, f1 = 0;
        bool counted = sprout_vm_vcpu_stat(sprout_clone_vm(c), "pf_taken", &f0) == 0;
        t0 = sprout_mono_ns();
        r = sprout_clone_invoke(c, b->req, strlen(b->req), 10000, &resp, &len, &err);
        *first_ms = t.restore_ms + (double)(sprout_mono_ns() - t0) / 1e6;
        b->pf_counted = b->pf_counted && counted &&
                        sprout_vm_vcpu_stat(sprout_clone_vm(c), "pf_taken", &f1) == 0;
        *faults = (double)(f1 - f0);
        if (r < 0)
                fprintf(stderr, "sprout bench: working-set invoke: %s\n", err.msg);
        sprout_clone_destroy(c);
        return r;
}

/* The working set pre-faulted at the first run, into the shell and not at all, in turn (only for a
 * snapshot that recorded one). The shell pool is empty here (measure_recycle drained it). */
static int measure_prefault(struct clone_run *b)
{
        const struct sprout_base_info *bi = sprout_base_info(b->base);
        if (bi->ws_read_pages + bi->ws_write_pages == 0)
                return 0;
        int r = 0;
        b->pf_counted = true;
        for (long i = 0; r == 0 && i < b->n; i++) {
                for (int m = 0; r == 0 && m < 3; m++)
                        r = prefault_one(b, (enum sprout_prefault)m, &b->pf_shell[m][b->npf],
                                         &b->pf_first[m][b->npf], &b->pf_faults[m][b->npf]);
                if (r == 0)
                        b->npf++;
        }
        sprout_base_set_prefault(b->base, SPROUT_PREFAULT_FIRST_RUN);
        return r;
}

static void print_header(const struct clone_run *b, bool json)
{
        const struct snap_info *si = &b->si;
        const char *host = sprout_host_kind_name(sprout_kvm_host_kind(b->kvm));
        double ratio = si->file_size ? (double)si->ram_size / (double)si->file_size : 0;
        if (json) {
                printf("{\"host_kind\":\"%s\",\"snapshot_bytes\":%llu,\"ram_bytes\":%llu,"
                       "\"nonzero_bytes\":%llu,\"ratio\":%.2f,\"clones\":%ld,\"pool\":%ld,"
                       "\"kvm_pre_fault\":%s,\"kvm_threads_per_vm\":%u}\n",
                       host, (unsigned long long)si->file_size, (unsigned long long)si->ram_size,
                       (unsigned long long)si->nonzero_pages * 4096, ratio, b->n, b->pool,
                       sprout_kvm_pre_faults(b->kvm) ? "true" : "false", b->last_floor.kvm_threads);
        } else {
                printf("sprout bench clone: %s on a %s host\n", b->path, host);
                printf("  snapshot: %.2f MiB file for %llu MiB RAM (%.1f MiB non-zero), %.1fx "
                       "smaller\n",
                       (double)si->file_size / 1048576.0, (unsigned long long)(si->ram_size >> 20),
                       (double)si->nonzero_pages * 4096 / 1048576.0, ratio);
                printf("  %ld clones, pooled shells in batches of %ld; times in ms\n", b->n,
                       b->pool);
                printf("  KVM threads per VM: %u%s%s%s\n", b->last_floor.kvm_threads,
                       b->last_floor.kvm_threads ? " (" : "", b->last_floor.kvm_thread_names,
                       b->last_floor.kvm_threads ? ")" : "");
                printf("  KVM_PRE_FAULT_MEMORY: %s\n", sprout_kvm_pre_faults(b->kvm)
                                                           ? "used for the working set"
                                                           : "absent (only the host mapping is "
                                                             "pre-faulted)");
        }
}

static void print_rows(struct clone_run *b, bool json)
{
        size_t n = (size_t)b->n;
        struct latency_summary pm = summarize(b->priv, b->np);
        bench_row("floor: KVM_CREATE_VM", summarize(b->floor_vm, b->nf), "ms", json);
        bench_row("floor: memslot", summarize(b->floor_slot, b->nf), "ms", json);
        bench_row("floor: vCPU create + regs", summarize(b->floor_vcpu, b->nf), "ms", json);
        bench_row("floor: first KVM_RUN to HLT", summarize(b->floor_run, b->nf), "ms", json);
        bench_row("floor: total", summarize(b->floor_total, b->nf), "ms", json);
        bench_row("restore (pooled shell)", summarize(b->restore, n), "ms", json);
        bench_row("restore (no pool, VM created)", summarize(b->cold, b->nc), "ms", json);
        bench_row("restore + first invoke", summarize(b->first, n), "ms", json);
        bench_row("second invoke (warm clone)", summarize(b->second, n), "ms", json);
        if (b->warmup_ok) {
                bench_row("ready clone: first invoke", summarize(b->ready_first, (size_t)b->nr),
                          "ms", json);
                bench_row("warm-up (off the request path)", summarize(b->warm, (size_t)b->nw), "ms",
                          json);
        } else if (!json) {
                printf("  (no ready-clone rows: the snapshot's guest predates warm-ups, ABI "
                       "1.3)\n");
        }
        if (b->warmup_ok && b->nrc) {
                bench_row("served clone to ready: recycled", summarize(b->recycle, b->nrc), "ms",
                          json);
                bench_row("served clone to ready: destroyed, restored (old)",
                          summarize(b->replace, b->nrep), "ms", json);
                bench_row("recycled clone: first invoke", summarize(b->recycled_first, b->nrp),
                          "ms", json);
        }
        if (b->nid) {
                bench_row("fresh clone: restore + first invoke, kernel seed page",
                          summarize(b->seed_first, (size_t)b->nid), "ms", json);
                bench_row("fresh clone: restore + first invoke, RNG ioctls (old)",
                          summarize(b->ioctl_first, (size_t)b->nid), "ms", json);
        }
        if (b->nseed_id && b->nioctl_id) {
                bench_row("identity step in the guest: kernel seed page",
                          summarize(b->seed_id, (size_t)b->nseed_id), "ms", json);
                bench_row("identity step in the guest: RNG ioctls (old)",
                          summarize(b->ioctl_id, (size_t)b->nioctl_id), "ms", json);
        }
        /* Indexed by enum sprout_prefault. */
        static const char *const when[3] = {"working set at the first run",
                                            "working set in the shell (before)",
                                            "not pre-faulted (older)"};
        char row[128];
        for (int m = 0; m < 3 && b->npf; m++) {
                snprintf(row, sizeof(row), "fresh clone: restore + first invoke, %s", when[m]);
                bench_row(row, summarize(b->pf_first[m], (size_t)b->npf), "ms", json);
        }
        for (int m = 0; m < 3 && b->npf; m++) {
                snprintf(row, sizeof(row), "shell (off the request path), %s", when[m]);
                bench_row(row, summarize(b->pf_shell[m], (size_t)b->npf), "ms", json);
        }
        /* Whether KVM also built the guest page tables ahead is what separates these rows
         * most: the header says which. */
        for (int m = 0; m < 3 && b->npf && b->pf_counted; m++) {
                snprintf(row, sizeof(row), "fresh clone: KVM page faults in the first invoke, %s",
                         when[m]);
                bench_row(row, summarize(b->pf_faults[m], (size_t)b->npf), "faults", json);
        }
        bench_row("teardown", summarize(b->teardown, n), "ms", json);
        bench_row("base load", summarize(b->load_ms, LOADS), "ms", json);
        bench_row("base load throughput", summarize(b->load_mbs, LOADS), "MiB/s", json);
        bench_row("private memory per idle clone", pm, "KiB", json);
}

int bench_clone(const char *path, const char *old_rng_path, long n, long pool, const char *req,
                bool qemu, bool json)
{
        struct sprout_err err = {0};
        struct clone_run b = {
            .path = path, .old_rng_path = old_rng_path, .req = req, .n = n, .pool = pool};
        int rc = 1;

        if (run_alloc(&b) < 0) {
                fprintf(stderr, "sprout bench: out of memory\n");
                goto out;
        }
        if (sprout_kvm_open(&b.kvm, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                goto out;
        }
        struct snap_file *sf;
        if (snap_open(path, &sf, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                goto out;
        }
        b.si = *snap_get_info(sf);
        snap_close(sf);
        if (measure_loads(&b) < 0 || measure_floor(&b) < 0 || measure_cold(&b) < 0 ||
            measure_pooled(&b) < 0 || measure_ready(&b) < 0 || measure_recycle(&b) < 0 ||
            measure_identity(&b) < 0 || measure_prefault(&b) < 0)
                goto out;
        print_header(&b, json);
        print_rows(&b, json);
        if (qemu)
                bench_qemu_restore(b.base, sprout_kvm_host_kind(b.kvm), json);
        rc = 0;
out:
        run_free(&b);
        return rc;
}
