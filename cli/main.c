/* sprout: the command-line front end. main() dispatches to the verbs, one file each in cmd/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "sprout/log.h"
#include "sprout/version.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} commands[] = {
    {"build", sprout_cmd_build,
     "turn an image.json directory or a Python function directory into an image"},
    {"deploy", sprout_cmd_deploy,
     "build a function directory and snapshot it through sproutd; prints the id"},
    {"boot", sprout_cmd_boot, "boot an image to READY (cold start), optionally keep it running"},
    {"prewarm", sprout_cmd_prewarm,
     "snapshot an image through sproutd (-o FILE: directly, no daemon)"},
    {"inspect", sprout_cmd_inspect, "show and verify what a snapshot file holds"},
    {"import", sprout_cmd_import, "check a snapshot sproutd did not write and add it to sproutd"},
    {"snapshots", sprout_cmd_snapshots, "list sproutd's snapshots"},
    {"clone", sprout_cmd_clone, "create clones through sproutd (--direct: in this process)"},
    {"clones", sprout_cmd_clones, "list sproutd's clones"},
    {"invoke", sprout_cmd_invoke, "invoke a clone, or a snapshot one-shot"},
    {"rm", sprout_cmd_rm, "delete a snapshot or destroy clones"},
    {"logs", sprout_cmd_logs, "print a clone's log (its console and its handler's output)"},
    {"daemon", sprout_cmd_daemon, "run sproutd in the foreground"},
    {"bench", sprout_cmd_bench, "benchmarks: clone latency and memory, cold boot vs QEMU, API"},
};

static void usage(FILE *f)
{
        fprintf(f,
                "usage: sprout [--verbose] COMMAND [ARGS...]\n       sprout --version\n\n"
                "sprout builds microVM images, boots them to a ready runtime, and clones them.\n\n"
                "commands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\nRun 'sprout COMMAND --help' for a command's options.\n"
                   "Exit status: 0 success, 1 the operation failed, 2 usage error, 3 sproutd\n"
                   "unreachable.\n");
}

int main(int argc, char **argv)
{
        int i = 1;
        const char *lvl = getenv("SPROUT_LOG");
        if (lvl)
                sprout_log_level = atoi(lvl);
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                }
                if (!strcmp(argv[i], "--version")) {
                        printf("sprout %s\n", SPROUT_VERSION);
                        return 0;
                }
                if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
                        sprout_log_level = SPROUT_LOG_DEBUG;
                        continue;
                }
                fprintf(stderr, "sprout: unknown option '%s'\n", argv[i]);
                usage(stderr);
                return 2;
        }
        if (i == argc) {
                usage(stderr);
                return 2;
        }
        for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
                if (!strcmp(argv[i], commands[c].name))
                        return commands[c].fn(argc - i, argv + i);
        fprintf(stderr, "sprout: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return 2;
}
