/* Builds real images into scratch directories and reads the cpio back with libarchive: /init is the
 * agent, busybox and its links are there, /sprout/argv and /sprout/env hold the right bytes, files
 * and a rootfs land where asked, parents precede children, a merged-/usr rootfs redirects busybox,
 * and a failed rebuild leaves the previous image intact. Usage: test_build AGENT BUSYBOX */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "../common/check.h"
#include "testutil.h"

struct ent {
        char *path;
        unsigned type; /* AE_IF* */
        char *data;    /* regular files: contents; symlinks: target */
        size_t size;
        unsigned rmajor, rminor;
};

struct cpio {
        struct ent *e;
        size_t n;
};

static const char *agent, *busybox;

static int read_cpio(const char *path, struct cpio *c)
{
        struct archive *a = archive_read_new();
        struct archive_entry *ae;
        int ok = 1;

        archive_read_support_format_cpio(a);
        if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
                fprintf(stderr, "%s: %s\n", path, archive_error_string(a));
                archive_read_free(a);
                return 0;
        }
        c->e = NULL;
        c->n = 0;
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                c->e = realloc(c->e, (c->n + 1) * sizeof(*c->e));
                struct ent *e = &c->e[c->n++];
                memset(e, 0, sizeof(*e));
                e->path = strdup(archive_entry_pathname(ae));
                e->type = archive_entry_filetype(ae);
                e->rmajor = archive_entry_rdevmajor(ae);
                e->rminor = archive_entry_rdevminor(ae);
                if (e->type == AE_IFLNK) {
                        e->data = strdup(archive_entry_symlink(ae));
                } else if (e->type == AE_IFREG) {
                        e->size = (size_t)archive_entry_size(ae);
                        e->data = malloc(e->size + 1);
                        if (archive_read_data(a, e->data, e->size) != (la_ssize_t)e->size)
                                ok = 0;
                        e->data[e->size] = '\0';
                }
        }
        archive_read_free(a);
        return ok;
}

static void free_cpio(struct cpio *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->e[i].path);
                free(c->e[i].data);
        }
        free(c->e);
}

static const struct ent *find(const struct cpio *c, const char *path)
{
        for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->e[i].path, path) == 0)
                        return &c->e[i];
        return NULL;
}

static size_t index_of(const struct cpio *c, const char *path)
{
        const struct ent *e = find(c, path);
        return e ? (size_t)(e - c->e) : SIZE_MAX;
}

static void check_structure(const struct cpio *c)
{
        /* Every path appears once and after its parent directory. */
        for (size_t i = 0; i < c->n; i++) {
                CHECK(c->e[i].path[0] != '/', "absolute name %s", c->e[i].path);
                CHECK(index_of(c, c->e[i].path) == i, "duplicate entry %s", c->e[i].path);
                char *parent = strdup(c->e[i].path), *slash = strrchr(parent, '/');
                if (slash) {
                        *slash = '\0';
                        size_t p = index_of(c, parent);
                        CHECK(p < i && c->e[p].type == AE_IFDIR,
                              "%s: parent %s missing, late or not a dir", c->e[i].path, parent);
                }
                free(parent);
        }
}

