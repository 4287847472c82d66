/* IMAGE operands: a built image as it is, a function directory built on the way (cli/source.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "source.h"
#include "sprout/image.h"

static bool has(const char *dir, const char *name)
{
        char p[PATH_MAX];
        struct stat st;
        return snprintf(p, sizeof(p), "%s/%s", dir, name) < (int)sizeof(p) && stat(p, &st) == 0;
}

int cli_image_from(const char *verb, const char *arg, const char *build_root, char *out,
                   size_t outlen)
{
        char abs[PATH_MAX];
        if (!realpath(arg, abs)) {
                fprintf(stderr, "sprout %s: %s: %s\n", verb, arg, strerror(errno));
                return CLI_EXIT_FAIL;
        }
        struct stat st;
        if (has(abs, "manifest.json") || (stat(abs, &st) == 0 && S_ISREG(st.st_mode))) {
                snprintf(out, outlen, "%s", abs);
                return 0;
        }
        if (!sprout_is_function_dir(abs)) {
                if (has(abs, "image.json"))
                        fprintf(stderr,
                                "sprout %s: %s is an image source (image.json), not a built "
                                "image: build it first with sprout build %s -o DIR (with the "
                                "--file options its files need)\n",
                                verb, arg, arg);
                else
                        fprintf(stderr,
                                "sprout %s: %s is neither a built image (no manifest.json) nor a "
                                "function directory (no handler.py)\n",
                                verb, arg);
                return CLI_EXIT_FAIL;
        }
        if (!build_root) {
                fprintf(stderr,
                        "sprout %s: %s is a function directory: build it first with "
                        "sprout build %s -o DIR\n",
                        verb, arg, arg);
                return CLI_EXIT_FAIL;
        }
        const char *name = strrchr(abs, '/') + 1;
        if (snprintf(out, outlen, "%s/%s", build_root, name) >= (int)outlen) {
                fprintf(stderr, "sprout %s: %s/%s: path too long\n", verb, build_root, name);
                return CLI_EXIT_FAIL;
        }
        fprintf(stderr, "sprout %s: building the function %s into %s\n", verb, arg, out);
        static char log[64 << 10];
        struct sprout_err err = {0};
        struct sprout_build_opts o = {.src_dir = abs, .out_dir = out};
        if (sprout_function_build(&o, log, sizeof(log), &err) < 0) {
                fprintf(stderr, "sprout %s: building %s: %s\n", verb, arg, err.msg);
                return CLI_EXIT_FAIL;
        }
        return 0;
}
