/* sprout rm: delete a snapshot (--force: with its clones) or destroy clones, through sproutd. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"

static const struct cli_verb rm_verb = {
    .name = "rm",
    .operands = CLI_OPERANDS_ANY,
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
