/* A worker process, broker side. Spawned with clone() into new mount, pid, ipc, net and uts
 * namespaces (where the host lets us; else a plain fork, said once), then exec'd as sprout-worker
 * with its socket on fd 3. One thread per worker reads the replies to control requests and wakes
 * the caller waiting for each; a clone's own requests go on the clone's socket, where the caller
 * reads the reply itself (no thread in between). Everything read is checked, and a worker that
 * breaks the protocol, dies or does not answer in time is killed, which fails its clones and
 * nobody else's. */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sprout/clock.h"
#include "sprout/log.h"
#include "service.h"
#include "wire.h"
#include "wproc.h"

#define HELLO_TIMEOUT_MS 10000
/* How long a clone's caller waits, past the first 2 s, for the reaping of a worker it saw die. */
#define CLONE_REAP_WAIT_MS 30000

struct wcall {
        struct wcall *next;
        uint32_t seq;
        uint16_t type;
        bool done;
        pthread_cond_t cv;
        struct wreply *rep;
};

static const char *worker_exe(const struct sproutd *d)
{
        if (d->cfg.worker_exe[0])
                return d->cfg.worker_exe;
        return access(SPROUT_WORKER_DEFAULT, X_OK) == 0 ? SPROUT_WORKER_DEFAULT
                                                        : SPROUT_WORKER_INSTALLED;
}

/* The child: fd 3 is the socket, nothing else is open but stdio. Never returns. */
static void child_exec(const struct sproutd *d, int sock, uid_t tenant, uid_t uid, bool ns)
{
        if (dup2(sock, 3) < 0)
                _exit(127);
        syscall(SYS_close_range, 4, ~0U, 0);
        char k[16], t[16], u[16], lvl[4];
        snprintf(k, sizeof(k), "%lld", (long long)d->cfg.clones_per_worker);
        snprintf(t, sizeof(t), "%u", (unsigned)tenant);
        snprintf(u, sizeof(u), "%u", (unsigned)uid);
        snprintf(lvl, sizeof(lvl), "%d", sprout_log_level);
        const char *exe = worker_exe(d);
        char *argv[20];
        int n = 0;
        argv[n++] = (char *)"sprout-worker";
        argv[n++] = (char *)"--fd";
        argv[n++] = (char *)"3";
        argv[n++] = (char *)"--tenant";
        argv[n++] = t;
        argv[n++] = (char *)"--max-clones";
        argv[n++] = k;
        argv[n++] = (char *)"--log-level";
        argv[n++] = lvl;
        if (geteuid() == 0) {
                argv[n++] = (char *)"--uid";
                argv[n++] = u;
                argv[n++] = (char *)"--gid";
                argv[n++] = u;
        }
        if (ns)
                argv[n++] = (char *)"--new-root";
        if (!d->cfg.worker_seccomp)
                argv[n++] = (char *)"--no-seccomp";
        if (d->cfg.worker_test_hooks)
                argv[n++] = (char *)"--test-hooks";
        argv[n] = NULL;
        char *envp[] = {NULL};
        execve(exe, argv, envp);
        fprintf(stderr, "sprout-worker: exec %s: %s\n", exe, strerror(errno));
        _exit(127);
}

/* clone() as fork() with new namespaces; a plain fork where they are refused (an unprivileged
 * sproutd, a container without them). */
static pid_t start_child(const struct sproutd *d, int sock, uid_t tenant, uid_t uid, bool *ns)
{
        static atomic_bool warned;
        long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS;
        pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
        *ns = true;
        if (pid < 0 && (errno == EPERM || errno == EINVAL || errno == ENOSPC)) {
                if (!atomic_exchange(&warned, true))
                        sp_warn("workers run without namespaces: clone() refused them (%s)",
                                strerror(errno));
                *ns = false;
                pid = fork();
        }
        if (pid == 0)
                child_exec(d, sock, tenant, uid, *ns);
        return pid;
}

static void fail_calls_locked(struct wproc *w)
{
        for (struct wcall *c = w->calls; c; c = c->next) {
                c->done = true;
                c->rep->status = -ECONNRESET;
                c->rep->worker_died = true;
                snprintf(c->rep->msg, sizeof(c->rep->msg), "%s", w->dead_reason);
                pthread_cond_signal(&c->cv);
        }
        w->calls = NULL;
}

/* A reply's status is 0 or a negative errno, nothing else. */
static bool status_ok(int32_t status)
{
        return status <= 0 && status >= -4095;
}

