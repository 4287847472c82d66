/* Parsing and validating image.json, the source manifest of an image. Every rejection names the
 * file and the field; host files it names are checked here so the build fails before writing
 * anything. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "sprout/initramfs.h"
#include "jfield.h"
#include "paths.h"
#include "spec.h"

static const char *const top_keys[] = {"name",    "kernel", "memory_mib", "vcpus",   "cmdline",
                                       "handler", "files",  "rootfs",     "busybox", NULL};
static const char *const handler_keys[] = {"argv", "env", NULL};

int spec_guest_path_ok(const char *path)
{
        size_t len = strlen(path);

        if (path[0] != '/' || len < 2 || len > 4095 || path[len - 1] == '/')
                return 0;
        for (const char *p = path; *p;) {
                const char *comp = p + 1, *end = strchr(comp, '/');
                size_t n = end ? (size_t)(end - comp) : strlen(comp);
                if (n == 0 || (n == 1 && comp[0] == '.') ||
                    (n == 2 && comp[0] == '.' && comp[1] == '.'))
                        return 0;
                p = comp + n;
        }
        return 1;
}

int spec_guest_path_reserved(const char *path)
{
        return strcmp(path, "/init") == 0 || strcmp(path, "/sprout") == 0 ||
               strncmp(path, "/sprout/", 8) == 0;
}

int spec_check_host_file(const char *host, const char *label, struct sprout_err *err)
{
        struct stat st;

        if (stat(host, &st) < 0)
                return sprout_err_errno(err, -errno, "%s: host file \"%s\"", label, host);
        if (!S_ISREG(st.st_mode))
                return sprout_err_set(err, -EINVAL, "%s: host file \"%s\" is not a regular file",
                                      label, host);
        if (access(host, R_OK) < 0)
                return sprout_err_errno(err, -errno, "%s: host file \"%s\"", label, host);
        return 0;
}

static int parse_kernel(const struct jctx *c, json_t *root, const char *src, struct image_spec *s)
{
        const char *k;
        int rc = jf_string(c, root, "kernel", "kernel", 0, PATH_MAX - 1, &k);
        if (rc < 0)
                return rc;
        if (!k || strcmp(k, "default") == 0) {
                s->kernel = strdup("default");
                return s->kernel ? 0 : -ENOMEM;
        }
        if (!*k)
                return sprout_err_set(c->err, -EINVAL,
                                      "%s: \"kernel\" must be \"default\" or a path", c->file);
        char *joined = path_join_rel(src, k);
        if (!joined)
                return -ENOMEM;
        /* The manifest records it absolute, so the image works from any directory. */
        s->kernel = realpath(joined, NULL);
        if (!s->kernel)
                rc = sprout_err_errno(c->err, -errno, "%s: \"kernel\": \"%s\"", c->file, joined);
        else
                rc = spec_check_host_file(s->kernel, "\"kernel\"", c->err);
        free(joined);
        return rc;
}

