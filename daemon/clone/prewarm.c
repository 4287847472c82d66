/* Prewarm: boot an image to READY, capture the VM at that instant, and write the snapshot file. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/log.h"
#include "sprout/clock.h"
#include "sprout/snapshot.h"
#include "sprout/vmstate.h"
#include "clone_internal.h"

struct sprout_vm_config sprout_manifest_vm_config(const struct sprout_manifest *m)
{
        return (struct sprout_vm_config){
            .mem_size = m->mem_size,
            .vcpus = m->vcpus,
            .kernel_path = m->kernel_path,
            .initrd_path = m->initrd_path,
            .have_fds = true,
            .kernel_fd = m->kernel_fd,
            .initrd_fd = m->initrd_fd,
            .cmdline = m->cmdline,
            .console_fd = -1,
        };
}

/* The image manifest as the snapshot records it: what a later reader needs to know its origin. */
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

/* The host facts in the snapshot's own fixed-size form (docs/snapshot-format.md). */
static void snapshot_host_facts(struct sprout_kvm *kvm, struct snap_host_facts *h)
{
        struct sprout_host_facts f;
        sprout_kvm_host_facts(kvm, &f);
        memset(h, 0, sizeof(*h));
        h->host_kind = (uint32_t)f.kind;
        snprintf(h->cpu_vendor, sizeof(h->cpu_vendor), "%s", f.cpu_vendor);
        h->family = f.family;
        h->model = f.model;
        h->stepping = f.stepping;
        h->kvm_api = f.kvm_api;
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
        struct sprout_manifest *loaded = NULL;
        const struct sprout_manifest *m = o->manifest;
        struct sprout_vm *vm = NULL;
        struct sprout_vm_capture cap = {0};
        char *cmdline = NULL, *mjson = NULL;
        int r;

        memset(st, 0, sizeof(*st));
        if (!m) {
                r = sprout_manifest_load(o->image, &loaded, err);
                if (r < 0)
                        return r;
                m = loaded;
        }
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
        double t0 = sprout_mono_s();
        r = sprout_vm_create(kvm, &cfg, &vm, err);
        if (r < 0)
                goto out;
        struct sprout_vm_event ev;
        r = sprout_vm_run(vm, o->timeout_ms, &ev, err);
        if (r == 0 && ev.kind != SPROUT_EV_READY)
                r = sprout_vm_event_error(&ev, "the guest", "ring READY", o->timeout_ms, err);
        if (r < 0) {
                sprout_vm_console_tail(vm, st->console_tail, sizeof(st->console_tail), 20);
                goto out;
        }
        st->boot_s = sprout_mono_s() - t0;

        if (o->progress)
                o->progress(o->progress_ctx, SPROUT_PW_SNAPSHOTTING, 0, 0);
        double t1 = sprout_mono_s();
        r = sprout_vm_capture(vm, &cap, err);
        if (r < 0)
                goto out;
        st->capture_ms = (sprout_mono_s() - t1) * 1e3;
        mjson = manifest_json(m, sprout_vm_cmdline(vm));
        if (!mjson) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
                goto out;
        }

        /* The working set, from a trial clone of this very capture. Only speed depends on it, so
         * a guest that cannot be warmed up (or any failure) leaves it out, with a warning. */
        void *ws = NULL;
        uint64_t ws_len = 0;
        if (!o->no_working_set) {
                struct sprout_err werr = {0};
                struct sprout_working_set sum = {0};
                double t2 = sprout_mono_s();
                if (prewarm_record_working_set(kvm, &cap, o->timeout_ms, &ws, &ws_len, &sum,
                                               &werr) < 0) {
                        sp_warn("%s: no working set recorded: %s", o->image, werr.msg);
                } else {
                        st->ws_read_pages = sum.read_pages;
                        st->ws_write_pages = sum.write_pages;
                        st->ws_ms = (sprout_mono_s() - t2) * 1e3;
                }
        }

        struct snap_section secs[SPROUT_VM_MAX_SECTIONS + 2];
        unsigned n = 0;
        for (unsigned i = 0; i < cap.nsections; i++)
                secs[n++] = (struct snap_section){.tag = cap.sections[i].tag,
                                                  .data = cap.sections[i].data,
                                                  .len = cap.sections[i].len};
        secs[n++] =
            (struct snap_section){.tag = SPROUT_SEC_MANIFEST, .data = mjson, .len = strlen(mjson)};
        if (ws)
                secs[n++] =
                    (struct snap_section){.tag = SPROUT_SEC_WORKING_SET, .data = ws, .len = ws_len};
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
            .key = o->key,
        };
        snapshot_host_facts(kvm, &wo.host);
        if (o->uuid)
                memcpy(st->uuid, o->uuid, 16); /* the daemon names the snapshot before it exists */
        else
                uuid_generate_random(st->uuid);
        wo.uuid = st->uuid;
        r = snap_write(&wo, &st->write, err);
        free(ws);
out:
        sprout_vm_capture_free(&cap);
        sprout_vm_destroy(vm);
        sprout_manifest_free(loaded);
        free(cmdline);
        free(mjson);
        return r;
}
