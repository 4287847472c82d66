/* sprout prewarm: boot an image to READY and snapshot it, through sproutd (the daemon boots it;
 * progress is polled and shown) or, with -o FILE, directly in this process. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cli_opts.h"
#include "source.h"
#include "sprout/image.h"
#include "client.h"
#include "commands.h"
#include "sprout/clock.h"
#include "sprout/clone.h"

#define DEFAULT_PREWARM_TIMEOUT_S 300

static void direct_usage(FILE *f)
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

static const struct cli_verb direct_verb = {
    .name = "prewarm", .usage = direct_usage, .operands = CLI_OPERANDS_ANY};

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

static int prewarm_file(struct sprout_kvm *kvm, const char *image, const char *out,
                        const char *append, bool console, bool json, long timeout_s, long level);

static int prewarm_direct(int argc, char **argv)
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
        if (cli_parse_opts(&direct_verb, opts, argc, argv, &status) < 0)
                return status;
        if (optind != argc - 1 || !out)
                return cli_usage_error(&direct_verb, "expected one IMAGE and -o FILE");

        struct sprout_err err = {0};
        struct sprout_kvm *kvm = NULL;
        if (sprout_kvm_open(&kvm, &err) < 0) {
                fprintf(stderr, "sprout prewarm: %s\n", err.msg);
                return 1;
        }
        /* A function directory is built into a scratch directory first, removed after. */
        char scratch[] = "/tmp/sprout-prewarm-XXXXXX", image[PATH_MAX];
        if (!mkdtemp(scratch)) {
                fprintf(stderr, "sprout prewarm: a scratch directory: %m\n");
                sprout_kvm_close(kvm);
                return 1;
        }
        int rc = cli_image_from("prewarm", argv[optind], scratch, image, sizeof(image));
        if (rc == 0)
                rc = prewarm_file(kvm, image, out, append, console, json, timeout_s, level);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
        if (system(cmd) != 0)
                fprintf(stderr, "sprout prewarm: could not remove %s\n", scratch);
        sprout_kvm_close(kvm);
        return rc;
}

static int prewarm_file(struct sprout_kvm *kvm, const char *image, const char *out,
                        const char *append, bool console, bool json, long timeout_s, long level)
{
        struct sprout_err err = {0};
        bool tty = isatty(STDERR_FILENO) && !console;
        struct sprout_prewarm_opts po = {
            .image = image,
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
                       "\"file_bytes\":%llu,\"ratio\":%.2f,\"ws_read_pages\":%llu,"
                       "\"ws_write_pages\":%llu,\"ws_ms\":%.3f}\n",
                       out, id, sprout_host_kind_name(sprout_kvm_host_kind(kvm)), st.boot_s,
                       st.capture_ms, st.write.seconds, (unsigned long long)st.write.ram_size,
                       (unsigned long long)st.write.nonzero_bytes,
                       (unsigned long long)st.write.file_size, ratio,
                       (unsigned long long)st.ws_read_pages, (unsigned long long)st.ws_write_pages,
                       st.ws_ms);
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
        if (!json && st.ws_read_pages + st.ws_write_pages)
                printf("  working set     %llu pages read, %llu written (trial clone %.1f ms)\n",
                       (unsigned long long)st.ws_read_pages, (unsigned long long)st.ws_write_pages,
                       st.ws_ms);
        return 0;
}

static void daemon_usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout prewarm IMAGE [options]          (through sproutd)\n"
            "       sprout prewarm IMAGE -o FILE [options]  (direct, no daemon: see -o --help)\n\n"
            "Asks sproutd to boot IMAGE to READY and snapshot it; shows progress while it does\n"
            "and prints the new snapshot's id. IMAGE is a built image, or a Python function\n"
            "directory (handler.py), which is built first (sprout build).\n\n"
            "options:\n"
            "  --timeout SEC   give up if READY has not come after SEC seconds\n"
            "  --level N       zstd level, -7..19\n"
            "  --append ARGS   add ARGS to the guest kernel command line\n"
            "  --no-wait       print the id as soon as the daemon accepts the job\n"
            "  --images DIR    where a function directory IMAGE is built (beneath one of\n"
            "                  sproutd's image roots; default: the first you may write)\n"
            "  --socket PATH   sproutd's socket (default $SPROUT_SOCKET or the state dir's)\n"
            "  --json          print the snapshot as JSON\n"
            "  -h, --help      show this help\n"
            "Exit status: 0 ready, 1 failed, 2 usage error, 3 sproutd unreachable.\n");
}

