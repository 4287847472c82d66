/* sprout clone SNAPSHOT_ID [-n N] (through sproutd; --direct keeps the in-process mode), sprout
 * invoke (a clone, or one-shot on a snapshot), sprout rm, and sprout daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"
#include "sprout/daemon.h"

static void clone_usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout clone SNAPSHOT_ID [-n N] [--json] [--socket PATH]  (through sproutd)\n"
            "       sprout clone --direct SNAPSHOT_FILE [options]            (no daemon)\n\n"
            "Asks sproutd for N clones (default 1) of the snapshot and prints their ids, one\n"
            "per line. A SNAPSHOT that is not a snapshot id is a file: direct mode, as with\n"
            "--direct ('sprout clone --direct --help' shows its options).\n"
            "Exit status: 0 ok, 1 refused or failed, 2 usage error, 3 sproutd unreachable.\n");
}

static const struct cli_verb clone_api_verb = {.name = "clone", .usage = clone_usage};

static int clone_api(int argc, char **argv)
{
        const char *socket = NULL;
        long n = 1;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_LONG_AS("count", 'n', &n, 1, 256, "-n"),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&clone_api_verb, opts, argc, argv, &status) < 0)
                return status;
        if (optind != argc - 1)
                return cli_usage_error(&clone_api_verb, "expected one SNAPSHOT_ID");
        json_t *req = json_pack("{s:s, s:i}", "snapshot", argv[optind], "count", (int)n);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        struct client cl;
        struct client_resp r;
        int rc = client_open(&cl, socket);
        if (rc) {
                free(body);
                return rc;
        }
        int e = client_call(&cl, "POST", "/v1/clones", body, strlen(body), 120000, &r);
        free(body);
        if (e < 0 || r.status != 201 || !r.json) {
                rc = client_fail("clone", &cl, e, &r);
        } else {
                json_t *arr = json_object_get(r.json, "clones"), *x;
                size_t i;
                if (json) {
                        char *s = json_dumps(arr, JSON_INDENT(2));
                        printf("%s\n", s);
                        free(s);
                } else {
                        json_array_foreach(arr, i, x)
                            printf("%s\n", json_string_value(json_object_get(x, "id")));
                }
        }
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}

static bool is_snapshot_id(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

/* Direct mode when asked with --direct, or when the snapshot named is not a daemon snapshot id
 * (then it is a file: `sprout clone FILE` kept working when the daemon mode came). */
static bool wants_direct(int argc, char **argv)
{
        static const char *const with_value[] = {"-n",         "--count", "--socket",    "--invoke",
                                                 "--requests", "--pool",  "--timeout-ms"};
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--direct"))
                        return true;
                if (argv[i][0] == '-') {
                        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
                                if (!strcmp(argv[i], with_value[k]))
                                        i++;
                        continue;
                }
                return !is_snapshot_id(argv[i]);
        }
        return false;
}

int sprout_cmd_clone_any(int argc, char **argv)
{
        if (!wants_direct(argc, argv))
                return clone_api(argc, argv);
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--direct"))
                        continue;
                /* Drop the flag and run the direct mode with its own options, unchanged. */
                char **v = calloc((size_t)argc, sizeof(*v));
                if (!v)
                        return CLI_EXIT_FAIL;
                int n = 0;
                for (int k = 0; k < argc; k++)
                        if (k != i)
                                v[n++] = argv[k];
                int rc = sprout_cmd_clone(n, v);
                free(v);
                return rc;
        }
        return sprout_cmd_clone(argc, argv);
}

static void invoke_usage(FILE *f)
{
        fprintf(
            f, "usage: sprout invoke CLONE_ID [JSON] [options]\n"
               "       sprout invoke --snapshot ID [--reuse] [JSON] [options]\n\n"
               "Sends JSON (default {}; '-' reads it from stdin) to a clone, or as a one-shot\n"
               "call to a snapshot (a fresh clone; with --reuse an idle pooled one may serve it),\n"
               "and prints the response.\n\n"
               "options:\n"
               "  --snapshot ID     one-shot call on this snapshot\n"
               "  --reuse           let an idle pooled clone serve the one-shot call\n"
               "  --timeout-ms MS   the invocation's time limit\n"
               "  --socket PATH     sproutd's socket\n"
               "  --json            print {\"clone\",\"invoke_ms\",\"response\"}\n"
               "Exit status: 0 ok, 1 failed, 2 usage error, 3 sproutd unreachable.\n");
}

static const struct cli_verb invoke_verb = {.name = "invoke", .usage = invoke_usage};

static char *read_stdin(size_t *len)
{
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        while (buf) {
                size_t got = fread(buf + n, 1, cap - n, stdin);
                n += got;
                if (got == 0)
                        break;
                if (n == cap) {
                        char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
                        if (!nb) {
                                free(buf);
                                return NULL;
                        }
                        buf = nb;
                        cap *= 2;
                }
        }
        *len = n;
        return buf;
}

