/* A minimal QMP client (QEMU's JSON monitor over a Unix socket) for the QEMU peer benchmarks:
 * connect, negotiate, run a command and wait for its answer, skipping asynchronous events. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/bench_qemu.h"
#include "sprout/clock.h"

/* Reads one CRLF-terminated JSON message into a new json_t, waiting at most deadline_ns. */
static json_t *qmp_read(struct qmp *q, int64_t deadline_ns)
{
        for (;;) {
                char *nl = memchr(q->buf, '\n', q->len);
                if (nl) {
                        size_t n = (size_t)(nl - q->buf) + 1;
                        json_t *j = json_loadb(q->buf, n, 0, NULL);
                        memmove(q->buf, q->buf + n, q->len - n);
                        q->len -= n;
                        if (j)
                                return j;
                        continue;
                }
                if (q->len == sizeof(q->buf))
                        return NULL; /* a message larger than we ever expect */
                int64_t left = deadline_ns - sprout_mono_ns();
                if (left <= 0)
                        return NULL;
                struct pollfd p = {.fd = q->fd, .events = POLLIN};
                if (poll(&p, 1, (int)(left / 1000000 + 1)) <= 0)
                        return NULL;
                ssize_t r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
                if (r <= 0)
                        return NULL;
                q->len += (size_t)r;
        }
}

json_t *qmp_command(struct qmp *q, const char *json_cmd, int64_t timeout_ms)
{
        size_t n = strlen(json_cmd);
        if (write(q->fd, json_cmd, n) != (ssize_t)n)
                return NULL;
        int64_t deadline = sprout_mono_ns() + timeout_ms * 1000000;
        for (;;) {
                json_t *j = qmp_read(q, deadline);
                if (!j)
                        return NULL;
                if (json_object_get(j, "return") || json_object_get(j, "error"))
                        return j;
                json_decref(j); /* an event */
        }
}

int qmp_connect(struct qmp *q, const char *path, int64_t timeout_ms)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int64_t deadline = sprout_mono_ns() + timeout_ms * 1000000;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        q->len = 0;
        /* QEMU creates the socket shortly after it starts: retry until it is there. */
        for (;;) {
                q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (q->fd < 0)
                        return -errno;
                if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        break;
                close(q->fd);
                q->fd = -1;
                if (sprout_mono_ns() > deadline)
                        return -ETIMEDOUT;
                usleep(200);
        }
        json_t *greeting = qmp_read(q, deadline);
        if (!greeting) {
                qmp_close(q);
                return -EPROTO;
        }
        json_decref(greeting);
        json_t *r = qmp_command(q, "{\"execute\":\"qmp_capabilities\"}\r\n", timeout_ms);
        if (!r || !json_object_get(r, "return")) {
                json_decref(r);
                qmp_close(q);
                return -EPROTO;
        }
        json_decref(r);
        return 0;
}

void qmp_close(struct qmp *q)
{
        if (q->fd >= 0)
                close(q->fd);
        q->fd = -1;
}
