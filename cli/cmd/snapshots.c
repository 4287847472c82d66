/* sprout snapshots: sproutd's snapshot table. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"

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
                print_json(arr, JSON_INDENT(2));
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
                               json_string_value(json_object_get(s, "id")), snapshot_status(s),
                               img && *img ? img : "-", ram, file, ratio,
                               (long long)json_integer_value(json_object_get(s, "clones")),
                               json_string_value(json_object_get(s, "created")));
                }
        }
        client_resp_free(&r);
        client_close(&cl);
        return 0;
}
