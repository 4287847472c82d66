/* `sprout build`: command-line front end of the image builder (sprout/image.h). Parses options,
 * runs the build, prints one summary line or one error line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_opts.h"
#include "commands.h"
#include "sprout/image.h"

#define MAX_EXTRA_FILES 256

static void usage(FILE *f)
{
        static const char text[] =
            "usage: sprout build SRC_DIR -o OUT_DIR [--agent PATH] [--busybox PATH]\n"
            "                    [--file GUEST=HOST]...\n"
            "Build the image described by SRC_DIR/image.json into OUT_DIR\n"
            "(initrd.cpio and manifest.json). A SRC_DIR with a handler.py and no image.json\n"
            "is a Python function: its handler (and an optional function.json) is built\n"
            "with Debian's python3 and the modules it imports (docs/python.md).\n"
            "  -o, --output DIR    where the image goes (created if missing)\n"
            "  --agent PATH        the guest agent binary, /init\n"
            "                      (default: $SPROUT_AGENT, else the one built with sprout)\n"
            "  --busybox PATH      a static busybox\n"
            "                      (default: $SPROUT_BUSYBOX, else /bin/busybox)\n"
            "  --file GUEST=HOST   put the host file HOST at the guest path GUEST;\n"
            "                      repeatable; wins over image.json \"files\"\n"
            "  -h, --help          show this help\n";
        fputs(text, f);
}

static const struct cli_verb build_verb = {.name = "build",
                                           .usage = usage,
                                           .own_errors = true,
                                           .operands = 1,
                                           .operands_msg = "expected exactly one SRC_DIR"};

struct extra_files {
        struct sprout_build_file v[MAX_EXTRA_FILES];
        size_t n;
};

/* --file GUEST=HOST: one more file for the image. */
static int add_file(char *arg, void *dest)
{
        struct extra_files *f = dest;
        char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1])
                return cli_usage_error(&build_verb, "--file wants GUEST=HOST, got %s", arg);
        if (f->n == MAX_EXTRA_FILES)
                return cli_usage_error(&build_verb, "too many --file options");
        *eq = '\0'; /* arg points into argv, which is ours to split */
        f->v[f->n].guest_path = arg;
        f->v[f->n++].host_path = eq + 1;
        return 0;
}

int sprout_cmd_build(int argc, char **argv)
{
        struct extra_files files = {.n = 0};
        struct sprout_build_stats stats;
        struct sprout_build_opts o = {.files = files.v, .stats = &stats};
        struct sprout_err err = {0};
        const struct cli_opt opts[] = {
            CLI_STRING("output", 'o', &o.out_dir),
            CLI_STRING("agent", 0, &o.agent_path),
            CLI_STRING("busybox", 0, &o.busybox_path),
            {.name = "file", .kind = CLI_OPT_FN, .dest = &files, .fn = add_file},
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&build_verb, opts, argc, argv, &status) < 0)
                return status;
        o.n_files = files.n;
        if (!o.out_dir)
                return cli_usage_error(&build_verb, "-o OUT_DIR is required");
        o.src_dir = argv[optind];

        bool function = sprout_is_function_dir(o.src_dir);
        if (function && o.n_files)
                return cli_usage_error(&build_verb, "--file is for image.json builds; a "
                                                    "function's files are its directory's");
        static char log[64 << 10];
        int r = function ? sprout_function_build(&o, log, sizeof(log), &err)
                         : sprout_image_build(&o, &err);
        if (r < 0) {
                fprintf(stderr, "sprout build: %s\n", err.msg[0] ? err.msg : "failed");
                if (function && log[0])
                        fprintf(stderr, "the Python recipe said:\n%s", log);
                return 1;
        }
        printf("built image \"%s\" in %s: %zu entries (%zu files), initrd %.1f MiB\n", stats.name,
               o.out_dir, stats.entries, stats.files, (double)stats.initrd_bytes / (1 << 20));
        return 0;
}