/* A reply's status and payload into rep. A status that is neither 0 nor an errno is refused
 * (false). Error text has its control characters replaced: worker text reaches logs and clients
 * escaped, never raw. A payload is handed on NUL-terminated; with adopt, buf is malloc'd with a
 * byte to spare and becomes rep->payload (no copy), else it is copied. */
static bool reply_take(struct wreply *rep, const struct wire_hdr *h, char *buf, bool adopt)
{
        if (!status_ok(h->status))
                return false;
        rep->status = h->status;
        if (h->status < 0) {
                size_t n = h->len < sizeof(rep->msg) - 1 ? h->len : sizeof(rep->msg) - 1;
                memcpy(rep->msg, buf, n);
                rep->msg[n] = '\0';
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char)rep->msg[i] < 0x20)
                                rep->msg[i] = ' ';
                if (adopt)
                        free(buf);
                return true;
        }
        if (!h->len) {
                if (adopt)
                        free(buf);
                return true;
        }
        rep->payload = adopt ? buf : malloc(h->len + 1);
        if (!rep->payload) {
                rep->status = -ENOMEM;
                snprintf(rep->msg, sizeof(rep->msg), "out of memory");
                return true;
        }
        if (!adopt)
                memcpy(rep->payload, buf, h->len);
        ((char *)rep->payload)[h->len] = '\0';
        rep->len = h->len;
        return true;
}

static void *reader_main(void *arg)
{
        struct wproc *w = arg;
        void *buf = malloc(WIRE_MAX_PAYLOAD);
        char why[128] = "";
        for (int r = buf ? 0 : -ENOMEM; r == 0;) {
                struct wire_msg m;
                r = wire_recv(w->sock, &m, buf, WIRE_MAX_PAYLOAD);
                if (r < 0) {
                        if (r != -ECONNRESET)
                                snprintf(why, sizeof(why), "its replies broke the protocol (%s)",
                                         strerror(-r));
                        break;
                }
                wire_msg_close(&m); /* a worker has no descriptor to give us */
                if (m.hdr.type == WIRE_POOLS && m.hdr.seq == 0) {
                        struct wire_pools pc;
                        if (m.hdr.len != sizeof(pc)) {
                                snprintf(why, sizeof(why), "it sent a malformed pools note");
                                break;
                        }
                        memcpy(&pc, buf, sizeof(pc));
                        placement_note_pools(w->d, w, m.hdr.obj, pc.shells > 64 ? 64 : pc.shells,
                                             pc.ready > 64 ? 64 : pc.ready);
                        continue;
                }
                pthread_mutex_lock(&w->lock);
                struct wcall **pc = &w->calls;
                while (*pc && (*pc)->seq != m.hdr.seq)
                        pc = &(*pc)->next;
                struct wcall *c = *pc;
                if (!c || c->type != m.hdr.type || !status_ok(m.hdr.status)) {
                        pthread_mutex_unlock(&w->lock);
                        snprintf(why, sizeof(why), "it sent a reply to no request (%s #%u)",
                                 wire_type_name(m.hdr.type), m.hdr.seq);
                        break;
                }
                *pc = c->next;
                (void)reply_take(c->rep, &m.hdr, buf, false); /* the status was checked above */
                c->done = true;
                pthread_cond_signal(&c->cv);
                pthread_mutex_unlock(&w->lock);
        }
        free(buf);
        /* Whatever ended the stream, the worker is finished: make sure, then say how it went.
         * Once reaping is set no one else signals the pid, which may be reused after the wait. */
        pthread_mutex_lock(&w->lock);
        w->reaping = true;
        kill(w->pid, SIGKILL);
        pthread_mutex_unlock(&w->lock);
        int st = 0;
        while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
                ;
        char how[64];
        if (WIFSIGNALED(st))
                snprintf(how, sizeof(how), "killed by signal %d (%s)", WTERMSIG(st),
                         strsignal(WTERMSIG(st)));
        else
                snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(st));
        pthread_mutex_lock(&w->lock);
        if (!w->dead_reason[0])
                snprintf(w->dead_reason, sizeof(w->dead_reason),
                         "worker %d of tenant %u died: %s%s%s", (int)w->pid, (unsigned)w->tenant,
                         why[0] ? why : how, why[0] ? ", " : "", why[0] ? how : "");
        w->dead = true;
        pthread_cond_broadcast(&w->died);
        bool stopping = w->stopping;
        fail_calls_locked(w);
        pthread_mutex_unlock(&w->lock);
        placement_worker_died(w->d, w, stopping);
        return NULL;
}

/* Waits for HELLO on the fresh socket, with a deadline: a worker that cannot start says why on
 * stderr (the daemon's log) and exits. */
