/* Writing manifest.json, the normalized description of a built image that the VMM reads: every
 * default filled in and every path either "default" or absolute, so it means the same from any
 * directory. */
#include <errno.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "sprout/abi.h"
#include "sprout/image.h"
#include "sprout/version.h"
#include "manifest.h"

static json_t *argv_array(char **argv)
{
        json_t *a = json_array();
        for (char **p = argv; a && *p; p++) {
                if (json_array_append_new(a, json_string(*p)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}

int manifest_write(const struct image_spec *s, int fd, const char *name, struct sprout_err *err)
{
        char created[32];
        time_t now = time(NULL);
        struct tm tm;

        if (!gmtime_r(&now, &tm) ||
            strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return sprout_err_set(err, -EINVAL, "%s: cannot format the build time", name);
        json_t *handler = json_object(), *m = json_object();
        /* set_new takes (or drops) each value even when it fails: one check at the end suffices. */
        int bad = json_object_set_new(handler, "argv", argv_array(s->argv)) < 0;
        bad |= json_object_set_new(m, "format", json_integer(SPROUT_IMAGE_FORMAT)) < 0;
        bad |= json_object_set_new(m, "name", json_string(s->name)) < 0;
        bad |= json_object_set_new(m, "kernel", json_string(s->kernel)) < 0;
        bad |= json_object_set_new(m, "initrd", json_string(INITRD_NAME)) < 0;
        bad |= json_object_set_new(m, "cmdline", json_string(s->cmdline)) < 0;
        bad |= json_object_set_new(m, "memory_mib", json_integer(s->memory_mib)) < 0;
        bad |= json_object_set_new(m, "vcpus", json_integer(s->vcpus)) < 0;
        bad |= json_object_set_new(m, "handler", handler) < 0;
        bad |= json_object_set_new(m, "abi_version", json_integer(SPROUT_ABI_VERSION)) < 0;
        bad |= json_object_set_new(m, "created", json_string(created)) < 0;
        bad |= json_object_set_new(m, "sprout_version", json_string(SPROUT_VERSION)) < 0;
        if (bad) {
                json_decref(m);
                return sprout_err_set(err, -ENOMEM, "%s: out of memory", name);
        }
        int rc = 0;
        if (json_dumpfd(m, fd, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || write(fd, "\n", 1) != 1)
                rc = sprout_err_errno(err, errno ? -errno : -EIO, "%s: write", name);
        json_decref(m);
        return rc;
}
