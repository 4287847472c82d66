/* sprout logs: print a clone's log (its console and its handler's output), through sproutd. */
#include <stdio.h>
#include <string.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"

static const struct cli_verb logs_verb = {
    .name = "logs",
    .operands = 1,
    .operands_msg = "expected one CLONE_ID",
    .usage_text = "usage: sprout logs CLONE_ID [--socket PATH]\n\n"
                  "Prints the clone's log: what its guest wrote to the console and its handler's\n"
                  "output, oldest first (GET /v1/clones/ID/log).\n",
};

int sprout_cmd_logs(int argc, char **argv)
{
        const char *socket = NULL;
        const struct cli_opt opts[] = {
            CLI_SOCKET(&socket),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&logs_verb, opts, argc, argv, &status) < 0)
                return status;
        const char *id = argv[optind];
        if (strchr(id, '/') || strchr(id, '?') || strlen(id) > 64)
                return cli_usage_error(&logs_verb, "'%s' is not a clone id", id);
        struct client cl;
        int rc = client_open(&cl, socket);
        if (rc)
                return rc;
        char path[128];
        snprintf(path, sizeof(path), "/v1/clones/%s/log", id);
        struct client_resp r;
        int e = client_call(&cl, "GET", path, NULL, 0, 60000, &r);
        if (e < 0 || r.status != 200)
                rc = client_fail("logs", &cl, e, &r);
        else
                fwrite(r.body, 1, r.len, stdout);
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}