static int await_hello(struct wproc *w, struct sprout_err *err)
{
        struct pollfd p = {.fd = w->sock, .events = POLLIN};
        int n = poll(&p, 1, HELLO_TIMEOUT_MS);
        if (n <= 0)
                return sprout_err_set(err, -ETIMEDOUT, "the worker did not start within %d ms",
                                      HELLO_TIMEOUT_MS);
        struct wire_msg m;
        struct wire_hello h;
        void *buf = malloc(WIRE_MAX_PAYLOAD);
        int r = buf ? wire_recv(w->sock, &m, buf, WIRE_MAX_PAYLOAD) : -ENOMEM;
        if (r == 0) {
                wire_msg_close(&m);
                if (m.hdr.type != WIRE_HELLO || m.hdr.len != sizeof(h))
                        r = -EPROTO;
                else
                        memcpy(&h, buf, sizeof(h));
        }
        free(buf);
        if (r < 0)
                return sprout_err_set(err, r == -ECONNRESET ? -ECHILD : r,
                                      "the worker %s (its log says why)",
                                      r == -ECONNRESET ? "exited at start" : "broke the protocol");
        w->jailed = h.jailed;
        return 0;
}

int wproc_spawn(struct sproutd *d, uid_t tenant, unsigned index, struct wproc **out,
                struct sprout_err *err)
{
        int sv[2];
        int r = wire_socketpair(sv, WIRE_SOCKBUF);
        if (r < 0)
                return sprout_err_errno(err, r, "socketpair for a worker");
        struct wproc *w = calloc(1, sizeof(*w));
        unsigned k = (unsigned)d->cfg.clones_per_worker;
        if (!w || !(w->slot_used = calloc(k, 1))) {
                free(w);
                close(sv[0]);
                close(sv[1]);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        w->d = d;
        w->tenant = tenant;
        w->index = index;
        w->uid = (uid_t)(d->cfg.worker_uid_base + index);
        w->max_clones = k;
        w->sock = sv[0];
        w->next_seq = 1;
        w->refs = 1;
        w->idle_since_ns = sprout_mono_ns();
        pthread_mutex_init(&w->lock, NULL);
        sprout_cond_init_mono(&w->died);
        bool ns;
        w->pid = start_child(d, sv[1], tenant, w->uid, &ns);
        int saved = errno;
        close(sv[1]);
        if (w->pid < 0) {
                r = sprout_err_errno(err, -saved, "starting a worker");
                goto fail;
        }
        /* Into the tenant's cgroup before it holds any guest memory. */
        if ((r = cgroups_place(d, tenant, w->pid, err)) < 0 || (r = await_hello(w, err)) < 0) {
                kill(w->pid, SIGKILL);
                waitpid(w->pid, NULL, 0);
                goto fail;
        }
        r = pthread_create(&w->reader, NULL, reader_main, w);
        if (r) {
                kill(w->pid, SIGKILL);
                waitpid(w->pid, NULL, 0);
                r = sprout_err_errno(err, -r, "starting a worker's reader thread");
                goto fail;
        }
        sp_info("worker %d for tenant %u started (uid %u, K %u%s%s%s)", (int)w->pid,
                (unsigned)tenant, (unsigned)w->uid, k, w->jailed & 1 ? ", namespaces" : "",
                w->jailed & 2 ? ", own uid" : "", w->jailed & 4 ? ", seccomp" : "");
        *out = w;
        return 0;
fail:
        close(w->sock);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->died);
        free(w->slot_used);
        free(w);
        return r;
}