static void check_hello_image(const char *out, const char *data_host)
{
        struct cpio c;
        char *cpio_path = tu_path(out, "initrd.cpio");
        size_t agent_len, data_len;
        char *agent_bytes = tu_read(agent, &agent_len), *data = tu_read(data_host, &data_len);

        CHECK(read_cpio(cpio_path, &c), "cannot read %s back", cpio_path);
        check_structure(&c);
        const struct ent *e = find(&c, "init");
        CHECK(e && e->type == AE_IFREG && e->size == agent_len &&
                  memcmp(e->data, agent_bytes, agent_len) == 0,
              "/init is not the agent");
        e = find(&c, "bin/busybox");
        CHECK(e && e->type == AE_IFREG, "/bin/busybox missing");
        e = find(&c, "bin/sh");
        CHECK(e && e->type == AE_IFLNK && strcmp(e->data, "/bin/busybox") == 0,
              "/bin/sh is not a link to /bin/busybox");
        e = find(&c, "sbin/poweroff");
        CHECK(e && e->type == AE_IFLNK, "/sbin/poweroff missing");
        CHECK(!find(&c, "linuxrc"), "busybox's linuxrc should be left out");
        static const char argv[] = "/app/hello\0--flag\0";
        e = find(&c, "sprout/argv");
        CHECK(e && e->size == sizeof(argv) - 1 && memcmp(e->data, argv, sizeof(argv) - 1) == 0,
              "/sprout/argv has the wrong bytes");
        e = find(&c, "sprout/env");
        static const char env_tail[] = "HOME=/\0GREETING=hi there\0";
        CHECK(e && e->size > sizeof(env_tail) &&
                  memcmp(e->data + e->size - (sizeof(env_tail) - 1), env_tail,
                         sizeof(env_tail) - 1) == 0 &&
                  strncmp(e->data, "PATH=", 5) == 0,
              "/sprout/env has the wrong bytes");
        e = find(&c, "app/data.txt");
        CHECK(e && e->size == data_len && memcmp(e->data, data, data_len) == 0,
              "/app/data.txt wrong");
        e = find(&c, "app/hello");
        CHECK(e && e->type == AE_IFREG && e->size == agent_len, "/app/hello (from --file) wrong");
        e = find(&c, "dev/console");
        CHECK(e && e->type == AE_IFCHR && e->rmajor == 5 && e->rminor == 1, "/dev/console wrong");
        static const char *const dirs[] = {"dev", "proc", "sys", "tmp", "run", "sprout", "app"};
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                e = find(&c, dirs[i]);
                CHECK(e && e->type == AE_IFDIR, "/%s missing", dirs[i]);
        }
        e = find(&c, "etc/motd");
        CHECK(e && strcmp(e->data, "welcome\n") == 0, "rootfs /etc/motd missing");
        e = find(&c, "etc/motd.link");
        CHECK(e && e->type == AE_IFLNK && strcmp(e->data, "motd") == 0, "rootfs symlink missing");
        e = find(&c, "usr/bin/env");
        CHECK(e && e->type == AE_IFREG && strcmp(e->data, "mine\n") == 0,
              "rootfs file should win over the busybox applet");
        free_cpio(&c);
        free(cpio_path);
        free(agent_bytes);
        free(data);
}

static void check_manifest(const char *out)
{
        struct sprout_manifest *m = NULL;
        struct sprout_err err = {0};

        setenv("SPROUT_KERNEL", agent, 1); /* any existing file will do for "default" */
        int rc = sprout_manifest_load(out, &m, &err);
        CHECK(rc == 0, "built manifest does not load: %s", err.msg);
        if (rc == 0) {
                CHECK(strcmp(m->name, "hello-test") == 0, "name %s", m->name);
                CHECK(m->mem_size == 48ull << 20, "mem_size %llu", (unsigned long long)m->mem_size);
                CHECK(strcmp(m->cmdline, "quiet") == 0, "cmdline %s", m->cmdline);
                CHECK(m->argc == 2 && strcmp(m->argv[1], "--flag") == 0, "argv");
                CHECK(strstr(m->initrd_path, "/out/initrd.cpio") && m->initrd_path[0] == '/',
                      "initrd path %s", m->initrd_path);
                sprout_manifest_free(m);
        }
        unsetenv("SPROUT_KERNEL");
}

static int no_temporaries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        int clean = 1;
        while (d && (e = readdir(d)))
                if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        clean = 0;
        if (d)
                closedir(d);
        return clean;
}

