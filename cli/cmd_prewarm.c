/* sprout prewarm: boot an image to READY and write the snapshot clones are made from. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cli_opts.h"
#include "commands.h"
#include "sprout/clone.h"

#define DEFAULT_PREWARM_TIMEOUT_S 300

static void usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout prewarm IMAGE -o FILE [options]\n\n"
            "Boots IMAGE until its runtime rings READY, then captures the VM (vCPU, devices, RAM)\n"
            "into the snapshot FILE (zstd, chunked, checksummed; replaced atomically).\n\n"
            "options:\n"
            "  -o, --output FILE  the snapshot to write (required)\n"
            "  --timeout SEC      give up if READY has not come after SEC seconds (default %d)\n"
            "  --level N          zstd level, -7..19 (default 3)\n"
            "  --append ARGS      add ARGS to the guest kernel command line\n"
            "  --console          stream the guest console to stderr while it boots\n"
            "  --json             print the result as one JSON object\n"
            "  -h, --help         show this help\n",
            DEFAULT_PREWARM_TIMEOUT_S);
}

static const struct cli_verb prewarm_verb = {.name = "prewarm", .usage = usage};

static const char *phase_name[] = {"booting to READY", "capturing state", "writing snapshot"};

static void progress(void *ctx, enum sprout_prewarm_phase phase, uint64_t done, uint64_t total)
{
        bool tty = *(bool *)ctx;
        if (phase != SPROUT_PW_WRITING || total == 0) {
                fprintf(stderr, "%sprewarm: %s...%s", tty ? "\r\033[K" : "", phase_name[phase],
                        tty ? "" : "\n");
                return;
        }
        if (tty)
                fprintf(stderr, "\r\033[Kprewarm: writing snapshot %3d%%",
                        (int)(done * 100 / total));
}

int sprout_cmd_prewarm(int argc, char **argv)
{
        const char *out = NULL, *append = NULL;
        long timeout_s = DEFAULT_PREWARM_TIMEOUT_S, level = 0;
        bool console = false, json = false;
        const struct cli_opt opts[] = {
            CLI_STRING("output", 'o', &out),
            CLI_LONG_UNIT("timeout", 0, &timeout_s, 1, 86400, "seconds"),
            CLI_LONG("level", 0, &level, -7, 19),
            CLI_STRING("append", 0, &append),
            CLI_FLAG("console", 0, &console),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&prewarm_verb, opts, argc, argv, &status) < 0)
                return status;
        if (optind != argc - 1 || !out)
                return cli_usage_error(&prewarm_verb, "expected one IMAGE and -o FILE");

        struct sprout_err err = {0};
        struct sprout_kvm *kvm = NULL;
        if (sprout_kvm_open(&kvm, &err) < 0) {
                fprintf(stderr, "sprout prewarm: %s\n", err.msg);
                return 1;
        }
        bool tty = isatty(STDERR_FILENO) && !console;
        struct sprout_prewarm_opts po = {
            .image = argv[optind],
            .out_path = out,
            .cmdline = append,
            .console_fd = console ? STDERR_FILENO : -1,
            .timeout_ms = timeout_s * 1000,
            .zstd_level = (int)level,
            .progress = json ? NULL : progress,
            .progress_ctx = &tty,
        };
        struct sprout_prewarm_stats st;
        int r = sprout_prewarm(kvm, &po, &st, &err);
        if (tty)
                fprintf(stderr, "\r\033[K");
        if (r < 0) {
                fprintf(stderr, "sprout prewarm: %s\n", err.msg);
                if (st.console_tail[0])
                        fprintf(stderr, "last console lines:\n%s\n", st.console_tail);
                sprout_kvm_close(kvm);
                return 1;
        }
        char id[37];
        uuid_unparse_lower(st.uuid, id);
        double ratio =
            st.write.file_size ? (double)st.write.ram_size / (double)st.write.file_size : 0;
        if (json)
                printf("{\"snapshot\":\"%s\",\"id\":\"%s\",\"host_kind\":\"%s\",\"boot_s\":%.3f,"
                       "\"capture_ms\":%.3f,\"write_s\":%.3f,\"ram_bytes\":%llu,\"nonzero_bytes\":%"
                       "llu,"
                       "\"file_bytes\":%llu,\"ratio\":%.2f}\n",
                       out, id, sprout_host_kind_name(sprout_kvm_host_kind(kvm)), st.boot_s,
                       st.capture_ms, st.write.seconds, (unsigned long long)st.write.ram_size,
                       (unsigned long long)st.write.nonzero_bytes,
                       (unsigned long long)st.write.file_size, ratio);
        else
                printf("snapshot %s (%s)\n"
                       "  boot to READY   %.3f s (host %s)\n"
                       "  capture         %.3f ms\n"
                       "  write           %.3f s\n"
                       "  RAM             %llu MiB, %.1f MiB non-zero\n"
                       "  file            %.2f MiB, %.1fx smaller than RAM\n",
                       out, id, st.boot_s, sprout_host_kind_name(sprout_kvm_host_kind(kvm)),
                       st.capture_ms, st.write.seconds,
                       (unsigned long long)(st.write.ram_size >> 20),
                       (double)st.write.nonzero_bytes / 1048576.0,
                       (double)st.write.file_size / 1048576.0, ratio);
        sprout_kvm_close(kvm);
        return 0;
}