static int parse_env(const struct jctx *c, json_t *env, struct image_spec *s)
{
        const char *key;
        json_t *v;
        size_t n = 0, total = 0;

        if (!env)
                return 0;
        if (!json_is_object(env))
                return sprout_err_set(c->err, -EINVAL, "%s: \"handler.env\" must be an object",
                                      c->file);
        if (json_object_size(env) > SPROUT_LIST_MAX_ENTRIES)
                return sprout_err_set(c->err, -E2BIG,
                                      "%s: \"handler.env\" has more than %d entries", c->file,
                                      SPROUT_LIST_MAX_ENTRIES);
        s->env = calloc(json_object_size(env) + 1, sizeof(*s->env));
        if (!s->env)
                return -ENOMEM;
        json_object_foreach(env, key, v)
        {
                int ok = (key[0] == '_' || (key[0] >= 'A' && key[0] <= 'Z') ||
                          (key[0] >= 'a' && key[0] <= 'z')) &&
                         strlen(key) <= 255;
                for (const char *p = key; ok && *p; p++)
                        ok = *p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                             (*p >= '0' && *p <= '9');
                if (!ok)
                        return sprout_err_set(c->err, -EINVAL,
                                              "%s: \"handler.env\" key \"%.64s\" is not a valid "
                                              "variable name",
                                              c->file, key);
                if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                        return sprout_err_set(
                            c->err, -EINVAL,
                            "%s: \"handler.env.%s\" must be a string without NUL bytes", c->file,
                            key);
                if (asprintf(&s->env[n], "%s=%s", key, json_string_value(v)) < 0) {
                        s->env[n] = NULL;
                        return -ENOMEM;
                }
                total += strlen(s->env[n++]) + 1;
                s->nenv = n;
        }
        if (total > SPROUT_LIST_MAX_BYTES)
                return sprout_err_set(c->err, -E2BIG,
                                      "%s: \"handler.env\" takes more than %d bytes", c->file,
                                      SPROUT_LIST_MAX_BYTES);
        return 0;
}

static int parse_handler(const struct jctx *c, json_t *root, struct image_spec *s)
{
        json_t *h;
        int rc = jf_handler(c, root, handler_keys, &h, &s->argv, &s->argc);
        if (rc < 0)
                return rc;
        return parse_env(c, json_object_get(h, "env"), s);
}

