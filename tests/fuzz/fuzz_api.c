/* libFuzzer target: the API's request layer without HTTP: route matching, the body's JSON, and
 * each route's parser with its field table and query parameters, up to the typed command.
 *
 * The parsers reach the request only through api_query, api_req_body and api_req_daemon
 * (api.h); api_http.c implements them on libmicrohttpd and is not linked here: this file
 * implements them on the fuzz input instead, so the parsers run unchanged. The input is text:
 *   METHOD SP URL LF  QUERY LF  BODY
 * where QUERY is "name=value&name" (already decoded, as MHD hands it over). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "fuzz_util.h"

#define MAX_QUERY 16

struct api_req {
        struct sproutd *d;
        const char *body;
        size_t len;
        unsigned nq;
        const char *qname[MAX_QUERY], *qval[MAX_QUERY]; /* qval NULL: "?name" with no '=' */
};

struct sproutd *api_req_daemon(struct api_req *rq)
{
        return rq->d;
}

const char *api_req_body(struct api_req *rq, size_t *len)
{
        *len = rq->len;
        return rq->body ? rq->body : "";
}

const char *api_query(struct api_req *rq, const char *name)
{
        for (unsigned i = 0; i < rq->nq; i++)
                if (!strcmp(rq->qname[i], name))
                        return rq->qval[i] ? rq->qval[i] : "";
        return NULL;
}

static struct sproutd daemon_state;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        char *args[] = {"sproutd", NULL};
        struct sprout_err err = {0};
        (void)argc;
        (void)argv;
        fuzz_setup();
        if (sproutd_config_load(1, args, &daemon_state.cfg, &err) != 0)
                abort();
        return 0;
}

/* Cuts the next LF-terminated line off *p (of *n bytes), NUL-terminating it in place. */
static char *next_line(char **p, size_t *n)
{
        char *s = *p, *lf = memchr(s, '\n', *n);
        if (!lf)
                return NULL;
        *lf = '\0';
        *n -= (size_t)(lf + 1 - s);
        *p = lf + 1;
        return s;
}

static void parse_query(struct api_req *rq, char *q)
{
        for (char *tok = strtok(q, "&"); tok && rq->nq < MAX_QUERY; tok = strtok(NULL, "&")) {
                char *eq = strchr(tok, '=');
                if (eq)
                        *eq++ = '\0';
                rq->qname[rq->nq] = tok;
                rq->qval[rq->nq++] = eq;
        }
}

/* What a parser that accepted the request must have produced. */
static void check_cmd(const struct api_route *r, const struct api_cmd *c)
{
        const struct sproutd_config *cfg = &daemon_state.cfg;
        int ok = 1;
        switch (r->op) {
        case OP_SNAP_CREATE:
                ok = c->prewarm.image[0] == '/' && c->prewarm.timeout_s >= 1 &&
                     c->prewarm.zstd_level >= -7 && c->prewarm.zstd_level <= 19;
                break;
        case OP_CLONE_CREATE:
                ok = api_is_id(c->snapshot, strlen(c->snapshot)) && c->count >= 1 &&
                     c->count <= API_MAX_CLONES_PER_REQUEST;
                break;
        case OP_CLONE_LIST:
                ok = !c->snapshot[0] || api_is_id(c->snapshot, strlen(c->snapshot));
                break;
        case OP_SNAP_INVOKE:
        case OP_CLONE_INVOKE:
                ok = c->body && c->body_len && c->body_len <= r->max_body && c->timeout_ms >= 1 &&
                     c->timeout_ms <= cfg->max_invoke_timeout_ms;
                break;
        default:
                break;
        }
        if (r->path[strlen(r->path) - 1] == '}' || strstr(r->path, "{id}/"))
                ok = ok && api_is_id(c->id, strlen(c->id));
        if (!ok) {
                fprintf(stderr, "fuzz: %s %s accepted a bad command\n", r->method, r->path);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > API_BODY_MAX + 4096)
                return -1;
        char *buf = malloc(size + 1), *p = buf;
        memcpy(buf, data, size);
        buf[size] = '\0';
        size_t n = size;
        struct api_req rq = {.d = &daemon_state};
        char *line = next_line(&p, &n), *query = line ? next_line(&p, &n) : NULL;
        char *url = line ? strchr(line, ' ') : NULL;
        if (!query || !url) {
                free(buf);
                return 0;
        }
        *url++ = '\0';
        parse_query(&rq, query);
        rq.body = p;
        rq.len = n;

        const struct api_route *r = NULL;
        char id[SPROUTD_ID_LEN], allow[32];
        int m = api_route_match(line, url, &r, id, allow, sizeof(allow));
        if (m == -EPERM && strnlen(allow, sizeof(allow)) == sizeof(allow))
                abort();
        /* As api_http.c: a malformed id and an oversized body are refused before the parser. */
        size_t limit = m == 0 && r->max_body ? r->max_body : API_BODY_MAX;
        if (m != 0 || id[0] == '!' || rq.len > limit) {
                free(buf);
                return 0;
        }
        json_t *body = NULL;
        if (rq.len) {
                body = json_loadb(rq.body, rq.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
                if (!body) {
                        free(buf);
                        return 0;
                }
        }
        struct api_cmd cmd = {.op = r->op};
        struct api_resp resp = {0};
        memcpy(cmd.id, id, sizeof(id));
        int pr = r->parse(&rq, body, &cmd, &resp);
        if (fuzz_verbose)
                fprintf(stderr, "fuzz: %s %s: %d %.*s\n", r->method, r->path, pr, (int)resp.len,
                        resp.body ? resp.body : "");
        json_decref(body);
        if (pr == 0)
                check_cmd(r, &cmd);
        else if (!resp.body || resp.status < 400 || resp.status > 499)
                abort(); /* a refusal is always a client error with a body */
        free(resp.body);
        free(buf);
        return 0;
}