/* Whether argv asks for direct mode: -o/--output names the snapshot file to write. */
static bool wants_direct(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (!strncmp(argv[i], "-o", 2) || !strcmp(argv[i], "--output") ||
                    !strncmp(argv[i], "--output=", 9))
                        return true;
                /* The value of an option is not an option, even if it starts with -o. */
                if (!strcmp(argv[i], "--append") || !strcmp(argv[i], "--timeout") ||
                    !strcmp(argv[i], "--level") || !strcmp(argv[i], "--socket"))
                        i++;
        }
        return false;
}

static const struct cli_verb daemon_verb = {
    .name = "prewarm", .usage = daemon_usage, .operands = 1, .operands_msg = "expected one IMAGE"};

static void deploy_usage(FILE *f)
{
        fprintf(f,
                "usage: sprout deploy DIR [options]\n\n"
                "Builds the Python function directory DIR (handler.py, optionally\n"
                "function.json: docs/python.md) into an image beneath one of sproutd's image\n"
                "roots, has sproutd prewarm it, and prints the snapshot id. Then:\n"
                "  sprout invoke --snapshot ID '{...}'\n\n"
                "options: as for sprout prewarm (through sproutd): --images DIR, --timeout SEC,\n"
                "--level N, --append ARGS, --no-wait, --socket PATH, --json, -h/--help.\n"
                "Exit status: 0 ready, 1 failed, 2 usage error, 3 sproutd unreachable.\n");
}

static const struct cli_verb deploy_verb = {
    .name = "deploy", .usage = deploy_usage, .operands = 1, .operands_msg = "expected one DIR"};

/* The job for sproutd; only what the command line set, the daemon has its own defaults. */
static json_t *job_body(const char *image, long timeout_s, bool has_level, long level,
                        const char *append)
{
        json_t *req = json_pack("{s:s}", "image", image);
        if (timeout_s)
                json_object_set_new(req, "timeout_s", json_integer(timeout_s));
        if (has_level)
                json_object_set_new(req, "zstd_level", json_integer(level));
        if (append)
                json_object_set_new(req, "cmdline", json_string(append));
        return req;
}

/* Polls the snapshot until it is ready or failed, showing its progress on stderr. Returns 0, or
 * the exit code of a failed poll. */
static int wait_job(struct client *cl, const char *id, bool json, double t0, struct client_resp *r)
{
        char path[128], last[32] = "";
        bool tty = isatty(STDERR_FILENO) && !json;
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        for (;;) {
                const char *st = snapshot_status(r->json);
                if (!strcmp(st, "ready") || !strcmp(st, "failed"))
                        break;
                double pr = json_real_value(json_object_get(r->json, "progress"));
                if (tty && pr > 0)
                        fprintf(stderr, "\r\033[Kprewarm %s: %s %.0f s (%d%%)", id, st,
                                sprout_mono_s() - t0, (int)(pr * 100));
                else if (tty)
                        fprintf(stderr, "\r\033[Kprewarm %s: %s %.0f s", id, st,
                                sprout_mono_s() - t0);
                else if (!json && strcmp(st, last))
                        fprintf(stderr, "prewarm %s: %s\n", id, st);
                snprintf(last, sizeof(last), "%s", st);
                struct timespec ts = {0, 250000000};
                nanosleep(&ts, NULL);
                client_resp_free(r);
                int rc = client_get_json(cl, "prewarm", path, r);
                if (rc) {
                        if (tty)
                                fprintf(stderr, "\n");
                        return rc;
                }
        }
        if (tty)
                fprintf(stderr, "\r\033[K");
        return 0;
}

