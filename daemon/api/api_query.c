/* Typed query parameters, on top of the raw lookup api_http.c provides (api_query): kept apart from
 * the HTTP library so the request parsers link, and are fuzzed, without a connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int api_query_bool(struct api_req *rq, const char *name, bool *out, struct api_resp *resp)
{
        const char *v = api_query(rq, name);
        if (!v)
                return -ENOENT;
        if (!strcmp(v, "true") || !strcmp(v, "1") || !*v) {
                *out = true;
                return 0;
        }
        if (!strcmp(v, "false") || !strcmp(v, "0")) {
                *out = false;
                return 0;
        }
        api_error(api_req_daemon(rq), resp, API_E_INVALID_FIELD,
                  "query parameter '%s' must be true or false", name);
        return -EINVAL;
}

int api_query_int(struct api_req *rq, const char *name, int64_t min, int64_t max, int64_t *out,
                  struct api_resp *resp)
{
        const char *v = api_query(rq, name);
        if (!v)
                return -ENOENT;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < min || n > max) {
                api_error(api_req_daemon(rq), resp, API_E_INVALID_FIELD,
                          "query parameter '%s' must be an integer in %lld..%lld", name,
                          (long long)min, (long long)max);
                return -EINVAL;
        }
        *out = n;
        return 0;
}
