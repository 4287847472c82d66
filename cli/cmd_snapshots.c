/* sprout prewarm IMAGE (daemon mode: the daemon boots it; progress is polled and shown) and
 * sprout snapshots (the daemon's snapshot table). `sprout prewarm IMAGE -o FILE` stays direct. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"
#include "sprout/clock.h"

static void prewarm_usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout prewarm IMAGE [options]          (through sproutd)\n"
            "       sprout prewarm IMAGE -o FILE [options]  (direct, no daemon: see -o --help)\n\n"
            "Asks sproutd to boot IMAGE to READY and snapshot it; shows progress while it does\n"
            "and prints the new snapshot's id.\n\n"
            "options:\n"
            "  --timeout SEC   give up if READY has not come after SEC seconds\n"
            "  --level N       zstd level, -7..19\n"
            "  --append ARGS   add ARGS to the guest kernel command line\n"
            "  --no-wait       print the id as soon as the daemon accepts the job\n"
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

static const char *status_of(json_t *snap)
{
        const char *s = json_string_value(json_object_get(snap, "status"));
        return s ? s : "?";
}

static const struct cli_verb prewarm_api_verb = {.name = "prewarm", .usage = prewarm_usage};

static int prewarm_api(int argc, char **argv)
{
        const char *socket = NULL, *append = NULL;
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
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&prewarm_api_verb, opts, argc, argv, &status) < 0)
                return status;
        if (optind != argc - 1)
                return cli_usage_error(&prewarm_api_verb, "expected one IMAGE");
        /* The daemon has its own working directory: send an absolute path. */
        char image[PATH_MAX];
        if (!realpath(argv[optind], image)) {
                fprintf(stderr, "sprout prewarm: %s: %m\n", argv[optind]);
                return CLI_EXIT_FAIL;
        }
        json_t *req = json_pack("{s:s}", "image", image);
        if (timeout_s)
                json_object_set_new(req, "timeout_s", json_integer(timeout_s));
        if (has_level)
                json_object_set_new(req, "zstd_level", json_integer(level));
        if (append)
                json_object_set_new(req, "cmdline", json_string(append));
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);

        struct client cl;
        int rc = client_open(&cl, socket);
        if (rc) {
                free(body);
                return rc;
        }
        struct client_resp r;
        int e = client_call(&cl, "POST", "/v1/snapshots", body, strlen(body), 30000, &r);
        free(body);
        if (e < 0 || r.status != 202 || !r.json) {
                rc = client_fail("prewarm", &cl, e, &r);
                if (rc == CLI_EXIT_UNREACHABLE)
                        fprintf(stderr, "sprout prewarm: (without a daemon, write the snapshot "
                                        "file directly: sprout prewarm IMAGE -o FILE)\n");
                goto out;
        }
        char id[64], path[128];
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "id")));
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        bool tty = isatty(STDERR_FILENO) && !json;
        char last[32] = "";
        double t0 = sprout_mono_s();
        while (!nowait) {
                const char *st = status_of(r.json);
                if (!strcmp(st, "ready") || !strcmp(st, "failed"))
                        break;
                double pr = json_real_value(json_object_get(r.json, "progress"));
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
                client_resp_free(&r);
                if ((rc = client_get_json(&cl, "prewarm", path, &r)))
                        goto out_tty;
        }
        if (tty)
                fprintf(stderr, "\r\033[K");
        if (!strcmp(status_of(r.json), "failed")) {
                const char *why = json_string_value(json_object_get(r.json, "error"));
                const char *tail = json_string_value(json_object_get(r.json, "console_tail"));
                fprintf(stderr, "sprout prewarm: %s: %s\n", id, why ? why : "failed");
                if (tail && *tail)
                        fprintf(stderr, "last console lines:\n%s\n", tail);
                rc = CLI_EXIT_FAIL;
        }
        if (json) {
                char *s = json_dumps(r.json, JSON_INDENT(2));
                printf("%s\n", s);
                free(s);
        } else if (!rc) {
                if (!nowait)
                        fprintf(
                            stderr,
                            "prewarm %s: ready in %.1f s (boot %.1f s, %.1fx smaller than RAM)\n",
                            id, sprout_mono_s() - t0,
                            json_real_value(json_object_get(r.json, "boot_s")),
                            json_real_value(json_object_get(r.json, "ratio")));
                printf("%s\n", id);
        }
        goto out;
out_tty:
        if (tty)
                fprintf(stderr, "\n");
out:
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}

int sprout_cmd_prewarm_any(int argc, char **argv)
{
        if (wants_direct(argc, argv))
                return sprout_cmd_prewarm(argc, argv);
        return prewarm_api(argc, argv);
}

static const struct cli_verb snapshots_verb = {
    .name = "snapshots",
    .usage_text =
        "usage: sprout snapshots [--json] [--socket PATH]\n\n"
        "Lists sproutd's snapshots: id, status, image, guest RAM, file size, compression\n"
        "ratio, live clones and creation time.\n",
};

