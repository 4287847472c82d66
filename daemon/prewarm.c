/* Prewarm: boot an image to READY, capture the VM at that instant, and write the snapshot file. */
#include <cpuid.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/snapshot.h"
#include "clone_internal.h"
#include "vmm_internal.h"

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sprout_vm_config sprout_manifest_vm_config(const struct sprout_manifest *m)
{
        return (struct sprout_vm_config){
            .mem_size = m->mem_size,
            .vcpus = m->vcpus,
            .kernel_path = m->kernel_path,
            .initrd_path = m->initrd_path,
            .cmdline = m->cmdline,
            .console_fd = -1,
        };
}

void host_facts(const struct sprout_kvm *kvm, struct snap_host_facts *h)
{
        unsigned a, b, c, d;
        memset(h, 0, sizeof(*h));
        h->host_kind = (uint32_t)kvm->kind;
        snprintf(h->cpu_vendor, sizeof(h->cpu_vendor), "%s", kvm->cpu_vendor);
        __cpuid(1, a, b, c, d);
        unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
        if (fam == 0xf)
                fam += (a >> 20) & 0xff;
        if (fam == 0x6 || fam >= 0xf)
                model |= ((a >> 16) & 0xf) << 4;
        h->family = fam;
        h->model = model;
        h->stepping = a & 0xf;
        h->kvm_api = KVM_API_VERSION;
}

/* The image manifest as recorded in the snapshot: what a later reader needs to know it came from.
 */
static char *manifest_json(const struct sprout_manifest *m, const char *vm_cmdline)
{
        json_t *argv = json_array();
        for (size_t i = 0; i < m->argc; i++)
                json_array_append_new(argv, json_string(m->argv[i]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:o, s:s}", "name", m->name, "kernel",
                              m->kernel_path, "initrd", m->initrd_path, "cmdline", vm_cmdline,
                              "memory_mib", (json_int_t)(m->mem_size >> 20), "vcpus", (int)m->vcpus,
                              "argv", argv, "image_created", m->created ? m->created : "");
        if (!o)
                return NULL;
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

static int on_write(void *ctx, uint64_t done, uint64_t total)
{
        const struct sprout_prewarm_opts *o = ctx;
        o->progress(o->progress_ctx, SPROUT_PW_WRITING, done, total);
        return 0;
}

int sprout_prewarm(struct sprout_kvm *kvm, const struct sprout_prewarm_opts *o,
                   struct sprout_prewarm_stats *st, struct sprout_err *err)
{
        struct sprout_manifest *m = NULL;
        struct sprout_vm *vm = NULL;
        struct sprout_vm_capture cap = {0};
        char *cmdline = NULL, *mjson = NULL;
        int r;

        memset(st, 0, sizeof(*st));
        r = sprout_manifest_load(o->image, &m, err);
        if (r < 0)
                return r;
        if (o->cmdline && asprintf(&cmdline, "%s %s", m->cmdline, o->cmdline) < 0) {
                cmdline = NULL;
                r = sprout_err_set(err, -ENOMEM, "out of memory");
                goto out;
        }
        struct sprout_vm_config cfg = sprout_manifest_vm_config(m);
        if (cmdline)
                cfg.cmdline = cmdline;
        cfg.console_fd = o->console_fd;
        if (o->progress)
                o->progress(o->progress_ctx, SPROUT_PW_BOOTING, 0, 0);
        double t0 = now_s();
        r = sprout_vm_create(kvm, &cfg, &vm, err);
        if (r < 0)
                goto out;
        struct sprout_vm_event ev;
        r = sprout_vm_run(vm, o->timeout_ms, &ev, err);
        if (r == 0 && ev.kind != SPROUT_EV_READY) {
                switch (ev.kind) {
                case SPROUT_EV_TIMEOUT:
                        r = sprout_err_set(err, -ETIMEDOUT,
                                           "the guest did not ring READY within %lld s",
                                           (long long)(o->timeout_ms / 1000));
                        break;
                case SPROUT_EV_PANIC:
                        r = sprout_err_set(err, -EPROTO, "the guest panicked before READY: %s",
                                           ev.detail);
                        break;
                case SPROUT_EV_STOPPED:
                        r = sprout_err_set(err, -ESHUTDOWN, "the guest stopped before READY: %s",
                                           ev.detail);
                        break;
                default:
                        r = sprout_err_set(err, -EPROTO, "the guest sent event %d before READY",
                                           ev.kind);
                }
        }
        if (r < 0) {
                sprout_vm_console_tail(vm, st->console_tail, sizeof(st->console_tail), 20);
                goto out;
        }
        st->boot_s = now_s() - t0;

        if (o->progress)
                o->progress(o->progress_ctx, SPROUT_PW_SNAPSHOTTING, 0, 0);
        double t1 = now_s();
        r = sprout_vm_capture(vm, &cap, err);
        if (r < 0)
                goto out;
        st->capture_ms = (now_s() - t1) * 1e3;
        mjson = manifest_json(m, sprout_vm_cmdline(vm));
        if (!mjson) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
                goto out;
        }

        struct snap_section secs[SPROUT_VM_MAX_SECTIONS + 1];
        unsigned n = 0;
        for (unsigned i = 0; i < cap.nsections; i++)
                secs[n++] = (struct snap_section){.tag = cap.sections[i].tag,
                                                  .data = cap.sections[i].data,
                                                  .len = cap.sections[i].len};
        secs[n++] =
            (struct snap_section){.tag = SPROUT_SEC_MANIFEST, .data = mjson, .len = strlen(mjson)};
        struct snap_write_opts wo = {
            .path = o->out_path,
            .zstd_level = o->zstd_level,
            .vcpus = m->vcpus,
            .sections = secs,
            .nsections = n,
            .ram = cap.ram,
            .ram_size = cap.ram_size,
            .progress = o->progress ? on_write : NULL,
            .progress_ctx = (void *)o,
        };
        host_facts(kvm, &wo.host);
        if (o->uuid)
                memcpy(st->uuid, o->uuid, 16); /* the daemon names the snapshot before it exists */
        else
                uuid_generate_random(st->uuid);
        wo.uuid = st->uuid;
        r = snap_write(&wo, &st->write, err);
out:
        sprout_vm_capture_free(&cap);
        sprout_vm_destroy(vm);
        sprout_manifest_free(m);
        free(cmdline);
        free(mjson);
        return r;
}