static int parse_files(const struct jctx *c, json_t *files, const char *src, struct image_spec *s)
{
        const char *guest;
        json_t *v;
        char label[4200];

        if (!files)
                return 0;
        if (!json_is_object(files))
                return sprout_err_set(c->err, -EINVAL, "%s: \"files\" must be an object", c->file);
        s->files = calloc(json_object_size(files) + 1, sizeof(*s->files));
        if (!s->files)
                return -ENOMEM;
        json_object_foreach(files, guest, v)
        {
                if (!spec_guest_path_ok(guest))
                        return sprout_err_set(
                            c->err, -EINVAL,
                            "%s: \"files\" key \"%.128s\" must be an absolute guest "
                            "path without empty, \".\" or \"..\" components",
                            c->file, guest);
                if (spec_guest_path_reserved(guest))
                        return sprout_err_set(c->err, -EINVAL,
                                              "%s: \"files\" key \"%s\" is reserved for sprout",
                                              c->file, guest);
                if (!json_is_string(v) || json_string_length(v) == 0 ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return sprout_err_set(
                            c->err, -EINVAL,
                            "%s: \"files\" entry \"%s\" must be a non-empty host path", c->file,
                            guest);
                struct spec_file *f = &s->files[s->nfiles];
                f->guest = strdup(guest);
                f->host = path_join_rel(src, json_string_value(v));
                s->nfiles++;
                if (!f->guest || !f->host)
                        return -ENOMEM;
                snprintf(label, sizeof(label), "%s: \"files\" entry \"%s\"", c->file, guest);
                int rc = spec_check_host_file(f->host, label, c->err);
                if (rc < 0)
                        return rc;
        }
        return 0;
}

static int parse_rootfs(const struct jctx *c, json_t *root, const char *src, struct image_spec *s)
{
        const char *r;
        struct stat st;
        int rc = jf_string(c, root, "rootfs", "rootfs", 0, PATH_MAX - 1, &r);

        if (rc < 0 || !r)
                return rc;
        if (!*r)
                return sprout_err_set(c->err, -EINVAL, "%s: \"rootfs\" must be a directory path",
                                      c->file);
        s->rootfs = path_join_rel(src, r);
        if (!s->rootfs)
                return -ENOMEM;
        if (stat(s->rootfs, &st) < 0)
                return sprout_err_errno(c->err, -errno, "%s: \"rootfs\": \"%s\"", c->file,
                                        s->rootfs);
        if (!S_ISDIR(st.st_mode))
                return sprout_err_set(c->err, -ENOTDIR, "%s: \"rootfs\": \"%s\" is not a directory",
                                      c->file, s->rootfs);
        return 0;
}

static int parse_scalars(const struct jctx *c, json_t *root, struct image_spec *s)
{
        const char *name, *cmdline;
        long long mem, vcpus;
        int rc = jf_string(c, root, "name", "name", 1, SIZE_MAX, &name);

        if (rc < 0)
                return rc;
        if (!jf_name_ok(name))
                return sprout_err_set(
                    c->err, -EINVAL,
                    "%s: \"name\" must be 1 to %d characters of [A-Za-z0-9._-], not "
                    "starting with \".\"",
                    c->file, SPROUT_NAME_MAX);
        rc = jf_int(c, root, "memory_mib", "memory_mib", 0, SPROUT_MEM_MIB_MIN, SPROUT_MEM_MIB_MAX,
                    SPROUT_MEM_MIB_DEFAULT, &mem);
        if (rc < 0)
                return rc;
        json_t *vc = json_object_get(root, "vcpus");
        if (vc && (!json_is_integer(vc) || json_integer_value(vc) != 1))
                return sprout_err_set(
                    c->err, -EINVAL, "%s: \"vcpus\" must be 1 (only one vCPU is supported for now)",
                    c->file);
        vcpus = 1;
        rc = jf_string(c, root, "cmdline", "cmdline", 0, SPROUT_CMDLINE_MAX, &cmdline);
        if (rc < 0)
                return rc;
        if (cmdline && !jf_printable(cmdline))
                return sprout_err_set(c->err, -EINVAL,
                                      "%s: \"cmdline\" contains a control character", c->file);
        /* A runtime that needs no shell can leave busybox out: on a PVM host the guest kernel
         * unpacks the initramfs at ~1.1 s per MiB, and busybox is 2 MiB of it. */
        json_t *bb = json_object_get(root, "busybox");
        if (bb && !json_is_boolean(bb))
                return sprout_err_set(c->err, -EINVAL, "%s: \"busybox\" must be true or false",
                                      c->file);
        s->busybox = bb ? json_is_true(bb) : 1;
        s->name = strdup(name);
        s->cmdline = strdup(cmdline ? cmdline : "");
        s->memory_mib = (unsigned)mem;
        s->vcpus = (unsigned)vcpus;
        return s->name && s->cmdline ? 0 : -ENOMEM;
}

int spec_load(const char *src_dir, struct image_spec *s, struct sprout_err *err)
{
        json_t *root = NULL;
        int rc;

        memset(s, 0, sizeof(*s));
        s->json_path = path_join_rel(src_dir, "image.json");
        if (!s->json_path)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        struct jctx c = {.file = s->json_path, .err = err};
        rc = jf_load_object(s->json_path, SPROUT_JSON_MAX_BYTES, &root, err);
        if (rc == 0)
                rc = jf_only_keys(&c, root, "", top_keys);
        if (rc == 0)
                rc = parse_scalars(&c, root, s);
        if (rc == 0)
                rc = parse_kernel(&c, root, src_dir, s);
        if (rc == 0)
                rc = parse_handler(&c, root, s);
        if (rc == 0)
                rc = parse_files(&c, json_object_get(root, "files"), src_dir, s);
        if (rc == 0)
                rc = parse_rootfs(&c, root, src_dir, s);
        json_decref(root);
        if (rc == -ENOMEM)
                sprout_err_set(err, rc, "%s: out of memory", s->json_path);
        if (rc < 0)
                spec_free(s);
        return rc;
}

void spec_free(struct image_spec *s)
{
        free(s->json_path);
        free(s->name);
        free(s->kernel);
        free(s->cmdline);
        jf_strv_free(s->argv);
        jf_strv_free(s->env);
        for (size_t i = 0; i < s->nfiles; i++) {
                free(s->files[i].guest);
                free(s->files[i].host);
        }
        free(s->files);
        free(s->rootfs);
        memset(s, 0, sizeof(*s));
}
