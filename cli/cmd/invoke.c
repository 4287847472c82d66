/* sprout invoke: a request to a clone, or a one-shot call to a snapshot, through sproutd. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"

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
               "  --log             also print what the call logged (its handler's output), to\n"
               "                    stderr after the response (with --json: \"log\")\n"
               "  --timeout-ms MS   the invocation's time limit\n"
               "  --socket PATH     sproutd's socket\n"
               "  --json            print {\"clone\",\"invoke_ms\",\"response\"}\n"
               "Exit status: 0 ok, 1 failed, 2 usage error, 3 sproutd unreachable.\n");
}

static const struct cli_verb invoke_verb = {
    .name = "invoke", .usage = invoke_usage, .operands = CLI_OPERANDS_ANY};

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

/* --log without --json: the response on stdout as it came, the call's log on stderr. */
static void print_log_envelope(json_t *o)
{
        json_t *resp = json_object_get(o, "response");
        const char *text = json_string_value(json_object_get(o, "response_text"));
        if (resp)
                print_json(resp, JSON_COMPACT | JSON_ENCODE_ANY);
        else
                printf("%s\n", text ? text : "");
        const char *log = json_string_value(json_object_get(o, "log"));
        if (json_is_true(json_object_get(o, "log_lost")))
                fputs("[sprout] the start of this call's log is not kept\n", stderr);
        if (log && *log)
                fputs(log, stderr);
        if (log && *log && log[strlen(log) - 1] != '\n')
                fputc('\n', stderr);
}

int sprout_cmd_invoke(int argc, char **argv)
{
        const char *socket = NULL, *snap = NULL;
        long timeout_ms = 0;
        bool json = false, reuse = false, log = false;
        const struct cli_opt opts[] = {
            CLI_STRING("snapshot", 0, &snap),
            CLI_FLAG("reuse", 0, &reuse),
            CLI_FLAG("log", 0, &log),
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
        char path[256], query[96] = "", tmo[32] = "";
        if (timeout_ms)
                snprintf(tmo, sizeof(tmo), "&timeout_ms=%ld", timeout_ms);
        snprintf(query, sizeof(query), "%s%s%s", reuse ? "&reuse=true" : "", log ? "&log=true" : "",
                 tmo);
        if (query[0])
                query[0] = '?';
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
        } else if (log && !json_is_object(r.json)) {
                fprintf(stderr, "sprout invoke: sproutd answered no log envelope\n");
                rc = CLI_EXIT_FAIL;
        } else if (json) {
                json_t *o = json_pack("{s:s, s:f}", "clone", r.clone_id, "invoke_ms", r.invoke_ms);
                if (log)
                        json_object_update(o, r.json); /* response (or response_text), log */
                else
                        json_object_set_new(o, "response",
                                            r.json ? json_incref(r.json)
                                                   : json_stringn(r.body, r.len));
                print_json(o, JSON_COMPACT);
                json_decref(o);
        } else if (log) {
                print_log_envelope(r.json);
        } else {
                fwrite(r.body, 1, r.len, stdout);
                if (!r.len || r.body[r.len - 1] != '\n')
                        putchar('\n');
        }
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}
