/* sprout_image_build: image.json plus the guest binaries into OUT/initrd.cpio and
 * OUT/manifest.json. Everything is validated before anything is written; outputs are committed by
 * rename, manifest last. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "sprout/initramfs.h"
#include "cpio.h"
#include "fill.h"
#include "manifest.h"
#include "paths.h"
#include "spec.h"
#include "tree.h"

#ifndef SPROUT_AGENT_DEFAULT
#error "SPROUT_AGENT_DEFAULT (the built agent's path) must come from the build"
#endif

static const char *pick(const char *given, const char *env, const char *fallback)
{
        if (given)
                return given;
        const char *v = getenv(env);
        return v && *v ? v : fallback;
}

static int check_extra_files(const struct sprout_build_opts *o, struct sprout_err *err)
{
        for (size_t i = 0; i < o->n_files; i++) {
                const struct sprout_build_file *f = &o->files[i];
                if (!f->guest_path || !spec_guest_path_ok(f->guest_path))
                        return sprout_err_set(
                            err, -EINVAL,
                            "--file %.128s: the guest path must be absolute, without "
                            "empty, \".\" or \"..\" components",
                            f->guest_path ? f->guest_path : "(null)");
                if (spec_guest_path_reserved(f->guest_path))
                        return sprout_err_set(err, -EINVAL, "--file %s: reserved for sprout",
                                              f->guest_path);
                char label[4200];
                snprintf(label, sizeof(label), "--file %s", f->guest_path);
                int rc = f->host_path ? spec_check_host_file(f->host_path, label, err)
                                      : sprout_err_set(err, -EINVAL, "%s: no host path", label);
                if (rc < 0)
                        return rc;
        }
        return 0;
}

/* A list file for the agent: the strings back to back, each with its NUL. */
static int add_list(struct tree *t, const char *path, char **items, const char *what,
                    struct sprout_err *err)
{
        char buf[SPROUT_LIST_MAX_BYTES];
        size_t len = 0, n = 0;

        for (char **p = items; p && *p; p++, n++) {
                size_t l = strlen(*p) + 1;
                if (n == SPROUT_LIST_MAX_ENTRIES || l > sizeof(buf) - len)
                        return sprout_err_set(err, -E2BIG, "%s: more than %d entries or %d bytes",
                                              what, SPROUT_LIST_MAX_ENTRIES, SPROUT_LIST_MAX_BYTES);
                memcpy(buf + len, *p, l);
                len += l;
        }
        struct tnode_spec s = {.path = path,
                               .type = TN_DATA,
                               .prio = PRIO_SPROUT,
                               .mode = 0444,
                               .data = buf,
                               .size = len};
        return tree_add(t, &s, err);
}

