/* sprout clones: sproutd's clone table. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"

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
                print_json(arr, JSON_INDENT(2));
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