static void test_hello(const char *root)
{
        char *src = tu_path(root, "src"), *out = tu_path(root, "out");
        char *rootfs = tu_path(src, "rootfs"), *etc = tu_path(rootfs, "etc");
        char *usr = tu_path(rootfs, "usr"), *usrbin = tu_path(rootfs, "usr/bin");
        char *data = tu_path(src, "data.txt"), *link = tu_path(etc, "motd.link");

        mkdir(src, 0755);
        mkdir(rootfs, 0755);
        mkdir(etc, 0755);
        mkdir(usr, 0755);
        mkdir(usrbin, 0755);
        tu_write(etc, "motd", "welcome\n", (size_t)-1);
        tu_write(usrbin, "env", "mine\n", (size_t)-1);
        CHECK(symlink("motd", link) == 0, "symlink setup");
        tu_write(src, "data.txt", "some data\n", (size_t)-1);
        tu_write(src, "image.json",
                 "{\"name\": \"hello-test\", \"memory_mib\": 48, \"cmdline\": \"quiet\",\n"
                 " \"handler\": {\"argv\": [\"/app/hello\", \"--flag\"],\n"
                 "             \"env\": {\"GREETING\": \"hi there\"}},\n"
                 " \"files\": {\"/app/data.txt\": \"data.txt\"},\n"
                 " \"rootfs\": \"rootfs\"}\n",
                 (size_t)-1);

        struct sprout_build_file extra = {"/app/hello", agent};
        struct sprout_build_stats stats;
        struct sprout_build_opts o = {.src_dir = src,
                                      .out_dir = out,
                                      .agent_path = agent,
                                      .busybox_path = busybox,
                                      .files = &extra,
                                      .n_files = 1,
                                      .stats = &stats};
        struct sprout_err err = {0};
        int rc = sprout_image_build(&o, &err);
        CHECK(rc == 0, "build failed: %s", err.msg);
        if (rc == 0) {
                CHECK(strcmp(stats.name, "hello-test") == 0 && stats.entries > 200 &&
                          stats.files >= 6 && stats.initrd_bytes > 1000000,
                      "stats: %s %zu %zu %llu", stats.name, stats.entries, stats.files,
                      (unsigned long long)stats.initrd_bytes);
                check_hello_image(out, data);
                check_manifest(out);
                CHECK(no_temporaries(out), "temporary files left in %s", out);
        }

        /* A failed rebuild into the same directory must leave the previous image as it was. */
        char *manifest = tu_path(out, "manifest.json");
        size_t before_len = 0, after_len = 0;
        char *before = tu_read(manifest, &before_len);
        tu_write(src, "image.json", "{\"name\": \"broken\", \"memory_mib\": 1}", (size_t)-1);
        sprout_err_clear(&err);
        rc = sprout_image_build(&o, &err);
        char *after = tu_read(manifest, &after_len);
        CHECK(rc < 0 && before && after && before_len == after_len &&
                  memcmp(before, after, before_len) == 0,
              "failed rebuild changed the previous manifest");
        CHECK(no_temporaries(out), "failed rebuild left temporaries");
        free(before);
        free(after);
        free(manifest);
        free(src);
        free(out);
        free(rootfs);
        free(etc);
        free(usr);
        free(usrbin);
        free(data);
        free(link);
}

/* A merged-/usr rootfs (bin -> usr/bin): busybox must follow the link, as the kernel's unpacker
 * would, instead of writing entries under a path that is a symlink. */
