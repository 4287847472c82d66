/* sprout bench: the benchmarks' options and dispatch; the benchmarks themselves are in bench/. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli_opts.h"
#include "commands.h"

static void usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout bench clone SNAPSHOT [-n N] [--pool P] [--request JSON] [--no-qemu] "
            "[--json]\n"
            "       sprout bench boot IMAGE [-n N] [--no-qemu] [--json]\n\n"
            "clone: restores N clones (default 1000) of SNAPSHOT in batches of P pooled VM shells\n"
            "       (default 16), invokes each, and reports restore latency (call to vCPU "
            "runnable),\n"
            "       restore + first invoke, a second invoke, a ready (warmed-up) clone's first "
            "invoke\n"
            "       and the warm-up itself, private memory per idle clone, teardown,\n"
            "       base-load throughput and snapshot size, beside the floor of this host (the\n"
            "       cheapest VM KVM can create and run), all measured in this run.\n"
            "boot:  cold-boots IMAGE to READY N times (default 5) and, where qemu-system-x86_64 "
            "is\n"
            "       installed, boots the same kernel and initrd N times with QEMU's microvm "
            "machine\n"
            "       to the same doorbell write.\n");
}

static const struct cli_verb bench_verb = {.name = "bench", .usage = usage, .operands = 2};

static const struct cli_verb api_verb = {
    .name = "bench api",
    .operands = 1,
    .usage_text =
        "usage: sprout bench api SNAPSHOT_ID [--duration S] [-n N] [--request JSON] [--json]\n\n"
        "Through sproutd's socket: one-shot invocations per second with 1, 2 and 8 concurrent\n"
        "clients (S seconds each, default 5), reusing pooled clones and with a fresh clone\n"
        "per call; then N sequential warm invocations (default 1000) through the API and in\n"
        "this process (direct mode) to show the latency the HTTP layer adds.\n",
};

static int bench_api_cmd(int argc, char **argv)
{
        const char *socket = NULL, *req = "{}";
        long seconds = 5, n = 1000;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_LONG("duration", 0, &seconds, 1, 3600),
            CLI_LONG_AS("requests", 'n', &n, 4, 1000000, "-n"),
            CLI_STRING("request", 0, &req),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&api_verb, opts, argc, argv, &status) < 0)
                return status;
        return bench_api(socket, argv[optind], seconds, n, req, json);
}

int sprout_cmd_bench(int argc, char **argv)
{
        if (argc > 1 && !strcmp(argv[1], "api"))
                return bench_api_cmd(argc - 1, argv + 1);
        long n = -1, pool = 16;
        const char *req = "{}";
        bool json = false, no_qemu = false;
        const struct cli_opt opts[] = {
            CLI_LONG_AS("count", 'n', &n, 1, 1000000, "-n"),
            CLI_LONG("pool", 0, &pool, 0, 64),
            CLI_STRING("request", 0, &req),
            CLI_FLAG("no-qemu", 0, &no_qemu),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&bench_verb, opts, argc, argv, &status) < 0)
                return status;
        bool qemu = !no_qemu;
        if (!strcmp(argv[optind], "clone"))
                return bench_clone(argv[optind + 1], n < 0 ? 1000 : n, pool, req, qemu, json);
        if (!strcmp(argv[optind], "boot"))
                return bench_boot(argv[optind + 1], n < 0 ? 5 : n, qemu, json);
        return cli_usage_error(&bench_verb, "unknown benchmark '%s'", argv[optind]);
}