/* The handler's environment: the image's, plus PATH and HOME unless the image sets them. */
static int add_env(struct tree *t, const struct image_spec *s, struct sprout_err *err)
{
        static const char *const defaults[] = {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"};
        char *env[SPROUT_LIST_MAX_ENTRIES + 3];
        size_t n = 0;

        for (size_t d = 0; d < 2; d++) {
                size_t klen = (size_t)(strchr(defaults[d], '=') - defaults[d]) + 1, i = 0;
                while (i < s->nenv && strncmp(s->env[i], defaults[d], klen) != 0)
                        i++;
                if (i == s->nenv)
                        env[n++] = (char *)defaults[d];
        }
        for (size_t i = 0; i < s->nenv; i++)
                env[n++] = s->env[i];
        env[n] = NULL;
        return add_list(t, SPROUT_INITRD_ENV, env, "\"handler.env\" with defaults", err);
}

static int add_skeleton(struct tree *t, struct sprout_err *err)
{
        static const struct {
                const char *path;
                unsigned mode;
        } dirs[] = {{"/dev", 0755}, {"/proc", 0555},   {"/sys", 0555}, {"/tmp", 01777},
                    {"/run", 0755}, {"/sprout", 0755}, {"/app", 0755}};
        int rc = 0;

        for (size_t i = 0; rc == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                struct tnode_spec s = {.path = dirs[i].path,
                                       .type = TN_DIR,
                                       .prio = PRIO_SKELETON,
                                       .mode = dirs[i].mode};
                rc = tree_add(t, &s, err);
        }
        /* The kernel opens /dev/console for init before anything is mounted: it must be here. */
        struct tnode_spec con = {.path = "/dev/console",
                                 .type = TN_CHR,
                                 .prio = PRIO_SKELETON,
                                 .mode = 0600,
                                 .rmajor = 5,
                                 .rminor = 1};
        return rc < 0 ? rc : tree_add(t, &con, err);
}

static int assemble(struct tree *t, const struct image_spec *s, const struct sprout_build_opts *o,
                    const char *agent, const char *busybox, struct sprout_err *err)
{
        int rc = add_skeleton(t, err);
        /* The rootfs goes before busybox so busybox follows its symlinked /bin and loses
         * collisions. */
        if (rc == 0 && s->rootfs)
                rc = fill_rootfs(t, s->rootfs, err);
        if (rc == 0 && s->busybox)
                rc = fill_busybox(t, busybox, err);
        for (size_t i = 0; rc == 0 && i < s->nfiles; i++)
                rc = fill_file(t, s->files[i].guest, s->files[i].host, PRIO_FILES, err);
        for (size_t i = 0; rc == 0 && i < o->n_files; i++)
                rc = fill_file(t, o->files[i].guest_path, o->files[i].host_path, PRIO_EXTRA_FILES,
                               err);
        if (rc == 0)
                rc = fill_file(t, "/init", agent, PRIO_SPROUT, err);
        if (rc == 0)
                rc = add_list(t, SPROUT_INITRD_ARGV, s->argv, "\"handler.argv\"", err);
        if (rc == 0)
                rc = add_env(t, s, err);
        if (rc == 0 && t->file_bytes > SPROUT_INITRD_MAX_BYTES)
                rc = sprout_err_set(err, -EFBIG,
                                    "image content is %llu MiB, more than the %llu MiB limit",
                                    (unsigned long long)(t->file_bytes >> 20),
                                    (unsigned long long)(SPROUT_INITRD_MAX_BYTES >> 20));
        return rc;
}

/* The handler must be there for the agent to start: catch a forgotten --file now, not at boot. */
static int check_handler(const struct tree *t, const struct image_spec *s, struct sprout_err *err)
{
        const struct tnode *n = tree_find(t, s->argv[0]);

        if (!n)
                return sprout_err_set(err, -ENOENT,
                                      "%s: \"handler.argv[0]\" %s is not in the image (add it with "
                                      "\"files\" or --file)",
                                      s->json_path, s->argv[0]);
        if (n->type != TN_FILE || !(n->mode & 0111))
                return sprout_err_set(err, -EACCES,
                                      "%s: \"handler.argv[0]\" %s is not an executable file in the "
                                      "image",
                                      s->json_path, s->argv[0]);
        return 0;
}

static int write_outputs(const struct tree *t, const struct image_spec *s, const char *out,
                         uint64_t *initrd_bytes, struct sprout_err *err)
{
        struct atomic_file ini = {.fd = -1}, man = {.fd = -1};
        struct stat st;
        int rc = path_mkdirs(out, err);

        if (rc == 0)
                rc = atomic_open(out, INITRD_NAME, &ini, err);
        if (rc == 0)
                rc = cpio_write(t, ini.fd, ini.final, err);
        if (rc == 0 && fstat(ini.fd, &st) < 0)
                rc = sprout_err_errno(err, -errno, "%s: stat", ini.tmp);
        if (rc == 0)
                rc = atomic_open(out, MANIFEST_NAME, &man, err);
        if (rc == 0)
                rc = manifest_write(s, man.fd, man.final, err);
        /* The manifest is the commit marker: it is renamed only once the initrd is in place. */
        if (rc == 0)
                rc = atomic_commit(&ini, err);
        if (rc == 0)
                rc = atomic_commit(&man, err);
        if (rc == 0)
                rc = path_fsync_dir(out, err);
        atomic_abort(&ini);
        atomic_abort(&man);
        if (rc == 0)
                *initrd_bytes = (uint64_t)st.st_size;
        return rc;
}

int sprout_image_build(const struct sprout_build_opts *o, struct sprout_err *err)
{
        struct image_spec s;
        struct tree t;
        uint64_t initrd_bytes = 0;

        if (!o || !o->src_dir || !o->out_dir)
                return sprout_err_set(err, -EINVAL,
                                      "build: a source and an output directory are needed");
        const char *agent = pick(o->agent_path, "SPROUT_AGENT",
                                 access(SPROUT_AGENT_DEFAULT, R_OK) == 0 ? SPROUT_AGENT_DEFAULT
                                                                         : SPROUT_AGENT_INSTALLED);
        const char *busybox = pick(o->busybox_path, "SPROUT_BUSYBOX", "/bin/busybox");
        int rc = spec_load(o->src_dir, &s, err);
        if (rc < 0)
                return rc;
        tree_init(&t);
        rc = check_extra_files(o, err);
        if (rc == 0)
                rc = fill_check_static_elf(agent, "agent", err);
        if (rc == 0)
                rc = assemble(&t, &s, o, agent, busybox, err);
        if (rc == 0)
                rc = check_handler(&t, &s, err);
        if (rc == 0) {
                tree_sort(&t);
                rc = write_outputs(&t, &s, o->out_dir, &initrd_bytes, err);
        }
        if (rc == 0 && o->stats) {
                snprintf(o->stats->name, sizeof(o->stats->name), "%s", s.name);
                o->stats->entries = t.n;
                o->stats->files = 0;
                for (size_t i = 0; i < t.n; i++)
                        o->stats->files +=
                            t.nodes[i]->type == TN_FILE || t.nodes[i]->type == TN_DATA;
                o->stats->initrd_bytes = initrd_bytes;
        }
        tree_free(&t);
        spec_free(&s);
        return rc;
}
