/* The daemon test harness: sproutd processes, HTTP over their sockets, small helpers. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *t_sproutd, *t_sprout, *t_images, *t_work;

static void sleep_s(double s)
{
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL);
}

void make_state(struct daemon *d, const char *name)
{
        char cmd[3000];
        memset(d, 0, sizeof(*d));
        snprintf(d->state, sizeof(d->state), "%s/%s", t_work, name);
        if (snprintf(d->sock, sizeof(d->sock), "%.90s/api.sock", d->state) >= (int)sizeof(d->sock))
                fprintf(stderr, "harness: %s is too long for a socket path\n", d->state);
        snprintf(d->log, sizeof(d->log), "%s.log", d->state);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/snapshots'", d->state, d->state);
        if (system(cmd) != 0)
                fprintf(stderr, "harness: %s failed\n", cmd);
}

static bool connectable(const char *path)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%.107s", path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (s >= 0)
                close(s);
        return ok;
}

static pid_t spawn(struct daemon *d, const char *const *flags);

int daemon_run_expect_exit(struct daemon *d, const char *const *flags, double timeout_s)
{
        pid_t pid = spawn(d, flags);
        if (pid < 0)
                return -1;
        double until = sprout_mono_s() + timeout_s;
        int st;
        while (sprout_mono_s() < until) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                sleep_s(0.02);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
}

int daemon_start(struct daemon *d, const char *const *flags)
{
        pid_t pid = spawn(d, flags);
        if (pid < 0)
                return -1;
        d->pid = pid;
        double until = sprout_mono_s() + 15;
        while (sprout_mono_s() < until) {
                int st;
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        fprintf(stderr, "harness: sproutd exited at start (status %d); see %s\n",
                                WIFEXITED(st) ? WEXITSTATUS(st) : -1, d->log);
                        d->pid = 0;
                        return -1;
                }
                if (connectable(d->sock))
                        return 0;
                sleep_s(0.02);
        }
        fprintf(stderr, "harness: sproutd did not listen on %s in 15 s\n", d->sock);
        return -1;
}

static pid_t spawn(struct daemon *d, const char *const *flags)
{
        const char *argv[64];
        int n = 0;
        argv[n++] = t_sproutd;
        argv[n++] = "--state-dir";
        argv[n++] = d->state;
        argv[n++] = "--socket";
        argv[n++] = d->sock;
        /* The test images are the clients' images here; a case may name other roots after. */
        argv[n++] = "--image-roots";
        argv[n++] = t_images;
        for (int i = 0; flags && flags[i] && n < 62; i++)
                argv[n++] = flags[i];
        argv[n] = NULL;
        pid_t pid = fork();
        if (pid == 0) {
                /* A test that fails part-way leaves no daemon (and no workers, which follow
                 * their broker) running behind it. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                        dup2(fd, 2);
                        dup2(fd, 1);
                }
                execv(t_sproutd, (char *const *)argv);
                _exit(127);
        }
        return pid;
}

int daemon_stop(struct daemon *d, int sig, double timeout_s)
{
        if (d->pid <= 0)
                return -1;
        kill(d->pid, sig);
        double until = sprout_mono_s() + timeout_s;
        int st;
        for (;;) {
                pid_t r = waitpid(d->pid, &st, WNOHANG);
                if (r == d->pid)
                        break;
                if (sprout_mono_s() > until) {
                        fprintf(stderr, "harness: sproutd did not exit in %.0f s; killing it\n",
                                timeout_s);
                        kill(d->pid, SIGKILL);
                        waitpid(d->pid, &st, 0);
                        d->pid = 0;
                        return -1;
                }
                sleep_s(0.01);
        }
        d->pid = 0;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *add_fixture_snapshot(struct daemon *d)
{
        static char id[64];
        char p[1200], cmd[4000];
        snprintf(p, sizeof(p), "%s/fixture-id", t_work);
        FILE *f = fopen(p, "r");
        if (!f || !fgets(id, sizeof(id), f)) {
                if (f)
                        fclose(f);
                fprintf(stderr, "harness: no fixture snapshot (%s): did daemon.prewarm pass?\n", p);
                return NULL;
        }
        fclose(f);
        id[strcspn(id, "\n")] = '\0';
        /* With the fixture daemon's key, or this daemon would refuse the file as not its own. */
        snprintf(
            cmd, sizeof(cmd),
            "cp '%s/fixture/snapshots/%s.snap' '%s/snapshots/' && { [ -e '%s/snapshot.key' ] || "
            "cp -p '%s/fixture/snapshot.key' '%s/'; }",
            t_work, id, d->state, d->state, t_work, d->state);
        return system(cmd) == 0 ? id : NULL;
}

struct sink {
        struct reply *r;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
        struct reply *r = ctx;
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
        struct reply *r = ctx;
        size_t len = size * n;
        char line[256];
        if (len >= sizeof(line))
                return len;
        memcpy(line, data, len);
        line[len] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncasecmp(line, "Sprout-Clone: ", 14))
                snprintf(r->clone_id, sizeof(r->clone_id), "%.36s", line + 14);
        if (!strncasecmp(line, "Allow: ", 7))
                snprintf(r->allow, sizeof(r->allow), "%.60s", line + 7);
        return len;
}

void http(const struct daemon *d, const char *method, const char *path, const char *ctype,
          const char *body, size_t len, struct reply *r)
{
        char url[2048], ct[256];
        memset(r, 0, sizeof(*r));
        CURL *h = curl_easy_init();
        struct curl_slist *hs = NULL;
        if (!h)
                return;
        snprintf(url, sizeof(url), "http://localhost%s", path);
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (body) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
                hs = curl_slist_append(hs, ct);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(hs);
        curl_easy_cleanup(h);
        if (r->body)
                r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
}

void http_json(const struct daemon *d, const char *method, const char *path, const char *body,
               struct reply *r)
{
        http(d, method, path, NULL, body, body ? strlen(body) : 0, r);
}

void reply_free(struct reply *r)
{
        free(r->body);
        json_decref(r->json);
        memset(r, 0, sizeof(*r));
}

const char *err_code(const struct reply *r)
{
        const char *c =
            json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
        return c ? c : "";
}

const char *err_msg(const struct reply *r)
{
        const char *c =
            json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
        return c ? c : "";
}

const char *wait_status(const struct daemon *d, const char *id, const char *const *want,
                        double timeout_s)
{
        static char last[32];
        char path[256];
        snprintf(path, sizeof(path), "/v1/snapshots/%s", id);
        double until = sprout_mono_s() + timeout_s;
        snprintf(last, sizeof(last), "(none)");
        while (sprout_mono_s() < until) {
                struct reply r;
                http_json(d, "GET", path, NULL, &r);
                const char *s = json_string_value(json_object_get(r.json, "status"));
                snprintf(last, sizeof(last), "%s", s ? s : "(none)");
                reply_free(&r);
                for (int i = 0; want[i]; i++)
                        if (!strcmp(last, want[i]))
                                return last;
                sleep_s(0.05);
        }
        return last;
}

int run(const char *cmd, char **out)
{
        FILE *p = popen(cmd, "r");
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        if (!p || !buf) {
                free(buf);
                if (p)
                        pclose(p);
                *out = NULL;
                return -1;
        }
        size_t got;
        while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
                n += got;
                if (n + 1 == cap) {
                        char *nb = realloc(buf, cap * 2);
                        if (!nb)
                                break;
                        buf = nb;
                        cap *= 2;
                }
        }
        buf[n] = '\0';
        int st = pclose(p);
        *out = buf;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