int wproc_call(struct wproc *w, unsigned type, uint32_t obj, const void *p1, size_t n1,
               const void *p2, size_t n2, int fd, int64_t timeout_ms, struct wreply *rep,
               struct sprout_err *err)
{
        memset(rep, 0, sizeof(*rep));
        struct wcall c = {.type = (uint16_t)type, .rep = rep};
        sprout_cond_init_mono(&c.cv);
        pthread_mutex_lock(&w->lock);
        int r = 0;
        if (w->dead) {
                r = sprout_err_set(err, -ECONNRESET, "%s", w->dead_reason);
                pthread_mutex_unlock(&w->lock);
                pthread_cond_destroy(&c.cv);
                return r;
        }
        c.seq = w->next_seq++;
        if (!w->next_seq)
                w->next_seq = 1;
        c.next = w->calls;
        w->calls = &c;
        struct wire_hdr h = {.type = (uint16_t)type, .seq = c.seq, .obj = obj};
        /* Sent under the lock so the reader cannot see the reply before the call is listed, and
         * without waiting: a worker whose socket buffer (megabytes) is full has stopped reading,
         * and no caller may block on it. */
        r = wire_send(w->sock, &h, p1, n1, p2, n2, fd, true);
        if (r < 0) {
                for (struct wcall **pc = &w->calls; *pc; pc = &(*pc)->next)
                        if (*pc == &c) {
                                *pc = c.next;
                                break;
                        }
                pthread_mutex_unlock(&w->lock);
                pthread_cond_destroy(&c.cv);
                if (r == -EAGAIN) {
                        char why[128];
                        snprintf(why, sizeof(why),
                                 "worker %d of tenant %u stopped reading requests", (int)w->pid,
                                 (unsigned)w->tenant);
                        wproc_kill(w, why);
                        return sprout_err_set(err, -ECONNRESET, "%s", why);
                }
                return r == -EPIPE || r == -ECONNRESET
                           ? sprout_err_set(err, -ECONNRESET, "worker %d of tenant %u died",
                                            (int)w->pid, (unsigned)w->tenant)
                           : sprout_err_errno(err, r, "sending to worker %d", (int)w->pid);
        }
        struct timespec until = sprout_mono_after_ms(timeout_ms);
        while (!c.done)
                if (pthread_cond_timedwait(&c.cv, &w->lock, &until) == ETIMEDOUT && !c.done)
                        break;
        bool late = !c.done;
        if (late)
                for (struct wcall **pc = &w->calls; *pc; pc = &(*pc)->next)
                        if (*pc == &c) {
                                *pc = c.next;
                                break;
                        }
        pthread_mutex_unlock(&w->lock);
        pthread_cond_destroy(&c.cv);
        if (late) {
                char why[128];
                snprintf(why, sizeof(why), "worker %d of tenant %u did not answer a %s in %lld ms",
                         (int)w->pid, (unsigned)w->tenant, wire_type_name(type),
                         (long long)timeout_ms);
                wproc_kill(w, why);
                return sprout_err_set(err, -ECONNRESET, "%s", why);
        }
        if (rep->worker_died)
                return sprout_err_set(err, -ECONNRESET, "%s", rep->msg);
        return 0;
}

/* Kills a worker that broke the protocol or its deadline on a clone's socket. */
static int clone_call_kill(struct wproc *w, struct wreply *rep, const char *what, unsigned type,
                           int64_t timeout_ms, struct sprout_err *err)
{
        char why[160];
        if (timeout_ms >= 0)
                snprintf(why, sizeof(why), "worker %d of tenant %u did not answer a %s in %lld ms",
                         (int)w->pid, (unsigned)w->tenant, wire_type_name(type),
                         (long long)timeout_ms);
        else
                snprintf(why, sizeof(why), "worker %d of tenant %u %s", (int)w->pid,
                         (unsigned)w->tenant, what);
        wproc_kill(w, why);
        rep->worker_died = true;
        snprintf(rep->msg, sizeof(rep->msg), "%s", why);
        return sprout_err_set(err, -ECONNRESET, "%s", why);
}

/* A clone's socket ended: its worker is gone, and the reader thread, which reaps it, says how it
 * went; wait for that, so the clone's error names the signal. Reaping a worker waits for the
 * kernel to tear its VMs down, so once the reader has begun it gets longer. A worker whose
 * reaping has not begun after a while closed the socket unasked, which the protocol does not
 * allow. */
static int clone_call_died(struct wproc *w, unsigned type, struct wreply *rep,
                           struct sprout_err *err)
{
        struct timespec until = sprout_mono_after_ms(2000);
        pthread_mutex_lock(&w->lock);
        for (bool longer = false; !w->dead;) {
                if (pthread_cond_timedwait(&w->died, &w->lock, &until) != ETIMEDOUT)
                        continue;
                if (longer || !w->reaping)
                        break;
                longer = true;
                until = sprout_mono_after_ms(CLONE_REAP_WAIT_MS);
        }
        bool dead = w->dead;
        snprintf(rep->msg, sizeof(rep->msg), "%s", w->dead_reason);
        pthread_mutex_unlock(&w->lock);
        if (!dead)
                return clone_call_kill(w, rep, "closed a clone's socket unasked", type, -1, err);
        rep->worker_died = true;
        return sprout_err_set(err, -ECONNRESET, "%s", rep->msg);
}

