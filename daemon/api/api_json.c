/* Building responses and checking request bodies: JSON replies, the one error shape
 * {"error":{"code","message"}}, and field-by-field validation that names the field at fault. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/escape.h"
#include "sprout/log.h"
#include "api.h"

static const struct {
        unsigned status;
        const char *code;
} errors[] = {
#define X(name, status, code) {status, code},
    API_ERRORS(X)
#undef X
};

unsigned api_err_status(enum api_errc e)
{
        return errors[e].status;
}

const char *api_err_code(enum api_errc e)
{
        return errors[e].code;
}

void api_reply_raw(struct api_resp *resp, unsigned status, const char *ctype, char *body,
                   size_t len)
{
        free(resp->body);
        resp->status = status;
        resp->content_type = ctype;
        resp->body = body;
        resp->len = len;
}

void api_reply_json(struct api_resp *resp, unsigned status, json_t *body)
{
        char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(body);
        if (!s) {
                static const char oom[] =
                    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
                api_reply_raw(resp, 500, "application/json", strdup(oom), sizeof(oom) - 1);
                return;
        }
        size_t n = strlen(s);
        s[n] = '\n'; /* curl users see a clean line; json_dumps leaves room for the NUL we reuse */
        api_reply_raw(resp, status, "application/json", s, n + 1);
}

void api_error(struct sproutd *d, struct api_resp *resp, enum api_errc code, const char *fmt, ...)
{
        char raw[768], msg[4 * sizeof(raw)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* The message quotes URLs, paths and guest text: jansson refuses invalid UTF-8, and a
         * refused string would turn a 404 into a 500. */
        sprout_escape(msg, sizeof(msg), raw, strlen(raw), 0);
        atomic_fetch_add(&d->metrics.errors[code], 1);
        json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", errors[code].code, "message", msg);
        api_reply_json(resp, errors[code].status, o);
        if (errors[code].status >= 500)
                sp_warn("%s: %s", errors[code].code, msg);
}

static const char *type_name(enum api_ftype t)
{
        return t == F_STRING ? "a string" : t == F_INT ? "an integer" : "a boolean";
}

int api_check_fields(struct sproutd *d, json_t *body, const struct api_field *f, size_t n,
                     struct api_resp *resp)
{
        json_t *empty = NULL;
        if (!body)
                body = empty = json_object();
        if (!json_is_object(body)) {
                api_error(d, resp, API_E_INVALID_REQUEST, "the body must be a JSON object");
                return -1;
        }
        const char *key;
        json_t *v;
        int r = 0;
        json_object_foreach(body, key, v)
        {
                size_t i = 0;
                while (i < n && strcmp(f[i].name, key))
                        i++;
                if (i == n) {
                        api_error(d, resp, API_E_UNKNOWN_FIELD, "unknown field '%s'", key);
                        r = -1;
                        goto out;
                }
                bool ok = f[i].type == F_STRING ? json_is_string(v)
                          : f[i].type == F_INT  ? json_is_integer(v)
                                                : json_is_boolean(v);
                if (!ok) {
                        api_error(d, resp, API_E_INVALID_FIELD, "field '%s' must be %s", key,
                                  type_name(f[i].type));
                        r = -1;
                        goto out;
                }
                int64_t x = f[i].type == F_STRING ? (int64_t)json_string_length(v)
                            : f[i].type == F_INT  ? (int64_t)json_integer_value(v)
                                                  : 0;
                if (f[i].type != F_BOOL && (x < f[i].min || x > f[i].max)) {
                        if (f[i].type == F_STRING)
                                api_error(d, resp, API_E_INVALID_FIELD,
                                          "field '%s' must be %lld to %lld bytes long", key,
                                          (long long)f[i].min, (long long)f[i].max);
                        else
                                api_error(d, resp, API_E_INVALID_FIELD,
                                          "field '%s' must be in %lld..%lld", key,
                                          (long long)f[i].min, (long long)f[i].max);
                        r = -1;
                        goto out;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (f[i].required && !json_object_get(body, f[i].name)) {
                        api_error(d, resp, API_E_MISSING_FIELD, "missing field '%s'", f[i].name);
                        r = -1;
                        goto out;
                }
out:
        json_decref(empty);
        return r;
}
