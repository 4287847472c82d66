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
                struct sprout_manifest m = {.kernel_path = (char *)kernel,
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

int bench_clone(const char *path, long n, long pool, const char *req, bool qemu, bool json)
{
        struct sprout_err err = {0};
        struct sprout_kvm *kvm = NULL;
        struct sprout_base *base = NULL;
        const long floor_runs = 200, cold_runs = 100, loads = 5, mem_samples = 50;
        double *floor_total = calloc(floor_runs, sizeof(double)),
               *floor_vm = calloc(floor_runs, sizeof(double)),
               *floor_slot = calloc(floor_runs, sizeof(double)),
               *floor_vcpu = calloc(floor_runs, sizeof(double)),
               *floor_run = calloc(floor_runs, sizeof(double));
        double *restore = calloc(n, sizeof(double)), *first = calloc(n, sizeof(double)),
               *second = calloc(n, sizeof(double)), *teardown = calloc(n, sizeof(double)),
               *cold = calloc(cold_runs, sizeof(double)), *load_ms = calloc(loads, sizeof(double)),
               *load_mbs = calloc(loads, sizeof(double)),
               *priv = calloc(mem_samples, sizeof(double)),
               *ready_first = calloc(n, sizeof(double)), *warm = calloc(n, sizeof(double));
        int rc = 1;
        size_t nf = 0, nc = 0, np = 0;

        if (!floor_total || !floor_vm || !floor_slot || !floor_vcpu || !floor_run || !restore ||
            !first || !second || !teardown || !cold || !load_ms || !load_mbs || !priv ||
            !ready_first || !warm) {
                fprintf(stderr, "sprout bench: out of memory\n");
                goto out;
        }
        if (sprout_kvm_open(&kvm, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                goto out;
        }
        struct snap_file *sf;
        if (snap_open(path, &sf, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                goto out;
        }
        struct snap_info si = *snap_get_info(sf);
        snap_close(sf);

        /* Base loads: each decompresses the whole RAM into a fresh memfd. */
        for (long i = 0; i < loads; i++) {
                if (sprout_base_load(kvm, path, 0, &base, &err) < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        goto out;
                }
                load_ms[i] = sprout_base_info(base)->load.seconds * 1e3;
                load_mbs[i] = sprout_base_info(base)->load.mb_per_s;
                if (i + 1 < loads) {
                        sprout_base_free(base);
                        base = NULL;
                }
        }
        for (long i = 0; i < floor_runs; i++) {
                struct sprout_floor fl;
                if (sprout_floor_measure(kvm, &fl, &err) < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        goto out;
                }
                floor_total[nf] = fl.total_us / 1e3;
                floor_vm[nf] = fl.create_vm_us / 1e3;
                floor_slot[nf] = fl.memslot_us / 1e3;
                floor_vcpu[nf] = fl.vcpu_us / 1e3;
                floor_run[nf++] = fl.run_us / 1e3;
        }
        /* Cold restores: no pool, so VM creation is on the clock. */
        for (long i = 0; i < cold_runs; i++) {
                struct sprout_clone *c;
                struct sprout_clone_timing t;
                if (sprout_clone_create(base, -1, &c, &t, &err) < 0) {
                        fprintf(stderr, "sprout bench: cold clone: %s\n", err.msg);
                        goto out;
                }
                cold[nc++] = t.restore_ms;
                sprout_clone_destroy(c);
        }
        /* Pooled restores, each followed by two invocations. */
        long done = 0;
        while (done < n) {
                if (pool && sprout_base_prepare(base, (unsigned)pool, &err) < 0) {
                        fprintf(stderr, "sprout bench: preparing shells: %s\n", err.msg);
                        goto out;
                }
                long batch = pool ? pool : 1;
                for (long k = 0; k < batch && done < n; k++, done++) {
                        struct sprout_clone *c;
                        struct sprout_clone_timing t;
                        const void *resp;
                        size_t len;
                        if (sprout_clone_create(base, -1, &c, &t, &err) < 0) {
                                fprintf(stderr, "sprout bench: clone %ld: %s\n", done, err.msg);
                                goto out;
                        }
                        int64_t t0 = sprout_mono_ns();
                        int r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
                        int64_t t1 = sprout_mono_ns();
                        if (r == 0)
                                r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len,
                                                        &err);
                        int64_t t2 = sprout_mono_ns();
                        if (r < 0) {
                                fprintf(stderr, "sprout bench: invoke on clone %ld: %s\n", done,
                                        err.msg);
                                sprout_clone_destroy(c);
                                goto out;
                        }
                        restore[done] = t.restore_ms;
                        first[done] = t.restore_ms + (double)(t1 - t0) / 1e6;
                        second[done] = (double)(t2 - t1) / 1e6;
                        if (np < (size_t)mem_samples && done % (n / mem_samples + 1) == 0)
                                priv[np++] = (double)sprout_clone_private_bytes(c) / 1024.0;
                        int64_t t3 = sprout_mono_ns();
                        sprout_clone_destroy(c);
                        teardown[done] = (double)(sprout_mono_ns() - t3) / 1e6;
                }
        }

        /* Ready clones (ABI 1.3 guests): restored and warmed up off the request path, through the
         * base's ready pool; only the first invoke is timed on the request path. The warm-up is
         * timed on its own (create, then warm up: what prepare_ready does per clone). */
        long nr = 0, nw = 0;
        bool warmup_ok = true;
        while (nr < n && warmup_ok) {
                long batch = pool ? pool : 1;
                if (batch > n - nr)
                        batch = n - nr;
                for (long k = 0; k < batch; k++) {
                        struct sprout_clone *c;
                        if (sprout_clone_create(base, -1, &c, NULL, &err) < 0) {
                                fprintf(stderr, "sprout bench: clone: %s\n", err.msg);
                                goto out;
                        }
                        int64_t t0 = sprout_mono_ns();
                        int r = sprout_clone_warmup(c, 10000, &err);
                        warm[nw] = (double)(sprout_mono_ns() - t0) / 1e6;
                        sprout_clone_destroy(c);
                        if (r == -ENOTSUP) {
                                warmup_ok = false;
                                break;
                        }
                        if (r < 0) {
                                fprintf(stderr, "sprout bench: warm-up: %s\n", err.msg);
                                goto out;
                        }
                        nw++;
                }
                if (!warmup_ok)
                        break;
                if (sprout_base_prepare_ready(base, (unsigned)batch, &err) < 0) {
                        fprintf(stderr, "sprout bench: preparing ready clones: %s\n", err.msg);
                        goto out;
                }
                struct sprout_clone *c;
                while (nr < n && sprout_clone_take_ready(base, &c) == 0) {
                        const void *resp;
                        size_t len;
                        int64_t t0 = sprout_mono_ns();
                        int r = sprout_clone_invoke(c, req, strlen(req), 10000, &resp, &len, &err);
                        int64_t t1 = sprout_mono_ns();
                        sprout_clone_destroy(c);
                        if (r < 0) {
                                fprintf(stderr, "sprout bench: invoke on ready clone %ld: %s\n", nr,
                                        err.msg);
                                goto out;
                        }
                        ready_first[nr++] = (double)(t1 - t0) / 1e6;
                }
        }

        struct latency_summary pm = summarize(priv, np);
        double ratio = si.file_size ? (double)si.ram_size / (double)si.file_size : 0;
        if (json) {
                printf("{\"host_kind\":\"%s\",\"snapshot_bytes\":%llu,\"ram_bytes\":%llu,"
                       "\"nonzero_bytes\":%llu,\"ratio\":%.2f,\"clones\":%ld,\"pool\":%ld}\n",
                       sprout_host_kind_name(sprout_kvm_host_kind(kvm)),
                       (unsigned long long)si.file_size, (unsigned long long)si.ram_size,
                       (unsigned long long)si.nonzero_pages * 4096, ratio, n, pool);
        } else {
                printf("sprout bench clone: %s on a %s host\n", path,
                       sprout_host_kind_name(sprout_kvm_host_kind(kvm)));
                printf("  snapshot: %.2f MiB file for %llu MiB RAM (%.1f MiB non-zero), %.1fx "
                       "smaller\n",
                       (double)si.file_size / 1048576.0, (unsigned long long)(si.ram_size >> 20),
                       (double)si.nonzero_pages * 4096 / 1048576.0, ratio);
                printf("  %ld clones, pooled shells in batches of %ld; times in ms\n", n, pool);
        }
        bench_row("floor: KVM_CREATE_VM", summarize(floor_vm, nf), "ms", json);
        bench_row("floor: memslot", summarize(floor_slot, nf), "ms", json);
        bench_row("floor: vCPU create + regs", summarize(floor_vcpu, nf), "ms", json);
        bench_row("floor: first KVM_RUN to HLT", summarize(floor_run, nf), "ms", json);
        bench_row("floor: total", summarize(floor_total, nf), "ms", json);
        bench_row("restore (pooled shell)", summarize(restore, (size_t)n), "ms", json);
        bench_row("restore (no pool, VM created)", summarize(cold, nc), "ms", json);
        bench_row("restore + first invoke", summarize(first, (size_t)n), "ms", json);
        bench_row("second invoke (warm clone)", summarize(second, (size_t)n), "ms", json);
        if (warmup_ok) {
                bench_row("ready clone: first invoke", summarize(ready_first, (size_t)nr), "ms",
                          json);
                bench_row("warm-up (off the request path)", summarize(warm, (size_t)nw), "ms",
                          json);
        } else if (!json) {
                printf("  (no ready-clone rows: the snapshot's guest predates warm-ups, ABI "
                       "1.3)\n");
        }
        bench_row("teardown", summarize(teardown, (size_t)n), "ms", json);
        bench_row("base load", summarize(load_ms, (size_t)loads), "ms", json);
        bench_row("base load throughput", summarize(load_mbs, (size_t)loads), "MiB/s", json);
        bench_row("private memory per idle clone", pm, "KiB", json);
        if (qemu)
                bench_qemu_restore(base, sprout_kvm_host_kind(kvm), json);
        rc = 0;
out:
        sprout_base_free(base);
        sprout_kvm_close(kvm);
        free(floor_total);
        free(floor_vm);
        free(floor_slot);
        free(floor_vcpu);
        free(floor_run);
        free(restore);
        free(first);
        free(second);
        free(teardown);
        free(cold);
        free(load_ms);
        free(load_mbs);
        free(priv);
        free(ready_first);
        free(warm);
        return rc;
}