int sprout_cmd_invoke(int argc, char **argv)
{
        const char *socket = NULL, *snap = NULL;
        long timeout_ms = 0;
        bool json = false, reuse = false;
        const struct cli_opt opts[] = {
            CLI_STRING("snapshot", 0, &snap),
            CLI_FLAG("reuse", 0, &reuse),
            CLI_LONG("timeout-ms", 0, &timeout_ms, 1, 3600000),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&invoke_verb, opts, argc, argv, &status) < 0)
                return status;
        int left = argc - optind;
        if ((snap && left > 1) || (!snap && (left < 1 || left > 2)) || (reuse && !snap))
                return cli_usage_error(&invoke_verb, NULL);
        const char *target = snap ? snap : argv[optind];
        const char *arg = left == (snap ? 1 : 2) ? argv[argc - 1] : "{}";
        size_t len = strlen(arg);
        char *stdin_body = NULL;
        if (!strcmp(arg, "-")) {
                stdin_body = read_stdin(&len);
                if (!stdin_body) {
                        fprintf(stderr, "sprout invoke: reading stdin failed\n");
                        return CLI_EXIT_FAIL;
                }
                arg = stdin_body;
        }
        char path[256], query[64] = "";
        if (timeout_ms)
                snprintf(query, sizeof(query), "?timeout_ms=%ld%s", timeout_ms,
                         reuse ? "&reuse=true" : "");
        else if (reuse)
                snprintf(query, sizeof(query), "?reuse=true");
        int n = snprintf(path, sizeof(path), "/v1/%s/%s/invoke%s", snap ? "snapshots" : "clones",
                         target, query);
        if (n >= (int)sizeof(path) || strchr(target, '/') || strchr(target, '?')) {
                fprintf(stderr, "sprout invoke: '%s' is not an id\n", target);
                free(stdin_body);
                return CLI_EXIT_USAGE;
        }
        struct client cl;
        struct client_resp r;
        int rc = client_open(&cl, socket);
        if (rc) {
                free(stdin_body);
                return rc;
        }
        /* The daemon enforces the limit; ours only guards against a daemon that never answers. */
        long wait_ms = (timeout_ms ? timeout_ms : 300000) + 30000;
        int e = client_call(&cl, "POST", path, arg, len, wait_ms, &r);
        free(stdin_body);
        if (e < 0 || r.status != 200) {
                rc = client_fail("invoke", &cl, e, &r);
        } else if (json) {
                json_t *o = json_pack("{s:s, s:f}", "clone", r.clone_id, "invoke_ms", r.invoke_ms);
                json_object_set(o, "response", r.json ? r.json : json_stringn(r.body, r.len));
                char *s = json_dumps(o, JSON_COMPACT);
                printf("%s\n", s);
                free(s);
                json_decref(o);
        } else {
                fwrite(r.body, 1, r.len, stdout);
                if (!r.len || r.body[r.len - 1] != '\n')
                        putchar('\n');
        }
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}

static const struct cli_verb rm_verb = {
    .name = "rm",
    .usage_text = "usage: sprout rm snapshot ID [--force] [--socket PATH]\n"
                  "       sprout rm clone ID... [--socket PATH]\n\n"
                  "Deletes a snapshot (with --force, its clones too) or destroys clones.\n",
};

int sprout_cmd_rm(int argc, char **argv)
{
        const char *socket = NULL;
        bool force = false;
        const struct cli_opt opts[] = {
            CLI_FLAG("force", 'f', &force),
            CLI_SOCKET(&socket),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&rm_verb, opts, argc, argv, &status) < 0)
                return status;
        bool snap = optind < argc && !strcmp(argv[optind], "snapshot");
        bool clone = optind < argc && !strcmp(argv[optind], "clone");
        if ((!snap && !clone) || argc - optind < 2 || (snap && argc - optind != 2) ||
            (clone && force))
                return cli_usage_error(&rm_verb, NULL);
        struct client cl;
        int rc = client_open(&cl, socket);
        if (rc)
                return rc;
        for (int i = optind + 1; i < argc; i++) {
                char path[256];
                struct client_resp r;
                if (strchr(argv[i], '/') || strchr(argv[i], '?') || strlen(argv[i]) > 64) {
                        fprintf(stderr, "sprout rm: '%s' is not an id\n", argv[i]);
                        rc = CLI_EXIT_USAGE;
                        break;
                }
                snprintf(path, sizeof(path), "/v1/%s/%s%s", snap ? "snapshots" : "clones", argv[i],
                         force ? "?force=true" : "");
                int e = client_call(&cl, "DELETE", path, NULL, 0, 60000, &r);
                if (e < 0 || r.status != 200) {
                        rc = client_fail("rm", &cl, e, &r);
                        client_resp_free(&r);
                        if (e < 0)
                                break;
                        continue;
                }
                json_int_t n = json_integer_value(json_object_get(r.json, "clones_destroyed"));
                if (n)
                        printf("%s (and %lld clones)\n", argv[i], (long long)n);
                else
                        printf("%s\n", argv[i]);
                client_resp_free(&r);
        }
        client_close(&cl);
        return rc;
}

int sprout_cmd_daemon(int argc, char **argv)
{
        char name[] = "sprout daemon"; /* for its usage and error messages */
        argv[0] = name;
        return sproutd_main(argc, argv);
}