/* Says how the job ended; returns the exit code. */
static int report_job(const char *id, json_t *snap, bool json, bool nowait, double t0)
{
        int rc = 0;
        if (!strcmp(snapshot_status(snap), "failed")) {
                const char *why = json_string_value(json_object_get(snap, "error"));
                const char *tail = json_string_value(json_object_get(snap, "console_tail"));
                fprintf(stderr, "sprout prewarm: %s: %s\n", id, why ? why : "failed");
                if (tail && *tail)
                        fprintf(stderr, "last console lines:\n%s\n", tail);
                rc = CLI_EXIT_FAIL;
        }
        if (json) {
                print_json(snap, JSON_INDENT(2));
        } else if (!rc) {
                if (!nowait)
                        fprintf(
                            stderr,
                            "prewarm %s: ready in %.1f s (boot %.1f s, %.1fx smaller than RAM)\n",
                            id, sprout_mono_s() - t0,
                            json_real_value(json_object_get(snap, "boot_s")),
                            json_real_value(json_object_get(snap, "ratio")));
                printf("%s\n", id);
        }
        return rc;
}

/* The first of the daemon's image roots this user may write to (GET /v1/health), into root. */
static int writable_image_root(const char *verb, struct client *cl, char *root, size_t len)
{
        struct client_resp r;
        int rc = client_get_json(cl, verb, "/v1/health", &r);
        if (rc)
                return rc;
        json_t *roots = json_object_get(r.json, "image_roots"), *v;
        size_t i;
        rc = CLI_EXIT_FAIL;
        json_array_foreach(roots, i, v)
        {
                const char *p = json_string_value(v);
                if (p && access(p, W_OK) == 0) {
                        snprintf(root, len, "%s", p);
                        rc = 0;
                        break;
                }
        }
        if (rc)
                fprintf(stderr,
                        "sprout %s: none of sproutd's image roots is writable by you: "
                        "build the function with sprout build DIR -o ROOT/NAME beneath "
                        "one of them, or name one with --images DIR\n",
                        verb);
        client_resp_free(&r);
        return rc;
}

static int prewarm_daemon(const struct cli_verb *vb, int argc, char **argv)
{
        const char *socket = NULL, *append = NULL, *images = NULL, *verb = vb->name;
        long timeout_s = 0, level = 0;
        bool json = false, nowait = false, has_level = false;
        const struct cli_opt opts[] = {
            CLI_LONG("timeout", 0, &timeout_s, 1, 86400),
            {.name = "level",
             .kind = CLI_OPT_LONG,
             .dest = &level,
             .min = -7,
             .max = 19,
             .seen = &has_level},
            CLI_STRING("append", 0, &append),
            CLI_FLAG("no-wait", 0, &nowait),
            CLI_STRING("images", 0, &images),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(vb, opts, argc, argv, &status) < 0)
                return status;
        if (vb == &deploy_verb && !sprout_is_function_dir(argv[optind]))
                return cli_usage_error(vb,
                                       "%s is not a function directory (a handler.py, and "
                                       "no image.json)",
                                       argv[optind]);
        struct client cl;
        int rc = client_open(&cl, socket);
        if (rc)
                return rc;
        /* The daemon has its own working directory: send an absolute path. A function directory
         * is built first, as this user, beneath one of the daemon's image roots. */
        struct client_resp r = {0};
        char image[PATH_MAX], root[PATH_MAX];
        if (sprout_is_function_dir(argv[optind]) && !images &&
            (rc = writable_image_root(verb, &cl, root, sizeof(root))))
                goto out;
        rc = cli_image_from(verb, argv[optind], images ? images : root, image, sizeof(image));
        if (rc)
                goto out;
        json_t *req = job_body(image, timeout_s, has_level, level, append);
        int e = client_post_json(&cl, "/v1/snapshots", req, 30000, &r);
        json_decref(req);
        if (e < 0 || r.status != 202 || !r.json) {
                rc = client_fail(verb, &cl, e, &r);
                if (rc == CLI_EXIT_UNREACHABLE)
                        fprintf(stderr, "sprout prewarm: (without a daemon, write the snapshot "
                                        "file directly: sprout prewarm IMAGE -o FILE)\n");
                goto out;
        }
        char id[64];
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "id")));
        double t0 = sprout_mono_s();
        if (!nowait && (rc = wait_job(&cl, id, json, t0, &r)))
                goto out;
        rc = report_job(id, r.json, json, nowait, t0);
out:
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}

int sprout_cmd_prewarm(int argc, char **argv)
{
        if (wants_direct(argc, argv))
                return prewarm_direct(argc, argv);
        return prewarm_daemon(&daemon_verb, argc, argv);
}

int sprout_cmd_deploy(int argc, char **argv)
{
        return prewarm_daemon(&deploy_verb, argc, argv);
}
