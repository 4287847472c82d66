/* libFuzzer target: sprout_image_build with the input as image.json, over a small source
 * directory (a handler, a data file, a rootfs tree), busybox-static as busybox, and the output
 * checked by loading the manifest the build wrote: whatever the builder accepts, the loader must.
 *
 * The build reads every host file image.json names, and this runs as root: inputs that name a
 * host path outside the source directory (absolute, or with "..") are refused before the build,
 * so the fuzzer cannot pack /proc/kcore or the whole host. Guest paths are not restricted. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "fuzz_util.h"

static char *top, src[4096], out[4096], agent[4096];

static void mkdir_in(const char *dir, const char *name)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s%s", dir, name);
        if (mkdir(p, 0755) < 0)
                abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_setup();
        top = fuzz_mkdtemp("image-build");
        snprintf(src, sizeof(src), "%s/src", top);
        snprintf(out, sizeof(out), "%s/out", top);
        mkdir_in(src, "");
        fuzz_write_file(src, "hello", "#!/bin/sh\necho hello\n", 21);
        char p[4096];
        snprintf(p, sizeof(p), "%s/hello", src);
        chmod(p, 0755);
        fuzz_write_file(src, "data.txt", "some data\n", 10);
        mkdir_in(src, "/rootfs");
        mkdir_in(src, "/rootfs/etc");
        mkdir_in(src, "/rootfs/app");
        fuzz_write_file(src, "rootfs/etc/hostname", "sprout\n", 7);
        fuzz_write_file(src, "rootfs/app/run", "#!/bin/sh\n", 10);
        snprintf(p, sizeof(p), "%s/rootfs/app/run", src);
        chmod(p, 0755);
        snprintf(p, sizeof(p), "%s/rootfs/app/link", src);
        if (symlink("run", p) < 0)
                abort();
        /* The agent need only pass the static-ELF check: a bare 64-byte ELF header does, and
         * copying it costs nothing. */
        static const uint8_t ehdr[64] = {
            0x7f, 'E', 'L', 'F', 2, 1, 1, [16] = 2, [18] = 0x3e, [20] = 1, [52] = 64, [54] = 56};
        fuzz_write_file(top, "agent", ehdr, sizeof(ehdr));
        snprintf(agent, sizeof(agent), "%s/agent", top);
        snprintf(p, sizeof(p), "%s/vmlinux", top);
        fuzz_write_file(top, "vmlinux", "not a kernel", 12);
        setenv("SPROUT_KERNEL", p, 1);
        return 0;
}

/* A host path the build may read: relative to the source directory and staying inside it. */
static int host_ok(json_t *v)
{
        if (!json_is_string(v))
                return 1; /* the spec refuses it */
        const char *s = json_string_value(v);
        return strlen(s) == json_string_length(v) && s[0] != '/' && !strstr(s, "..");
}

static int inside_src(const uint8_t *data, size_t size)
{
        /* The flags spec_load parses with, so both see the same object. */
        json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return 1;
        }
        int ok = !json_object_get(root, "rootfs") || host_ok(json_object_get(root, "rootfs"));
        json_t *files = json_object_get(root, "files"), *v;
        const char *k;
        if (json_is_object(files))
                json_object_foreach(files, k, v) ok = ok && host_ok(v);
        json_decref(root);
        return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096 || !inside_src(data, size))
                return -1;
        fuzz_write_file(src, "image.json", data, size);
        struct sprout_build_stats st;
        struct sprout_build_opts o = {.src_dir = src,
                                      .out_dir = out,
                                      .agent_path = agent,
                                      .busybox_path = "/bin/busybox",
                                      .stats = &st};
        struct sprout_err err = {0};
        int rc = sprout_image_build(&o, &err);
        fuzz_note("sprout_image_build", rc, &err);
        if (rc == 0) {
                struct sprout_manifest *m = NULL;
                if (sprout_manifest_load(out, &m, &err) < 0) {
                        fprintf(stderr, "fuzz: the built manifest does not load: %s\n", err.msg);
                        abort();
                }
                if (strcmp(m->name, st.name) != 0 || st.initrd_bytes == 0)
                        abort();
                sprout_manifest_free(m);
        }
        fuzz_rm_tree(out);
        return 0;
}