int wproc_clone_call(struct wproc *w, int sock, unsigned type, uint32_t obj, const void *p1,
                     size_t n1, const void *p2, size_t n2, int64_t timeout_ms, struct wreply *rep,
                     struct sprout_err *err)
{
        memset(rep, 0, sizeof(*rep));
        pthread_mutex_lock(&w->lock);
        bool dead = w->dead;
        uint32_t seq = w->next_seq++;
        if (!w->next_seq)
                w->next_seq = 1;
        pthread_mutex_unlock(&w->lock);
        if (dead)
                return clone_call_died(w, type, rep, err);
        struct wire_hdr h = {.type = (uint16_t)type, .seq = seq, .obj = obj};
        /* Without waiting: a full buffer (megabytes) means the worker stopped reading. */
        int r = wire_send(sock, &h, p1, n1, p2, n2, -1, true);
        if (r == -EAGAIN)
                return clone_call_kill(w, rep, "stopped reading requests", type, -1, err);
        if (r == -EPIPE || r == -ECONNRESET)
                return clone_call_died(w, type, rep, err);
        if (r < 0)
                return sprout_err_errno(err, r, "sending to worker %d", (int)w->pid);
        int64_t until = sprout_mono_ns() + timeout_ms * 1000000;
        struct pollfd p = {.fd = sock, .events = POLLIN};
        for (;;) {
                int64_t left_ms = (until - sprout_mono_ns() + 999999) / 1000000;
                int n =
                    left_ms > 0 ? poll(&p, 1, left_ms > INT32_MAX ? INT32_MAX : (int)left_ms) : 0;
                if (n > 0)
                        break;
                if (n == 0)
                        return clone_call_kill(w, rep, NULL, type, timeout_ms, err);
                if (errno != EINTR)
                        /* The reply may come, and nobody would read it: the clone's stream is
                         * out of step, and so is the worker. */
                        return clone_call_kill(w, rep, "could not be waited for", type, -1, err);
        }
        long len = wire_peek_len(sock);
        if (len == -ECONNRESET && (p.revents & POLLHUP))
                return clone_call_died(w, type, rep, err);
        if (len < 0 || len > WIRE_MAX_PAYLOAD)
                /* A zero-length message reads as the end of the stream; the socket is not. */
                return clone_call_kill(w, rep, "broke the protocol on a clone's socket", type, -1,
                                       err);
        char *buf = malloc((size_t)len + 1);
        if (!buf) {
                /* Taken off unread, so the next request's reply is the next message. */
                struct wire_hdr dh;
                if (wire_drain(sock, &dh) < 0 || dh.seq != seq)
                        return clone_call_kill(w, rep, "broke the protocol on a clone's socket",
                                               type, -1, err);
                return sprout_err_set(err, -ENOMEM, "out of memory for a worker's reply");
        }
        struct wire_msg m;
        r = wire_recv(sock, &m, buf, (size_t)len);
        if (r == 0)
                wire_msg_close(&m); /* a worker has no descriptor to give us */
        if (r == -ECONNRESET) {
                free(buf);
                return clone_call_died(w, type, rep, err);
        }
        /* Only an answer to this request, about this clone, with a status, is one. */
        if (r < 0 || m.hdr.seq != seq || m.hdr.type != type || m.hdr.obj != obj ||
            !reply_take(rep, &m.hdr, buf, true)) {
                free(buf);
                return clone_call_kill(w, rep, "broke the protocol on a clone's socket", type, -1,
                                       err);
        }
        return 0;
}

void wreply_free(struct wreply *rep)
{
        free(rep->payload);
        rep->payload = NULL;
}

bool wproc_dead(struct wproc *w, char *why, size_t len)
{
        pthread_mutex_lock(&w->lock);
        bool dead = w->dead;
        if (dead && why)
                snprintf(why, len, "%s", w->dead_reason);
        pthread_mutex_unlock(&w->lock);
        return dead;
}

void wproc_kill(struct wproc *w, const char *why)
{
        pthread_mutex_lock(&w->lock);
        if (!w->dead_reason[0])
                snprintf(w->dead_reason, sizeof(w->dead_reason), "%s", why);
        w->dead = true; /* no new call goes to it; the reader fails the pending ones */
        if (!w->reaping) {
                sp_warn("%s: killing it", why);
                kill(w->pid, SIGKILL);
        }
        pthread_mutex_unlock(&w->lock);
}

void wproc_free(struct wproc *w)
{
        /* A worker sees the end of its stream and exits; the reader thread sees it go. */
        pthread_mutex_lock(&w->lock);
        w->stopping = !w->dead;
        pthread_mutex_unlock(&w->lock);
        shutdown(w->sock, SHUT_RDWR);
        if (pthread_equal(pthread_self(), w->reader))
                pthread_detach(w->reader); /* it returns right after this */
        else
                pthread_join(w->reader, NULL);
        close(w->sock);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->died);
        free(w->slot_used);
        free(w);
}
