/* libFuzzer target: the two JSON files of an image, each input given to both parsers: image.json
 * to spec_load (the builder's source manifest; white-box, spec.h is the image library's) and
 * manifest.json to sprout_manifest_load (a built image, as the VMM and sproutd load it). The
 * scratch image directory holds the files they may name: a kernel, an initrd, a handler. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "sprout/image.h"
#include "fuzz_util.h"
#include "spec.h"

static char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_setup();
        dir = fuzz_mkdtemp("image-json");
        fuzz_write_file(dir, "vmlinux", "not a kernel", 12);
        fuzz_write_file(dir, "initrd.cpio", "", 0);
        char path[4096];
        snprintf(path, sizeof(path), "%s/app", dir);
        mkdir(path, 0755);
        fuzz_write_file(dir, "app/hello", "#!/bin/true\n", 12);
        /* The names fuzz_image_build's source directory has, so its seeds parse here too. */
        fuzz_write_file(dir, "hello", "#!/bin/true\n", 12);
        fuzz_write_file(dir, "data.txt", "data\n", 5);
        snprintf(path, sizeof(path), "%s/rootfs", dir);
        mkdir(path, 0755);
        /* "kernel": "default" resolves here, not to whatever the machine has cached. */
        snprintf(path, sizeof(path), "%s/vmlinux", dir);
        setenv("SPROUT_KERNEL", path, 1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sprout_err err = {0};
        struct image_spec s;

        fuzz_write_file(dir, "image.json", data, size);
        int rc = spec_load(dir, &s, &err);
        fuzz_note("spec_load", rc, &err);
        if (rc == 0) {
                /* Every string of a loaded spec is read to its end: ASan checks each is whole. */
                size_t n = strlen(s.name) + strlen(s.kernel) + strlen(s.cmdline);
                for (size_t i = 0; i < s.argc; i++)
                        n += strlen(s.argv[i]);
                for (size_t i = 0; i < s.nenv; i++)
                        n += strlen(s.env[i]);
                for (size_t i = 0; i < s.nfiles; i++)
                        n += strlen(s.files[i].guest) + strlen(s.files[i].host);
                if (!s.argv || s.argv[s.argc] || (s.env && s.env[s.nenv]) || n == 0)
                        abort(); /* spec.h: the vectors are NULL-terminated */
                spec_free(&s);
        }

        struct sprout_manifest *m = (void *)1;
        sprout_err_clear(&err);
        fuzz_write_file(dir, "manifest.json", data, size);
        rc = sprout_manifest_load(dir, &m, &err);
        fuzz_note("sprout_manifest_load", rc, &err);
        if (rc == 0) {
                size_t n = strlen(m->name) + strlen(m->kernel_path) + strlen(m->initrd_path) +
                           strlen(m->cmdline) + strlen(m->created) + strlen(m->sprout_version);
                for (size_t i = 0; i < m->argc; i++)
                        n += strlen(m->argv[i]);
                if (m->argv[m->argc] || n == 0 || m->vcpus != 1 || m->mem_size == 0)
                        abort();
                sprout_manifest_free(m);
        } else if (m != NULL) {
                abort(); /* image.h: *out is NULL on failure */
        }
        return 0;
}
