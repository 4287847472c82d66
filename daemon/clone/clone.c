/* A clone: a VM restored from a base with an identity of its own, serving invocations one at a
 * time. A clone whose guest misbehaves is marked dead; only it is affected. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <uuid/uuid.h>

#include "clone_internal.h"
#include "sprout/clock.h"

struct sprout_clone {
        struct sprout_vm *vm;
        struct sprout_base *base;
        uint8_t uuid[16];
        char id[37];
        bool dead;
        unsigned generation; /* recycles so far */
        char dead_reason[sizeof(((struct sprout_err *)0)->msg)];
};

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

        double t0 = sprout_mono_ms();
        struct sprout_vm *shell = base_take_shell(b);
        r = base_restore(b, shell, console_fd, &c->vm, err);
        if (r == 0)
                r = sprout_vm_set_identity(c->vm, c->uuid, err);
        double t1 = sprout_mono_ms();
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

int clone_recycle(struct sprout_clone *c, struct sprout_err *err)
{
        if (c->dead)
                return sprout_err_set(err, -ESHUTDOWN, "clone %s is dead: %s", c->id,
                                      c->dead_reason);
        /* A new identity, as sprout_clone_create gives: the UUID here, the entropy and the wall
         * clock with it into the wiped mailbox. */
        uuid_generate_random(c->uuid);
        uuid_unparse_lower(c->uuid, c->id);
        int r = base_reset(c->base, c->vm, err);
        if (r == 0)
                r = sprout_vm_set_identity(c->vm, c->uuid, err);
        if (r < 0) {
                c->dead = true;
                snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
                return r;
        }
        c->generation++;
        return 0;
}

struct sprout_base *clone_base(const struct sprout_clone *c)
{
        return c->base;
}

bool clone_is_dead(const struct sprout_clone *c)
{
        return c->dead;
}

unsigned sprout_clone_generation(const struct sprout_clone *c)
{
        return c->generation;
}

static int refuse_if_dead(const struct sprout_clone *c, struct sprout_err *err)
{
        return c->dead
                   ? sprout_err_set(err, -ESHUTDOWN, "clone %s is dead: %s", c->id, c->dead_reason)
                   : 0;
}

/* What a run of the guest (r, ev) means for the clone. `harmless` is the error that refused the
 * call before the guest saw it, which leaves the clone fine; any other failure, and any event but
 * DONE, leaves the guest somewhere we cannot trust: the clone is dead. */
static int settle(struct sprout_clone *c, int r, int harmless, const struct sprout_vm_event *ev,
                  int64_t timeout_ms, const char *awaited, struct sprout_err *err)
{
        if (r == harmless || (r == 0 && ev->kind == SPROUT_EV_DONE))
                return r;
        if (r == 0) {
                char who[64];
                snprintf(who, sizeof(who), "clone %s", c->id);
                r = sprout_vm_event_error(ev, who, awaited, timeout_ms, err);
        }
        c->dead = true;
        snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", err->msg);
        return r;
}

int sprout_clone_invoke(struct sprout_clone *c, const void *req, size_t len, int64_t timeout_ms,
                        const void **resp, size_t *resp_len, struct sprout_err *err)
{
        struct sprout_vm_event ev;
        int r = refuse_if_dead(c, err);
        if (r < 0)
                return r;
        r = sprout_vm_invoke(c->vm, req, len, timeout_ms, resp, resp_len, &ev, err);
        return settle(c, r, -EMSGSIZE, &ev, timeout_ms, "answer", err);
}

int sprout_clone_warmup(struct sprout_clone *c, int64_t timeout_ms, struct sprout_err *err)
{
        struct sprout_vm_event ev;
        int r = refuse_if_dead(c, err);
        if (r < 0)
                return r;
        r = sprout_vm_warmup(c->vm, timeout_ms, &ev, err);
        return settle(c, r, -ENOTSUP, &ev, timeout_ms, "answer a warm-up", err);
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
