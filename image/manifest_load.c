/* Loading a built image's manifest.json for the VMM. The file is hostile input: every field is
 * required, typed, bounded, and no unknown field is accepted; the files it names must exist. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/abi.h"
#include "sprout/image.h"
#include "jfield.h"
#include "manifest.h"
#include "paths.h"

static const char *const keys[] = {"format",      "name",       "kernel",         "initrd",
                                   "cmdline",     "memory_mib", "vcpus",          "handler",
                                   "abi_version", "created",    "sprout_version", NULL};
static const char *const handler_keys[] = {"argv", NULL};

void sprout_manifest_free(struct sprout_manifest *m)
{
        if (!m)
                return;
        free(m->name);
        free(m->kernel_path);
        free(m->initrd_path);
        free(m->cmdline);
        jf_strv_free(m->argv);
        free(m->created);
        free(m->sprout_version);
        free(m);
}

/* Split path into the manifest file and the image directory (absolute). */
static int locate(const char *path, char **file, char **dir, struct sprout_err *err)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return sprout_err_errno(err, -errno, "image %s", path);
        char *d;
        if (S_ISDIR(st.st_mode)) {
                d = realpath(path, NULL);
        } else {
                char *copy = strdup(path), *slash = copy ? strrchr(copy, '/') : NULL;
                if (slash)
                        *slash = '\0';
                d = copy ? realpath(slash ? (copy[0] ? copy : "/") : ".", NULL) : NULL;
                free(copy);
        }
        if (!d)
                return sprout_err_errno(err, errno ? -errno : -ENOMEM, "image %s", path);
        *file = S_ISDIR(st.st_mode) ? path_join_rel(d, MANIFEST_NAME) : strdup(path);
        *dir = d;
        if (!*file)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        return 0;
}

static int need_file(const char *path, const char *file, const char *field, struct sprout_err *err)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return sprout_err_errno(err, -errno, "%s: \"%s\": %s", file, field, path);
        if (!S_ISREG(st.st_mode))
                return sprout_err_set(err, -EINVAL, "%s: \"%s\": %s is not a regular file", file,
                                      field, path);
        return 0;
}

static int load_kernel(const struct jctx *c, json_t *root, struct sprout_manifest *m)
{
        const char *k;
        char def[PATH_MAX];
        int rc = jf_string(c, root, "kernel", "kernel", 1, PATH_MAX - 1, &k);

        if (rc < 0)
                return rc;
        if (strcmp(k, "default") != 0) {
                if (k[0] != '/')
                        return sprout_err_set(
                            c->err, -EINVAL,
                            "%s: \"kernel\" must be \"default\" or an absolute path", c->file);
                if (!(m->kernel_path = strdup(k)))
                        return -ENOMEM;
                return need_file(k, c->file, "kernel", c->err);
        }
        rc = sprout_default_kernel_path(def, sizeof(def), c->err);
        if (rc < 0)
                return rc;
        if (access(def, R_OK) < 0)
                return sprout_err_errno(
                    c->err, -errno,
                    "%s: kernel \"default\" is %s, which cannot be used (build it "
                    "with guest/kernel/build.sh, or set SPROUT_KERNEL)",
                    c->file, def);
        return (m->kernel_path = strdup(def)) ? need_file(def, c->file, "kernel", c->err) : -ENOMEM;
}

static int load_initrd(const struct jctx *c, json_t *root, const char *dir,
                       struct sprout_manifest *m)
{
        const char *name;
        int rc = jf_string(c, root, "initrd", "initrd", 1, NAME_MAX, &name);

        if (rc < 0)
                return rc;
        /* A bare file name in the image directory: a manifest cannot point outside its image. */
        if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return sprout_err_set(c->err, -EINVAL,
                                      "%s: \"initrd\" must be a file name in the image directory",
                                      c->file);
        if (!(m->initrd_path = path_join_rel(dir, name)))
                return -ENOMEM;
        return need_file(m->initrd_path, c->file, "initrd", c->err);
}

