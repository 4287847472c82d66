/* A clone: a VM restored from a base with an identity of its own, serving invocations one at a
 * time. A clone whose guest misbehaves is marked dead; only it is affected. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "clone_internal.h"
#include "vmm_internal.h"

struct sprout_clone {
        struct sprout_vm *vm;
        struct sprout_base *base;
        uint8_t uuid[16];
        char id[37];
        bool dead;
        char dead_reason[sizeof(((struct sprout_err *)0)->msg)];
};

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int sprout_clone_create(struct sprout_base *b, int console_fd, struct sprout_clone **out,
                        struct sprout_clone_timing *t, struct sprout_err *err)
{
        struct sprout_clone *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        /* The identity is made before the clock starts: it is not VMM work. */
        uuid_generate_random(c->uuid);
        uuid_unparse_lower(c->uuid, c->id);
        c->base = b;

        double t0 = now_ms();
        struct sprout_vm *shell = base_take_shell(b);
        r = base_restore(b, shell, console_fd, &c->vm, err);
        if (r == 0)
                r = sprout_vm_set_identity(c->vm, c->uuid, err);
        double t1 = now_ms();
        if (r < 0) {
                sprout_vm_destroy(c->vm);
                free(c);
                return r;
        }
        if (t) {
                t->restore_ms = t1 - t0;
                t->pooled = shell != NULL;
        }
        *out = c;
        return 0;
}

/* The error for an event other than DONE, after which the clone is dead. */
static int event_error(struct sprout_clone *c, const struct sprout_vm_event *ev, int64_t timeout_ms,
                       const char *what, struct sprout_err *err)
{
        int r;
        switch (ev->kind) {
        case SPROUT_EV_TIMEOUT:
                r = sprout_err_set(err, -ETIMEDOUT, "clone %s did not answer %swithin %lld ms",
                                   c->id, what, (long long)timeout_ms);
                break;
        case SPROUT_EV_PANIC:
                r = sprout_err_set(err, -EPROTO, "clone %s: the runtime failed: %s", c->id,
                                   ev->detail);
                break;
        case SPROUT_EV_STOPPED:
                r = sprout_err_set(err, -ESHUTDOWN, "clone %s stopped: %s", c->id, ev->detail);
                break;
        default:
                r = sprout_err_set(err, -EPROTO, "clone %s sent event %d instead of a response",
                                   c->id, ev->kind);
                break;
        }
        /* The guest is somewhere we cannot trust: no more requests for it. */
        c->dead = true;
        snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
        return r;
}

int sprout_clone_invoke(struct sprout_clone *c, const void *req, size_t len, int64_t timeout_ms,
                        const void **resp, size_t *resp_len, struct sprout_err *err)
{
        struct sprout_vm_event ev;
        int r;

        if (c->dead)
                return sprout_err_set(err, -ESHUTDOWN, "clone %s is dead: %s", c->id,
                                      c->dead_reason);
        r = sprout_vm_invoke(c->vm, req, len, timeout_ms, resp, resp_len, &ev, err);
        if (r == -EMSGSIZE)
                return r; /* refused before the guest saw it: the clone is fine */
        if (r < 0) {
                c->dead = true;
                snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
                return r;
        }
        if (ev.kind == SPROUT_EV_DONE)
                return 0;
        return event_error(c, &ev, timeout_ms, "", err);
}

int sprout_clone_warmup(struct sprout_clone *c, int64_t timeout_ms, struct sprout_err *err)
{
        struct sprout_vm_event ev;
        int r;

        if (c->dead)
                return sprout_err_set(err, -ESHUTDOWN, "clone %s is dead: %s", c->id,
                                      c->dead_reason);
        r = sprout_vm_warmup(c->vm, timeout_ms, &ev, err);
        if (r == -ENOTSUP)
                return r; /* refused before the guest ran: the clone is fine */
        if (r < 0) {
                c->dead = true;
                snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
                return r;
        }
        if (ev.kind == SPROUT_EV_DONE)
                return 0;
        return event_error(c, &ev, timeout_ms, "a warm-up ", err);
}

const char *sprout_clone_id(const struct sprout_clone *c)
{
        return c->id;
}

uint64_t sprout_clone_private_bytes(struct sprout_clone *c)
{
        return sprout_vm_private_bytes(c->vm);
}

struct sprout_vm *sprout_clone_vm(struct sprout_clone *c)
{
        return c->vm;
}

void sprout_clone_destroy(struct sprout_clone *c)
{
        if (!c)
                return;
        sprout_vm_destroy(c->vm);
        free(c);
}
