/* What the KVM clone test programs (tests/vmm/test_clone.c, test_recycle.c) share: the snapshot
 * directory the clone.prewarm fixture fills, loading a base from it, and an invoke that checks it
 * answered. Include after kvm_case.h; the program sets `images` and `snaps` from its arguments. */
#ifndef SPROUT_TEST_PREWARMED_H
#define SPROUT_TEST_PREWARMED_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sprout/clone.h"

static const char *images, *snaps;
static struct sprout_kvm *kvm;

static char *snap_path(const char *name)
{
        static char p[4096];
        snprintf(p, sizeof(p), "%s/%s.snap", snaps, name);
        return p;
}

static struct sprout_base *load_base(const char *name)
{
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        int r = sprout_base_load(kvm, snap_path(name), 0, &b, &err);
        CHECK(r == 0, "loading snapshot %s: %s", name, err.msg);
        return b;
}

/* Invokes and checks that it answered; returns the response as a NUL-terminated copy. */
static char *invoke(struct sprout_clone *c, const char *req)
{
        struct sprout_err err = {0};
        const void *resp;
        size_t len;
        int r = sprout_clone_invoke(c, req, strlen(req), 30000, &resp, &len, &err);
        CHECK(r == 0, "invoke '%s' on %s: %s", req, sprout_clone_id(c), err.msg);
        return r == 0 ? strndup(resp, len) : NULL;
}

#endif
