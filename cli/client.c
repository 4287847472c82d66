/* sproutd's client in the CLI: one libcurl easy handle per client (so connections are reused),
 * requests over the Unix socket, error responses turned into messages and exit codes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "sprout/daemon.h"

int client_open(struct client *c, const char *socket)
{
        struct sprout_err err = {0};
        memset(c, 0, sizeof(*c));
        if (socket) {
                if (strlen(socket) >= sizeof(c->socket)) {
                        fprintf(stderr, "sprout: socket path %s is too long\n", socket);
                        return CLI_EXIT_USAGE;
                }
                snprintf(c->socket, sizeof(c->socket), "%s", socket);
        } else if (sprout_default_socket_path(c->socket, sizeof(c->socket), &err) < 0) {
                fprintf(stderr, "sprout: %s\n", err.msg);
                return CLI_EXIT_USAGE;
        }
        static bool global_done;
        if (!global_done) {
                curl_global_init(CURL_GLOBAL_NOTHING);
                global_done = true;
        }
        c->h = curl_easy_init();
        c->headers = curl_slist_append(NULL, "Content-Type: application/json");
        /* No 100-continue round trip: the daemon answers a too-large body with 413 at once. */
        c->headers = curl_slist_append(c->headers, "Expect:");
        if (!c->h || !c->headers) {
                fprintf(stderr, "sprout: cannot initialise libcurl\n");
                client_close(c);
                return CLI_EXIT_FAIL;
        }
        return 0;
}

void client_close(struct client *c)
{
        if (c->h)
                curl_easy_cleanup(c->h);
        curl_slist_free_all(c->headers);
        c->h = NULL;
        c->headers = NULL;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
        struct client_resp *r = ctx;
        size_t add = size * n;
        char *nb = realloc(r->body, r->len + add + 1);
        if (!nb)
                return 0;
        memcpy(nb + r->len, data, add);
        r->body = nb;
        r->len += add;
        r->body[r->len] = '\0';
        return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
        struct client_resp *r = ctx;
        size_t len = size * n;
        char line[256];
        if (len >= sizeof(line))
                return len;
        memcpy(line, data, len);
        line[len] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncasecmp(line, "Sprout-Clone: ", 14))
                snprintf(r->clone_id, sizeof(r->clone_id), "%.36s", line + 14);
        else if (!strncasecmp(line, "Sprout-Invoke-Ms: ", 18))
                r->invoke_ms = strtod(line + 18, NULL);
        return len;
}

int client_call(struct client *c, const char *method, const char *path, const char *body,
                size_t len, long timeout_ms, struct client_resp *r)
{
        char url[1024];
        memset(r, 0, sizeof(*r));
        snprintf(url, sizeof(url), "http://localhost%s", path);
        CURL *h = c->h;
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        } else {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
                curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
                curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        }
        c->errbuf[0] = '\0';
        CURLcode cc = curl_easy_perform(h);
        if (cc == CURLE_COULDNT_CONNECT)
                return -EHOSTDOWN;
        if (cc != CURLE_OK) {
                if (!c->errbuf[0])
                        snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_easy_strerror(cc));
                return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->body)
                r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
        return 0;
}

void client_resp_free(struct client_resp *r)
{
        free(r->body);
        json_decref(r->json);
        memset(r, 0, sizeof(*r));
}

int client_fail(const char *cmd, const struct client *c, int r, const struct client_resp *resp)
{
        if (r == -EHOSTDOWN) {
                fprintf(stderr,
                        "sprout %s: no sproutd answers on %s (start one with 'sprout daemon', or "
                        "give --socket)\n",
                        cmd, c->socket);
                return CLI_EXIT_UNREACHABLE;
        }
        if (r < 0) {
                fprintf(stderr, "sprout %s: talking to sproutd on %s: %s\n", cmd, c->socket,
                        c->errbuf);
                return CLI_EXIT_UNREACHABLE;
        }
        json_t *e = json_object_get(resp->json, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code && msg)
                fprintf(stderr, "sprout %s: %s (%s, HTTP %ld)\n", cmd, msg, code, resp->status);
        else
                fprintf(stderr, "sprout %s: HTTP %ld: %.*s\n", cmd, resp->status,
                        (int)(resp->len > 400 ? 400 : resp->len), resp->body ? resp->body : "");
        return CLI_EXIT_FAIL;
}

int client_get_json(struct client *c, const char *cmd, const char *path, struct client_resp *r)
{
        int rc = client_call(c, "GET", path, NULL, 0, 30000, r);
        if (rc < 0 || r->status != 200 || !r->json) {
                rc = client_fail(cmd, c, rc, r);
                client_resp_free(r);
                return rc;
        }
        return 0;
}

int client_post_json(struct client *c, const char *path, json_t *body, long timeout_ms,
                     struct client_resp *r)
{
        char *text = json_dumps(body, JSON_COMPACT);
        if (!text) {
                memset(r, 0, sizeof(*r));
                return -ENOMEM;
        }
        int e = client_call(c, "POST", path, text, strlen(text), timeout_ms, r);
        free(text);
        return e;
}

const char *snapshot_status(json_t *snap)
{
        const char *s = json_string_value(json_object_get(snap, "status"));
        return s ? s : "?";
}

void print_json(json_t *j, size_t flags)
{
        char *s = json_dumps(j, flags);
        printf("%s\n", s);
        free(s);
}

void fmt_bytes(char *buf, size_t len, double b)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        while (b >= 1024 && u < 4) {
                b /= 1024;
                u++;
        }
        snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

void fmt_age(char *buf, size_t len, double s)
{
        if (s < 60)
                snprintf(buf, len, "%.0fs", s);
        else if (s < 3600)
                snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
        else if (s < 86400)
                snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
        else
                snprintf(buf, len, "%dd%02dh", (int)s / 86400, (int)s % 86400 / 3600);
}
