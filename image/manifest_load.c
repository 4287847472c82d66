/* Loading a built image's manifest.json for the VMM. The file is hostile input: every field is
 * required, typed, bounded, and no unknown field is accepted; the files it names are opened here,
 * once, and handed on as descriptors. A confined load (for a daemon's client) opens each of them
 * beneath an image root with no symlinks followed, and its errors never tell whether a file exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
        if (m->kernel_fd >= 0)
                close(m->kernel_fd);
        if (m->initrd_fd >= 0)
                close(m->initrd_fd);
        free(m);
}

/* ---- confinement: image roots and openat2 ---- */

static int openat2_beneath(int dirfd, const char *rel, int flags)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

int sprout_image_roots_open(struct sprout_image_roots *r, const char *list, struct sprout_err *err)
{
        memset(r, 0, sizeof(*r));
        for (size_t i = 0; i < SPROUT_IMAGE_ROOTS_MAX; i++)
                r->fds[i] = -1;
        const char *p = list;
        while (*p) {
                const char *end = strchr(p, ':');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                char want[PATH_MAX];
                if (len == 0 || len >= sizeof(want) || p[0] != '/') {
                        sprout_image_roots_close(r);
                        return sprout_err_set(err, -EINVAL,
                                              "image roots: '%.*s' is not an absolute path",
                                              (int)(len < 200 ? len : 200), p);
                }
                if (r->n == SPROUT_IMAGE_ROOTS_MAX) {
                        sprout_image_roots_close(r);
                        return sprout_err_set(err, -E2BIG, "image roots: at most %d",
                                              SPROUT_IMAGE_ROOTS_MAX);
                }
                memcpy(want, p, len);
                want[len] = '\0';
                /* The canonical path is what request paths are matched against. */
                if (!realpath(want, r->paths[r->n])) {
                        int e = -errno;
                        sprout_image_roots_close(r);
                        return sprout_err_errno(err, e, "image root %s", want);
                }
                r->fds[r->n] = open(r->paths[r->n], O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (r->fds[r->n] < 0) {
                        int e = -errno;
                        sprout_image_roots_close(r);
                        return sprout_err_errno(err, e, "image root %s", want);
                }
                r->n++;
                p += len;
                if (*p == ':')
                        p++;
        }
        if (r->n == 0)
                return sprout_err_set(err, -EINVAL, "image roots: none given");
        return 0;
}

void sprout_image_roots_close(struct sprout_image_roots *r)
{
        for (size_t i = 0; i < r->n; i++)
                if (r->fds[i] >= 0)
                        close(r->fds[i]);
        r->n = 0;
}

/* Opens an absolute path beneath the root whose path prefixes it; -ENOENT when none does. */
static int open_under_roots(const struct sprout_image_roots *r, const char *path, int flags)
{
        for (size_t i = 0; i < r->n; i++) {
                size_t len = strlen(r->paths[i]);
                const char *rel = len == 1 ? path + 1 : path + len + 1;
                if (len == 1 || (!strncmp(path, r->paths[i], len) && path[len] == '/'))
                        return *rel ? openat2_beneath(r->fds[i], rel, flags) : -ENOENT;
        }
        return -ENOENT;
}

/* A descriptor of a regular file or an error; fd is consumed on error. */
static int regular_or_close(int fd)
{
        struct stat st;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        return fd;
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

/* How the files a manifest names are opened. */
struct mload {
        const struct sprout_image_roots *roots; /* NULL: a plain load of the caller's own files */
        int dirfd;                              /* confined: the image directory */
        const char *dir;                        /* the image directory, for paths and messages */
};

/* What a confined load says of any file it cannot use: the same words whether the file is absent,
 * unreadable to the client, a symlink, a FIFO or outside the roots, so no answer reveals more. */
static int unusable(const struct jctx *c, const char *field, int code)
{
        return sprout_err_set(c->err, code < 0 ? code : -ENOENT,
                              "%s: \"%s\": not found, or not a regular file you may read beneath "
                              "an image root",
                              c->file, field);
}

/* Opens path for field: confined loads beneath the roots (dirfd-relative when rel is set), plain
 * loads as given. Returns the descriptor of a regular file, or an error naming the field. */
static int open_field(const struct jctx *c, const struct mload *ml, const char *path,
                      const char *rel, const char *field)
{
        if (ml->roots) {
                int fd = rel ? openat2_beneath(ml->dirfd, rel, O_RDONLY)
                             : open_under_roots(ml->roots, path, O_RDONLY);
                fd = regular_or_close(fd);
                return fd < 0 ? unusable(c, field, fd) : fd;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return sprout_err_errno(c->err, -errno, "%s: \"%s\": %s", c->file, field, path);
        if (regular_or_close(fd) < 0)
                return sprout_err_set(c->err, -EINVAL, "%s: \"%s\": %s is not a regular file",
                                      c->file, field, path);
        return fd;
}

static int load_kernel(const struct jctx *c, json_t *root, const struct mload *ml,
                       struct sprout_manifest *m)
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
                m->kernel_fd = open_field(c, ml, k, NULL, "kernel");
                return m->kernel_fd < 0 ? m->kernel_fd : 0;
        }
        rc = sprout_default_kernel_path(def, sizeof(def), c->err);
        if (rc < 0)
                return rc;
        if (!(m->kernel_path = strdup(def)))
                return -ENOMEM;
        /* The default kernel is the host's own, not the client's: a confined load leaves it for
         * the VMM to open with its own rights (kernel_fd -1). */
        if (ml->roots)
                return 0;
        if (access(def, R_OK) < 0)
                return sprout_err_errno(
                    c->err, -errno,
                    "%s: kernel \"default\" is %s, which cannot be used (build it "
                    "with guest/kernel/build.sh, or set SPROUT_KERNEL)",
                    c->file, def);
        m->kernel_fd = open_field(c, ml, def, NULL, "kernel");
        return m->kernel_fd < 0 ? m->kernel_fd : 0;
}

static int load_initrd(const struct jctx *c, json_t *root, const struct mload *ml,
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
        if (!(m->initrd_path = path_join_rel(ml->dir, name)))
                return -ENOMEM;
        m->initrd_fd = open_field(c, ml, m->initrd_path, name, "initrd");
        return m->initrd_fd < 0 ? m->initrd_fd : 0;
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

static struct sprout_manifest *manifest_new(void)
{
        struct sprout_manifest *m = calloc(1, sizeof(*m));
        if (m)
                m->kernel_fd = m->initrd_fd = -1;
        return m;
}

/* Every field of a parsed manifest, the files it names opened as ml says. */
static int load_parsed(const struct jctx *c, json_t *root, const struct mload *ml,
                       struct sprout_manifest *m)
{
        int rc = jf_only_keys(c, root, "", keys);
        if (rc == 0)
                rc = load_numbers(c, root, m);
        if (rc == 0)
                rc = load_strings(c, root, m);
        if (rc == 0)
                rc = load_handler(c, root, m);
        if (rc == 0)
                rc = load_initrd(c, root, ml, m);
        if (rc == 0)
                rc = load_kernel(c, root, ml, m);
        if (rc == -ENOMEM)
                sprout_err_set(c->err, rc, "%s: out of memory", c->file);
        return rc;
}

int sprout_manifest_load(const char *path, struct sprout_manifest **out, struct sprout_err *err)
{
        char *file = NULL, *dir = NULL;
        json_t *root = NULL;
        struct sprout_manifest *m = manifest_new();
        int rc = m ? locate(path, &file, &dir, err) : sprout_err_set(err, -ENOMEM, "out of memory");

        *out = NULL;
        struct jctx c = {.file = file, .err = err};
        struct mload ml = {.roots = NULL, .dirfd = -1, .dir = dir};
        if (rc == 0)
                rc = jf_load_object(file, SPROUT_JSON_MAX_BYTES, &root, err);
        if (rc == 0)
                rc = load_parsed(&c, root, &ml, m);
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

int sprout_manifest_load_confined(const struct sprout_image_roots *roots, const char *image,
                                  struct sprout_manifest **out, struct sprout_err *err)
{
        char file[PATH_MAX + 32];
        json_t *root = NULL;
        int dirfd = -1, fd = -1, rc = 0;
        struct sprout_manifest *m = manifest_new();

        *out = NULL;
        if (!m)
                return sprout_err_set(err, -ENOMEM, "out of memory");
        snprintf(file, sizeof(file), "%s/%s", image, MANIFEST_NAME);
        struct jctx c = {.file = file, .err = err};
        if (image[0] != '/' || strlen(image) >= PATH_MAX)
                rc = sprout_err_set(err, -EINVAL, "image: must be an absolute path");
        if (rc == 0 && (dirfd = open_under_roots(roots, image, O_RDONLY | O_DIRECTORY)) < 0)
                rc = sprout_err_set(err, -ENOENT,
                                    "image %s: not found, or not an image directory you may read "
                                    "beneath an image root",
                                    image);
        if (rc == 0 && (fd = regular_or_close(openat2_beneath(dirfd, MANIFEST_NAME, O_RDONLY))) < 0)
                rc = unusable(&c, "manifest", fd);
        if (rc == 0)
                rc = jf_read_object(fd, file, SPROUT_JSON_MAX_BYTES, &root, err);
        struct mload ml = {.roots = roots, .dirfd = dirfd, .dir = image};
        if (rc == 0)
                rc = load_parsed(&c, root, &ml, m);
        json_decref(root);
        if (fd >= 0)
                close(fd);
        if (dirfd >= 0)
                close(dirfd);
        if (rc < 0) {
                sprout_manifest_free(m);
                return rc;
        }
        *out = m;
        return 0;
}
