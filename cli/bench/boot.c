/* sprout bench boot IMAGE: cold boot to READY, beside QEMU booting the same kernel + initrd to the
 * same doorbell write. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "bench/bench_qemu.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/vmm.h"

int bench_boot(const char *image, long n, bool qemu, bool json)
{
        struct sprout_err err = {0}, qemu_err = {0};
        struct sprout_kvm *kvm = NULL;
        struct sprout_manifest *m = NULL;
        double *sp = calloc(n, sizeof(double)), *qm = calloc(n, sizeof(double));
        size_t ns = 0, nq = 0;
        int rc = 1;
        char cmdline[4096] = "";

        if (!sp || !qm)
                goto out;
        if (sprout_kvm_open(&kvm, &err) < 0 || sprout_manifest_load(image, &m, &err) < 0) {
                fprintf(stderr, "sprout bench: %s\n", err.msg);
                goto out;
        }
        /* Interleaved, so drift in the machine's load hits both sides alike. */
        for (long i = 0; i < n; i++) {
                struct sprout_vm_config cfg = sprout_manifest_vm_config(m);
                struct sprout_vm *vm;
                struct sprout_vm_event ev;
                int64_t t0 = sprout_mono_ns();
                if (sprout_vm_create(kvm, &cfg, &vm, &err) < 0) {
                        fprintf(stderr, "sprout bench: %s\n", err.msg);
                        goto out;
                }
                int r = sprout_vm_run(vm, 600000, &ev, &err);
                double s = (double)(sprout_mono_ns() - t0) / 1e9;
                snprintf(cmdline, sizeof(cmdline), "%s", sprout_vm_cmdline(vm));
                sprout_vm_destroy(vm);
                if (r < 0 || ev.kind != SPROUT_EV_READY) {
                        fprintf(stderr, "sprout bench: boot %ld did not reach READY: %s %s\n", i,
                                err.msg, ev.detail);
                        goto out;
                }
                sp[ns++] = s;
                if (!json)
                        fprintf(stderr, "  sprout boot %ld: %.2f s\n", i + 1, s);
                if (qemu && !qemu_err.code) {
                        double q;
                        if (qemu_boot_to_doorbell(m, cmdline, sprout_kvm_host_kind(kvm), &q,
                                                  &qemu_err) < 0)
                                continue;
                        qm[nq++] = q;
                        if (!json)
                                fprintf(stderr, "  qemu boot %ld: %.2f s\n", i + 1, q);
                }
        }
        if (!json)
                printf("sprout bench boot: %s on a %s host, %ld runs each, seconds to READY\n",
                       image, sprout_host_kind_name(sprout_kvm_host_kind(kvm)), n);
        struct latency_summary a = summarize(sp, ns);
        bench_row("sprout cold boot to READY", a, "s", json);
        if (nq) {
                struct latency_summary b = summarize(qm, nq);
                bench_row("qemu -M microvm to the same doorbell", b, "s", json);
                if (json)
                        printf("{\"metric\":\"qemu/sprout median ratio\",\"value\":%.3f}\n",
                               b.p50 / a.p50);
                else
                        printf("  qemu/sprout median ratio: %.2f\n", b.p50 / a.p50);
        }
        if (qemu_err.code)
                bench_failed_row("qemu", qemu_err.msg, json);
        rc = 0;
out:
        sprout_manifest_free(m);
        sprout_kvm_close(kvm);
        free(sp);
        free(qm);
        return rc;
}
