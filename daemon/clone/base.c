/* A base: a snapshot loaded once, its RAM in a sealed memfd that every clone maps copy-on-write,
 * and a pool of prepared VM shells so a clone's critical path is only the state ioctls. Its ready
 * clones are ready_pool.c's. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/abi.h"
#include "sprout/clone.h"
#include "sprout/log.h"
#include "clone_internal.h"
#include "sprout/vmstate.h"

struct sprout_base {
        struct sprout_kvm *kvm;
        struct snap_file *snap;
        int memfd;
        struct sprout_vm_section sections[SPROUT_VM_MAX_SECTIONS];
        unsigned nsections;
        struct sprout_base_info info;
        char *manifest;       /* NUL-terminated copy of the manifest section */
        void *owned;          /* an adopted base's copy of its sections (snap is NULL) */
        uint32_t host_kind;   /* the host kind the snapshot recorded */
        pthread_mutex_t lock; /* guards the pool */
        struct sprout_vm *pool[POOL_MAX];
        unsigned npool;
        struct ready_pool ready;
        struct sprout_working_set ws;  /* from SPROUT_SEC_WORKING_SET; empty if none */
        enum sprout_prefault prefault; /* when shells and recycled clones get ws */
};

/* Base sections: the state a restore needs, and the optional working set. */
static bool base_section_tag(uint32_t tag)
{
        return (tag >= SPROUT_SEC_VCPU && tag <= SPROUT_SEC_DEVICES) ||
               tag == SPROUT_SEC_WORKING_SET;
}

/* The working set among the sections, checked against the RAM size (a bad one refuses the
 * snapshot: it was forged or damaged). */
static int base_parse_working_set(struct sprout_base *b, struct sprout_err *err)
{
        bool seen = false;
        b->prefault = SPROUT_PREFAULT_FIRST_RUN;
        for (unsigned i = 0; i < b->nsections; i++)
                if (b->sections[i].tag == SPROUT_SEC_WORKING_SET) {
                        if (seen)
                                return sprout_err_set(err, -EINVAL, "two working-set sections");
                        seen = true;
                        int r = sprout_working_set_parse(b->sections[i].data, b->sections[i].len,
                                                         b->info.ram_size, &b->ws, err);
                        if (r < 0)
                                return r;
                }
        b->info.ws_read_pages = b->ws.read_pages;
        b->info.ws_write_pages = b->ws.write_pages;
        return 0;
}

int sprout_base_load(struct sprout_kvm *kvm, const char *path, unsigned threads,
                     struct sprout_base **out, struct sprout_err *err)
{
        return sprout_base_load_keyed(kvm, path, NULL, threads, out, err);
}

int sprout_base_load_keyed(struct sprout_kvm *kvm, const char *path, const struct snap_key *key,
                           unsigned threads, struct sprout_base **out, struct sprout_err *err)
{
        struct sprout_base *b = calloc(1, sizeof(*b));
        int r;

        if (!b)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        b->kvm = kvm;
        b->memfd = -1;
        pthread_mutex_init(&b->lock, NULL);
        ready_pool_init(&b->ready);
        r = snap_open_keyed(path, key, &b->snap, err);
        if (r < 0)
                goto fail;
        const struct snap_info *si = snap_get_info(b->snap);
        if (si->vcpus != 1) {
                r = sprout_err_set(err, -ENOTSUP,
                                   "%s: the snapshot has %u vCPUs; sprout restores 1", path,
                                   si->vcpus);
                goto fail;
        }
        if (si->ram_size > SPROUT_RAM_MAX || si->ram_size % (2ULL << 20)) {
                r = sprout_err_set(
                    err, -EINVAL,
                    "%s: the snapshot claims %llu bytes of RAM; sprout allows multiples "
                    "of 2 MiB up to %llu MiB",
                    path, (unsigned long long)si->ram_size, SPROUT_RAM_MAX >> 20);
                goto fail;
        }
        /* Our sections, in file order; sections with tags we do not know are not ours to use. */
        for (unsigned i = 0; i < si->nsections; i++) {
                struct snap_section s;
                if (snap_section_at(b->snap, i, &s) < 0)
                        break;
                if (s.tag == SPROUT_SEC_MANIFEST) {
                        free(b->manifest);
                        b->manifest = strndup(s.data, s.len);
                        b->info.manifest_json = b->manifest;
                        continue;
                }
                if (!base_section_tag(s.tag))
                        continue;
                if (b->nsections == SPROUT_VM_MAX_SECTIONS) {
                        r = sprout_err_set(err, -EINVAL, "%s: too many state sections", path);
                        goto fail;
                }
                b->sections[b->nsections++] =
                    (struct sprout_vm_section){.tag = s.tag, .data = s.data, .len = s.len};
        }
        b->host_kind = si->host.host_kind;
        b->info.ram_size = si->ram_size;
        r = base_parse_working_set(b, err);
        if (r < 0)
                goto fail;
        r = sprout_vm_check_compat(kvm, si->host.host_kind, b->sections, b->nsections, err);
        if (r < 0)
                goto fail;
        r = snap_load_ram(b->snap, threads, &b->memfd, &b->info.load, err);
        if (r < 0)
                goto fail;
        memcpy(b->info.uuid, si->uuid, 16);
        b->info.ram_size = si->ram_size;
        *out = b;
        return 0;
fail:
        sprout_base_free(b);
        return r;
}