static void test_merged_usr(const char *root)
{
        char *src = tu_path(root, "m-src"), *out = tu_path(root, "m-out");
        char *rootfs = tu_path(src, "rootfs"), *usrbin = tu_path(rootfs, "usr/bin");
        char *usr = tu_path(rootfs, "usr"), *bin = tu_path(rootfs, "bin");
        struct cpio c;

        mkdir(src, 0755);
        mkdir(rootfs, 0755);
        mkdir(usr, 0755);
        mkdir(usrbin, 0755);
        CHECK(symlink("usr/bin", bin) == 0, "symlink setup");
        tu_write(src, "image.json",
                 "{\"name\": \"merged\", \"handler\": {\"argv\": [\"/bin/sh\"]}, \"rootfs\": "
                 "\"rootfs\"}",
                 (size_t)-1);
        struct sprout_build_opts o = {
            .src_dir = src, .out_dir = out, .agent_path = agent, .busybox_path = busybox};
        struct sprout_err err = {0};
        int rc = sprout_image_build(&o, &err);
        CHECK(rc == 0, "merged-usr build failed: %s", err.msg);
        char *cpio_path = tu_path(out, "initrd.cpio");
        if (rc == 0 && read_cpio(cpio_path, &c)) {
                check_structure(&c);
                const struct ent *e = find(&c, "bin");
                CHECK(e && e->type == AE_IFLNK && strcmp(e->data, "usr/bin") == 0,
                      "/bin not a link");
                e = find(&c, "usr/bin/busybox");
                CHECK(e && e->type == AE_IFREG, "busybox did not follow /bin -> usr/bin");
                e = find(&c, "usr/bin/sh");
                CHECK(e && e->type == AE_IFLNK, "/bin/sh did not follow /bin -> usr/bin");
                int under_link = 0;
                for (size_t i = 0; i < c.n; i++)
                        under_link |= strncmp(c.e[i].path, "bin/", 4) == 0;
                CHECK(!under_link, "entries written under the /bin symlink");
                free_cpio(&c);
        }
        free(cpio_path);
        free(src);
        free(out);
        free(rootfs);
        free(usrbin);
        free(usr);
        free(bin);
}

/* "busybox": false: no busybox, no applets, and a handler that needs a shell is refused at build.
 */
static void test_no_busybox(const char *root)
{
        char *src = tu_path(root, "nb-src"), *out = tu_path(root, "nb-out");
        char json[8192];
        struct cpio c;

        mkdir(src, 0755);
        snprintf(json, sizeof(json),
                 "{\"name\": \"nobb\", \"busybox\": false, \"handler\": {\"argv\": "
                 "[\"/app/run\"]}, \"files\": {\"/app/run\": \"%s\"}}",
                 agent);
        tu_write(src, "image.json", json, (size_t)-1);
        struct sprout_build_opts o = {
            .src_dir = src, .out_dir = out, .agent_path = agent, .busybox_path = busybox};
        struct sprout_err err = {0};
        int rc = sprout_image_build(&o, &err);
        CHECK(rc == 0, "busybox-less build failed: %s", err.msg);
        char *cpio_path = tu_path(out, "initrd.cpio");
        if (rc == 0 && read_cpio(cpio_path, &c)) {
                CHECK(find(&c, "app/run") != NULL, "/app/run missing");
                CHECK(find(&c, "bin/busybox") == NULL,
                      "busybox packed although \"busybox\": false");
                CHECK(find(&c, "bin/sh") == NULL, "applets packed although \"busybox\": false");
                free_cpio(&c);
        }
        tu_write(src, "image.json",
                 "{\"name\": \"nobb\", \"busybox\": false, \"handler\": {\"argv\": "
                 "[\"/bin/sh\"]}}",
                 (size_t)-1);
        sprout_err_clear(&err);
        rc = sprout_image_build(&o, &err);
        CHECK(rc < 0 && strstr(err.msg, "/bin/sh"),
              "a shell handler without busybox was not refused: rc=%d '%s'", rc, err.msg);
        free(cpio_path);
        free(src);
        free(out);
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: %s AGENT BUSYBOX\n", argv[0]);
                return 2;
        }
        agent = argv[1];
        busybox = argv[2];
        char *root = tu_mkdtemp("build");
        test_hello(root);
        test_merged_usr(root);
        test_no_busybox(root);
        tu_rmtree(root);
        free(root);
        return check_finish();
}