static int load_strings(const struct jctx *c, json_t *root, struct sprout_manifest *m)
{
        const char *name, *cmdline, *created, *version;
        int rc = jf_string(c, root, "name", "name", 1, SPROUT_NAME_MAX, &name);

        if (rc == 0 && !jf_name_ok(name))
                rc = sprout_err_set(c->err, -EINVAL, "%s: \"name\" is not a valid image name",
                                    c->file);
        if (rc == 0)
                rc = jf_string(c, root, "cmdline", "cmdline", 1, SPROUT_CMDLINE_MAX, &cmdline);
        if (rc == 0 && !jf_printable(cmdline))
                rc = sprout_err_set(c->err, -EINVAL, "%s: \"cmdline\" contains a control character",
                                    c->file);
        if (rc == 0)
                rc = jf_string(c, root, "created", "created", 1, 64, &created);
        if (rc == 0)
                rc = jf_string(c, root, "sprout_version", "sprout_version", 1, 64, &version);
        if (rc < 0)
                return rc;
        m->name = strdup(name);
        m->cmdline = strdup(cmdline);
        m->created = strdup(created);
        m->sprout_version = strdup(version);
        return m->name && m->cmdline && m->created && m->sprout_version ? 0 : -ENOMEM;
}

static int load_numbers(const struct jctx *c, json_t *root, struct sprout_manifest *m)
{
        long long v;
        json_t *f = json_object_get(root, "format");

        /* A newer sprout's image is refused by name, not as a number out of range. */
        if (json_is_integer(f) && json_integer_value(f) != SPROUT_IMAGE_FORMAT)
                return sprout_err_set(c->err, -EPROTO,
                                      "%s: \"format\" %lld is not supported (this sprout reads "
                                      "format %d); rebuild the image",
                                      c->file, (long long)json_integer_value(f),
                                      SPROUT_IMAGE_FORMAT);
        int rc =
            jf_int(c, root, "format", "format", 1, SPROUT_IMAGE_FORMAT, SPROUT_IMAGE_FORMAT, 0, &v);
        if (rc == 0)
                rc = jf_int(c, root, "memory_mib", "memory_mib", 1, SPROUT_MEM_MIB_MIN,
                            SPROUT_MEM_MIB_MAX, 0, &v);
        if (rc < 0)
                return rc;
        m->mem_size = (uint64_t)v << 20;
        rc = jf_int(c, root, "vcpus", "vcpus", 1, 1, 1, 0, &v);
        if (rc < 0)
                return rc;
        m->vcpus = (uint32_t)v;
        rc = jf_int(c, root, "abi_version", "abi_version", 1, 0, UINT32_MAX, 0, &v);
        if (rc < 0)
                return rc;
        if ((v >> 16) != SPROUT_ABI_MAJOR)
                return sprout_err_set(c->err, -EPROTO,
                                      "%s: image built for guest ABI %lld.%lld, this sprout speaks "
                                      "%d.%d; rebuild the image",
                                      c->file, v >> 16, v & 0xffff, SPROUT_ABI_MAJOR,
                                      SPROUT_ABI_MINOR);
        m->abi_version = (uint32_t)v;
        return 0;
}

static int load_handler(const struct jctx *c, json_t *root, struct sprout_manifest *m)
{
        json_t *h;
        return jf_handler(c, root, handler_keys, &h, &m->argv, &m->argc);
}

int sprout_manifest_load(const char *path, struct sprout_manifest **out, struct sprout_err *err)
{
        char *file = NULL, *dir = NULL;
        json_t *root = NULL;
        struct sprout_manifest *m = calloc(1, sizeof(*m));
        int rc = m ? locate(path, &file, &dir, err) : -ENOMEM;

        *out = NULL;
        struct jctx c = {.file = file, .err = err};
        if (rc == 0)
                rc = jf_load_object(file, SPROUT_JSON_MAX_BYTES, &root, err);
        if (rc == 0)
                rc = jf_only_keys(&c, root, "", keys);
        if (rc == 0)
                rc = load_numbers(&c, root, m);
        if (rc == 0)
                rc = load_strings(&c, root, m);
        if (rc == 0)
                rc = load_handler(&c, root, m);
        if (rc == 0)
                rc = load_initrd(&c, root, dir, m);
        if (rc == 0)
                rc = load_kernel(&c, root, m);
        if (rc == -ENOMEM)
                sprout_err_set(err, rc, "%s: out of memory", file ? file : path);
        json_decref(root);
        free(file);
        free(dir);
        if (rc < 0) {
                sprout_manifest_free(m);
                return rc;
        }
        *out = m;
        return 0;
}