int sprout_base_adopt(struct sprout_kvm *kvm, const struct sprout_base_export *x,
                      struct sprout_base **out, struct sprout_err *err)
{
        if (x->nsections > SPROUT_VM_MAX_SECTIONS || x->ram_size > SPROUT_RAM_MAX || !x->ram_size ||
            x->ram_size % (2ULL << 20))
                return sprout_err_set(err, -EINVAL, "a base of %llu bytes in %u sections",
                                      (unsigned long long)x->ram_size, x->nsections);
        struct sprout_base *b = calloc(1, sizeof(*b));
        size_t total = 0;
        for (unsigned i = 0; i < x->nsections; i++)
                total += x->sections[i].len;
        if (!b || !(b->owned = malloc(total ? total : 1))) {
                free(b);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        b->kvm = kvm;
        b->memfd = -1;
        pthread_mutex_init(&b->lock, NULL);
        ready_pool_init(&b->ready);
        char *p = b->owned;
        for (unsigned i = 0; i < x->nsections; i++) {
                uint32_t tag = x->sections[i].tag;
                if (!base_section_tag(tag)) {
                        sprout_base_free(b);
                        return sprout_err_set(err, -EINVAL, "a base section with tag %u", tag);
                }
                memcpy(p, x->sections[i].data, x->sections[i].len);
                b->sections[b->nsections++] =
                    (struct sprout_vm_section){.tag = tag, .data = p, .len = x->sections[i].len};
                p += x->sections[i].len;
        }
        b->info.ram_size = x->ram_size;
        int r = base_parse_working_set(b, err);
        if (r == 0)
                r = sprout_vm_check_compat(kvm, x->host_kind, b->sections, b->nsections, err);
        if (r < 0) {
                sprout_base_free(b);
                return r;
        }
        b->host_kind = x->host_kind;
        b->memfd = x->memfd; /* ours now */
        memcpy(b->info.uuid, x->uuid, 16);
        b->info.ram_size = x->ram_size;
        *out = b;
        return 0;
}

void sprout_base_export(const struct sprout_base *b, struct sprout_base_export *x)
{
        memset(x, 0, sizeof(*x));
        memcpy(x->uuid, b->info.uuid, 16);
        x->ram_size = b->info.ram_size;
        x->host_kind = b->host_kind;
        x->memfd = b->memfd;
        x->nsections = b->nsections;
        for (unsigned i = 0; i < b->nsections; i++)
                x->sections[i] = b->sections[i];
}

void sprout_base_set_prefault(struct sprout_base *b, enum sprout_prefault when)
{
        b->prefault = when;
}

const struct sprout_base_info *sprout_base_info(const struct sprout_base *b)
{
        return &b->info;
}

static struct sprout_restore_config restore_cfg(const struct sprout_base *b, int console_fd)
{
        return (struct sprout_restore_config){
            .base_fd = b->memfd,
            .ws = b->prefault != SPROUT_PREFAULT_OFF && b->ws.nread + b->ws.nwrite ? &b->ws : NULL,
            .ws_in_shell = b->prefault == SPROUT_PREFAULT_SHELL,
            .ram_size = b->info.ram_size,
            .sections = b->sections,
            .nsections = b->nsections,
            .console_fd = console_fd,
        };
}

struct ready_pool *base_ready_pool(struct sprout_base *b)
{
        return &b->ready;
}

int sprout_base_prepare(struct sprout_base *b, unsigned n, struct sprout_err *err)
{
        if (n > POOL_MAX)
                n = POOL_MAX;
        for (;;) {
                pthread_mutex_lock(&b->lock);
                unsigned have = b->npool;
                pthread_mutex_unlock(&b->lock);
                if (have >= n)
                        return 0;
                struct sprout_restore_config cfg = restore_cfg(b, -1);
                struct sprout_vm *vm;
                int r = sprout_vm_shell_create(b->kvm, &cfg, &vm, err);
                if (r < 0)
                        return r;
                pthread_mutex_lock(&b->lock);
                if (b->npool < POOL_MAX) {
                        b->pool[b->npool++] = vm;
                        vm = NULL;
                }
                pthread_mutex_unlock(&b->lock);
                sprout_vm_destroy(vm);
        }
}

unsigned sprout_base_pooled(struct sprout_base *b)
{
        pthread_mutex_lock(&b->lock);
        unsigned n = b->npool;
        pthread_mutex_unlock(&b->lock);
        return n;
}

/* A prepared shell, or NULL when the pool is empty. */
struct sprout_vm *base_take_shell(struct sprout_base *b)
{
        struct sprout_vm *vm = NULL;
        pthread_mutex_lock(&b->lock);
        if (b->npool)
                vm = b->pool[--b->npool];
        pthread_mutex_unlock(&b->lock);
        return vm;
}

int base_restore(struct sprout_base *b, struct sprout_vm *shell, int console_fd,
                 struct sprout_vm **out, struct sprout_err *err)
{
        struct sprout_restore_config cfg = restore_cfg(b, console_fd);
        int r;
        if (shell) {
                /* A pooled shell was made without a console; attach the caller's. */
                sprout_vm_set_console(shell, console_fd);
                r = sprout_vm_restore_state(shell, &cfg, err);
                if (r < 0) {
                        sprout_vm_destroy(shell);
                        return r;
                }
                *out = shell;
                return 0;
        }
        return sprout_vm_restore(b->kvm, &cfg, out, err);
}

int base_reset(struct sprout_base *b, struct sprout_vm *vm, struct sprout_err *err)
{
        struct sprout_restore_config cfg = restore_cfg(b, -1);
        return sprout_vm_reset(vm, &cfg, err);
}

void sprout_base_free(struct sprout_base *b)
{
        if (!b)
                return;
        ready_pool_free(&b->ready);
        for (unsigned i = 0; i < b->npool; i++)
                sprout_vm_destroy(b->pool[i]);
        if (b->memfd >= 0)
                close(b->memfd);
        snap_close(b->snap);
        free(b->manifest);
        free(b->owned);
        sprout_working_set_free(&b->ws);
        pthread_mutex_destroy(&b->lock);
        free(b);
}
