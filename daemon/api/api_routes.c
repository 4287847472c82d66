/* The route table: every endpoint sproutd serves, in one array. --list-routes prints it and a test
 * compares it with docs/openapi.yaml, so the documentation cannot drift from the code. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sprout/abi.h"
#include "api.h"

const struct api_route api_routes[] = {
    {"GET", "/v1/health", "", OP_HEALTH, 0, false, api_parse_none, api_exec_health,
     "liveness, version and counts"},
    {"GET", "/metrics", "", OP_METRICS, 0, false, api_parse_none, api_exec_metrics,
     "Prometheus metrics"},
    {"GET", "/v1/snapshots", "", OP_SNAP_LIST, 0, false, api_parse_none, api_exec_snap_list,
     "list snapshots"},
    {"POST", "/v1/snapshots", "", OP_SNAP_CREATE, API_BODY_MAX, true, api_parse_snap_create,
     api_exec_snap_create, "prewarm an image into a new snapshot (asynchronous)"},
    {"GET", "/v1/snapshots/{id}", "", OP_SNAP_SHOW, 0, false, api_parse_none, api_exec_snap_show,
     "show a snapshot"},
    {"DELETE", "/v1/snapshots/{id}", "force", OP_SNAP_DELETE, 0, false, api_parse_snap_delete,
     api_exec_snap_delete, "delete a snapshot (force: and its clones)"},
    {"POST", "/v1/snapshots/{id}/invoke", "log reuse timeout_ms", OP_SNAP_INVOKE,
     SPROUT_MB_REQ_SIZE, true, api_parse_invoke, api_exec_snap_invoke,
     "one-shot: take a clone of the snapshot, invoke it, return the response"},
    {"GET", "/v1/clones", "snapshot", OP_CLONE_LIST, 0, true, api_parse_clone_list,
     api_exec_clone_list, "list clones"},
    {"POST", "/v1/clones", "", OP_CLONE_CREATE, API_BODY_MAX, true, api_parse_clone_create,
     api_exec_clone_create, "create clones of a snapshot"},
    {"GET", "/v1/clones/{id}", "", OP_CLONE_SHOW, 0, false, api_parse_none, api_exec_clone_show,
     "show a clone"},
    {"DELETE", "/v1/clones/{id}", "", OP_CLONE_DELETE, 0, false, api_parse_none,
     api_exec_clone_delete, "destroy a clone"},
    {"POST", "/v1/clones/{id}/invoke", "log timeout_ms", OP_CLONE_INVOKE, SPROUT_MB_REQ_SIZE, true,
     api_parse_invoke, api_exec_clone_invoke, "invoke a clone"},
    {"GET", "/v1/clones/{id}/log", "", OP_CLONE_LOG, 0, true, api_parse_none, api_exec_clone_log,
     "a clone's log: its console and its handler's output"},
};
const unsigned api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

bool api_is_id(const char *s, size_t n)
{
        if (n != 36)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-'
                         : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}

/* Whether url matches pattern; a "{id}" segment matches any one non-empty segment (the parser
 * checks its form later, to answer 400 rather than 404 for a malformed id). */
static bool path_match(const char *pattern, const char *url, const char **seg, size_t *seg_len)
{
        const char *p = pattern, *u = url;
        while (*p && *u) {
                if (*p == '{') {
                        const char *end = strchr(u, '/');
                        size_t n = end ? (size_t)(end - u) : strlen(u);
                        if (n == 0)
                                return false;
                        *seg = u;
                        *seg_len = n;
                        u += n;
                        p = strchr(p, '}') + 1;
                        continue;
                }
                if (*p++ != *u++)
                        return false;
        }
        return !*p && !*u;
}

int api_route_match(const char *method, const char *url, const struct api_route **out,
                    char id[SPROUTD_ID_LEN], char *allow, size_t allow_len)
{
        bool path_found = false;
        allow[0] = '\0';
        for (unsigned i = 0; i < api_nroutes; i++) {
                const char *seg = NULL;
                size_t n = 0;
                if (!path_match(api_routes[i].path, url, &seg, &n))
                        continue;
                if (strcmp(method, api_routes[i].method)) {
                        size_t used = strlen(allow);
                        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                                 api_routes[i].method);
                        path_found = true;
                        continue;
                }
                id[0] = '\0';
                if (seg) {
                        if (!api_is_id(seg, n)) {
                                /* Still this route: the parser answers invalid_id. */
                                snprintf(id, SPROUTD_ID_LEN, "%s", "!");
                        } else {
                                memcpy(id, seg, n);
                                id[n] = '\0';
                        }
                }
                *out = &api_routes[i];
                return 0;
        }
        return path_found ? -EPERM : -ENOENT;
}

void api_routes_print(FILE *f)
{
        for (unsigned i = 0; i < api_nroutes; i++)
                fprintf(f, "%s %s\n", api_routes[i].method, api_routes[i].path);
}
