/* `sprout build`: command-line front end of the image builder (sprout/image.h). Parses options,
 * runs the build, prints one summary line or one error line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/image.h"
#include "commands.h"

#define MAX_EXTRA_FILES 256

static void usage(FILE *f)
{
        static const char text[] =
            "usage: sprout build SRC_DIR -o OUT_DIR [--agent PATH] [--busybox PATH]\n"
            "                    [--file GUEST=HOST]...\n"
            "Build the image described by SRC_DIR/image.json into OUT_DIR\n"
            "(initrd.cpio and manifest.json).\n"
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

static int bad_usage(const char *msg, const char *arg)
{
        fprintf(stderr, "sprout build: %s%s\n", msg, arg ? arg : "");
        usage(stderr);
        return 2;
}

int sprout_cmd_build(int argc, char **argv)
{
        enum { OPT_AGENT = 256, OPT_BUSYBOX, OPT_FILE };
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"agent", required_argument, NULL, OPT_AGENT},
            {"busybox", required_argument, NULL, OPT_BUSYBOX},
            {"file", required_argument, NULL, OPT_FILE},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct sprout_build_file files[MAX_EXTRA_FILES];
        struct sprout_build_stats stats;
        struct sprout_build_opts o = {.files = files, .stats = &stats};
        struct sprout_err err = {0};
        int c;

        optind = 0; /* glibc: restart scanning even if main() used getopt */
        opterr = 0; /* one error line, ours */
        while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        o.out_dir = optarg;
                        break;
                case OPT_AGENT:
                        o.agent_path = optarg;
                        break;
                case OPT_BUSYBOX:
                        o.busybox_path = optarg;
                        break;
                case OPT_FILE: {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || !eq[1])
                                return bad_usage("--file wants GUEST=HOST, got ", optarg);
                        if (o.n_files == MAX_EXTRA_FILES)
                                return bad_usage("too many --file options", NULL);
                        *eq = '\0'; /* optarg points into argv, which is ours to split */
                        files[o.n_files].guest_path = optarg;
                        files[o.n_files++].host_path = eq + 1;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        return bad_usage("unknown option or missing argument: ", argv[optind - 1]);
                }
        }
        if (optind != argc - 1)
                return bad_usage("expected exactly one SRC_DIR", NULL);
        if (!o.out_dir)
                return bad_usage("-o OUT_DIR is required", NULL);
        o.src_dir = argv[optind];

        if (sprout_image_build(&o, &err) < 0) {
                fprintf(stderr, "sprout build: %s\n", err.msg[0] ? err.msg : "failed");
                return 1;
        }
        printf("built image \"%s\" in %s: %zu entries (%zu files), initrd %.1f MiB\n", stats.name,
               o.out_dir, stats.entries, stats.files, (double)stats.initrd_bytes / (1 << 20));
        return 0;
}
