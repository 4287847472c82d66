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
            "                          [--identity-old SNAPSHOT2]\n"
            "       sprout bench boot IMAGE [-n N] [--no-qemu] [--json]\n"
            "       sprout bench api SNAPSHOT_ID ...      (sprout bench api --help)\n"
            "       sprout bench density SNAPSHOT_ID ...  (sprout bench density --help)\n"
            "       sprout bench soak SNAPSHOT_ID ...     (sprout bench soak --help)\n\n"
            "clone: restores N clones (default 1000) of SNAPSHOT in batches of P pooled VM shells\n"
            "       (default 16), invokes each, and reports restore latency (call to vCPU "
            "runnable),\n"
            "       restore + first invoke, a second invoke, a ready (warmed-up) clone's first "
            "invoke\n"
            "       and the warm-up itself, private memory per idle clone, teardown,\n"
            "       base-load throughput and snapshot size, beside the floor of this host (the\n"
            "       cheapest VM KVM can create and run), all measured in this run.\n"
            "       --identity-old: SNAPSHOT2 is the same image prewarmed with\n"
            "       `--append sprout.seed=off` (its guest re-seeds with ioctls, the old path);\n"
            "       fresh clones of both alternate, and their first invokes (and the guest's\n"
            "       identity step, with --request '{\"identity\":true}' on hello) are compared.\n"
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

static const struct cli_verb density_verb = {
    .name = "bench density",
    .operands = 1,
    .usage_text =
        "usage: sprout bench density SNAPSHOT_ID [-n N] [--step S] [--batch B] [--sample K]\n"
        "                            [--idle-s SEC] [--json]\n\n"
        "Through sproutd's socket: creates N live clones (default 10000), B per request\n"
        "(default 256), and every S clones (default 1000) prints the creation rate of the\n"
        "step, host memory per clone (MemAvailable's drop, and how much of it is anonymous\n"
        "memory, page tables, KVM's page tables, kernel stacks and unreclaimable slab),\n"
        "sproutd's and its workers' RSS, descriptors and threads, host CPU while all\n"
        "clones idle for SEC seconds (default 5) and the part of it sproutd and its workers\n"
        "spent, and the first invocation's p50/p99 over K clones (default 100). First, the\n"
        "host CPU with no clones, for comparison. Deletes the clones at the end. Run as\n"
        "root: it reads the workers' /proc entries. Start sproutd with --max-clones at least\n"
        "N.\n",
};

static int bench_density_cmd(int argc, char **argv)
{
        const char *socket = NULL;
        long n = 10000, step = 1000, batch = 256, sample = 100, idle_s = 5;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_LONG_AS("count", 'n', &n, 1, 100000, "-n"),
            CLI_LONG("step", 0, &step, 1, 100000),
            CLI_LONG("batch", 0, &batch, 1, 256),
            CLI_LONG("sample", 0, &sample, 0, 10000),
            CLI_LONG("idle-s", 0, &idle_s, 0, 600),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&density_verb, opts, argc, argv, &status) < 0)
                return status;
        return bench_density(socket, argv[optind], n, step, batch, sample, (double)idle_s, json);
}

static const struct cli_verb soak_verb = {
    .name = "bench soak",
    .operands = 1,
    .usage_text =
        "usage: sprout bench soak SNAPSHOT_ID [--minutes M] [--clients C] [--sample S] [--json]\n\n"
        "Through sproutd's socket, C client threads (default 4) run a mix for M minutes\n"
        "(default 60): fresh and reused one-shot invocations, named clones created, invoked\n"
        "twice and deleted, and warm invocations of a clone each keeps. Every S seconds\n"
        "(default 30) it prints the calls so far and the RSS, descriptors and threads of\n"
        "sproutd and its workers; at the end each figure's median over the second quarter\n"
        "of the run beside the last quarter's (a leak is a rise). Exits 1 if a call failed.\n"
        "Run as root, so the workers' /proc entries can be read.\n",
};

static int bench_soak_cmd(int argc, char **argv)
{
        const char *socket = NULL;
        long minutes = 60, clients = 4, sample = 30;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_LONG("minutes", 0, &minutes, 1, 24 * 60),
            CLI_LONG("clients", 0, &clients, 1, 256),
            CLI_LONG("sample", 0, &sample, 1, 3600),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&soak_verb, opts, argc, argv, &status) < 0)
                return status;
        return bench_soak(socket, argv[optind], (double)minutes, clients, (double)sample, json);
}

int sprout_cmd_bench(int argc, char **argv)
{
        if (argc > 1 && !strcmp(argv[1], "api"))
                return bench_api_cmd(argc - 1, argv + 1);
        if (argc > 1 && !strcmp(argv[1], "density"))
                return bench_density_cmd(argc - 1, argv + 1);
        if (argc > 1 && !strcmp(argv[1], "soak"))
                return bench_soak_cmd(argc - 1, argv + 1);
        long n = -1, pool = 16;
        const char *req = "{}", *old_rng = NULL;
        bool json = false, no_qemu = false;
        const struct cli_opt opts[] = {
            CLI_LONG_AS("count", 'n', &n, 1, 1000000, "-n"),
            CLI_LONG("pool", 0, &pool, 0, 64),
            CLI_STRING("request", 0, &req),
            CLI_STRING("identity-old", 0, &old_rng),
            CLI_FLAG("no-qemu", 0, &no_qemu),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&bench_verb, opts, argc, argv, &status) < 0)
                return status;
        bool qemu = !no_qemu;
        if (!strcmp(argv[optind], "clone"))
                return bench_clone(argv[optind + 1], old_rng, n < 0 ? 1000 : n, pool, req, qemu,
                                   json);
        if (!strcmp(argv[optind], "boot"))
                return bench_boot(argv[optind + 1], n < 0 ? 5 : n, qemu, json);
        return cli_usage_error(&bench_verb, "unknown benchmark '%s'", argv[optind]);
}