int sprout_cmd_snapshots(int argc, char **argv)
{
        const char *socket = NULL;
        bool json = false;
        const struct cli_opt opts[] = {CLI_SOCKET(&socket), CLI_JSON(&json), CLI_END};
        int rc;
        if (cli_parse_opts(&snapshots_verb, opts, argc, argv, &rc) < 0)
                return rc;
        if (optind != argc)
                return cli_usage_error(&snapshots_verb, NULL);
        struct client cl;
        struct client_resp r;
        if ((rc = client_open(&cl, socket)))
                return rc;
        if ((rc = client_get_json(&cl, "snapshots", "/v1/snapshots", &r))) {
                client_close(&cl);
                return rc;
        }
        json_t *arr = json_object_get(r.json, "snapshots");
        if (json) {
                char *s = json_dumps(arr, JSON_INDENT(2));
                printf("%s\n", s);
                free(s);
        } else {
                printf("%-36s  %-12s  %-12s  %9s  %9s  %6s  %6s  %s\n", "ID", "STATUS", "IMAGE",
                       "RAM", "FILE", "RATIO", "CLONES", "CREATED");
                size_t i;
                json_t *s;
                json_array_foreach(arr, i, s)
                {
                        char ram[32] = "-", file[32] = "-", ratio[16] = "-";
                        if (json_object_get(s, "ram_bytes")) {
                                fmt_bytes(
                                    ram, sizeof(ram),
                                    (double)json_integer_value(json_object_get(s, "ram_bytes")));
                                fmt_bytes(
                                    file, sizeof(file),
                                    (double)json_integer_value(json_object_get(s, "file_bytes")));
                                snprintf(ratio, sizeof(ratio), "%.1fx",
                                         json_real_value(json_object_get(s, "ratio")));
                        }
                        const char *img = json_string_value(json_object_get(s, "image"));
                        printf("%-36s  %-12s  %-12.12s  %9s  %9s  %6s  %6lld  %.19s\n",
                               json_string_value(json_object_get(s, "id")), status_of(s),
                               img && *img ? img : "-", ram, file, ratio,
                               (long long)json_integer_value(json_object_get(s, "clones")),
                               json_string_value(json_object_get(s, "created")));
                }
        }
        client_resp_free(&r);
        client_close(&cl);
        return 0;
}

static const struct cli_verb clones_verb = {
    .name = "clones",
    .usage_text = "usage: sprout clones [--snapshot ID] [--json] [--socket PATH]\n\n"
                  "Lists sproutd's clones: id, snapshot, state, origin (api, or pool for one-shot\n"
                  "reuse), age, invocations served and private memory.\n",
};

int sprout_cmd_clones(int argc, char **argv)
{
        const char *socket = NULL, *snap = NULL;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_STRING("snapshot", 0, &snap),
            CLI_END,
        };
        int rc;
        if (cli_parse_opts(&clones_verb, opts, argc, argv, &rc) < 0)
                return rc;
        if (optind != argc)
                return cli_usage_error(&clones_verb, NULL);
        struct client cl;
        struct client_resp r;
        char path[256];
        snprintf(path, sizeof(path), "/v1/clones%s%s", snap ? "?snapshot=" : "", snap ? snap : "");
        if ((rc = client_open(&cl, socket)))
                return rc;
        if ((rc = client_get_json(&cl, "clones", path, &r))) {
                client_close(&cl);
                return rc;
        }
        json_t *arr = json_object_get(r.json, "clones");
        if (json) {
                char *s = json_dumps(arr, JSON_INDENT(2));
                printf("%s\n", s);
                free(s);
        } else {
                printf("%-36s  %-8s  %-5s  %-6s  %7s  %8s  %10s\n", "ID", "SNAPSHOT", "STATE",
                       "ORIGIN", "AGE", "INVOKED", "PRIVATE");
                size_t i;
                json_t *s;
                json_array_foreach(arr, i, s)
                {
                        char age[32], priv[32];
                        fmt_age(age, sizeof(age), json_real_value(json_object_get(s, "age_s")));
                        fmt_bytes(priv, sizeof(priv),
                                  (double)json_integer_value(json_object_get(s, "private_bytes")));
                        printf("%-36s  %-8.8s  %-5s  %-6s  %7s  %8lld  %10s\n",
                               json_string_value(json_object_get(s, "id")),
                               json_string_value(json_object_get(s, "snapshot")),
                               json_string_value(json_object_get(s, "state")),
                               json_string_value(json_object_get(s, "origin")), age,
                               (long long)json_integer_value(json_object_get(s, "invocations")),
                               priv);
                }
        }
        client_resp_free(&r);
        client_close(&cl);
        return 0;
}
