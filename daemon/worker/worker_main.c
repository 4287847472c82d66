/* sprout-worker's entry: the flags the broker passes, /dev/kvm, the jail, HELLO, then one message
 * at a time from the broker until it closes the socket (or dies: then so do we). */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/log.h"
#include "sprout/version.h"
#include "worker.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: sprout-worker --fd N --tenant UID [--uid U --gid G] [--max-clones K]\n"
                "                     [--new-root] [--no-seccomp] [--test-hooks] [--log-level L]\n"
                "Started by sproutd, never by hand: it serves the broker protocol of\n"
                "docs/workers.md on descriptor N.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > max)
                return -EINVAL;
        *out = v;
        return 0;
}

static int parse(int argc, char **argv, struct worker_opts *o)
{
        static const struct option opts[] = {
            {"fd", required_argument, 0, 'f'},
            {"tenant", required_argument, 0, 't'},
            {"uid", required_argument, 0, 'u'},
            {"gid", required_argument, 0, 'g'},
            {"max-clones", required_argument, 0, 'k'},
            {"new-root", no_argument, 0, 'r'},
            {"no-seccomp", no_argument, 0, 's'},
            {"log-level", required_argument, 0, 'l'},
            {"test-hooks", no_argument, 0, 'T'},
            {"help", no_argument, 0, 'h'},
            {0, 0, 0, 0},
        };
        unsigned long v;
        int c;
        o->sock = -1;
        o->uid = (uid_t)-1;
        o->gid = (gid_t)-1;
        o->max_clones = 64;
        o->seccomp = true;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        if (parse_uint(optarg, 1 << 20, &v))
                                return -EINVAL;
                        o->sock = (int)v;
                        break;
                case 't':
                        snprintf(o->tenant, sizeof(o->tenant), "%s", optarg);
                        break;
                case 'u':
                        if (parse_uint(optarg, 0xfffffffeUL, &v))
                                return -EINVAL;
                        o->uid = (uid_t)v;
                        break;
                case 'g':
                        if (parse_uint(optarg, 0xfffffffeUL, &v))
                                return -EINVAL;
                        o->gid = (gid_t)v;
                        break;
                case 'k':
                        if (parse_uint(optarg, WORKER_MAX_CLONES, &v) || !v)
                                return -EINVAL;
                        o->max_clones = (unsigned)v;
                        break;
                case 'r':
                        o->new_root = true;
                        break;
                case 's':
                        o->seccomp = false;
                        break;
                case 'T':
                        o->test_hooks = true;
                        break;
                case 'l':
                        if (parse_uint(optarg, SPROUT_LOG_DEBUG, &v))
                                return -EINVAL;
                        sprout_log_level = (int)v;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        return -EINVAL;
                }
        }
        return o->sock >= 0 && optind == argc ? 0 : -EINVAL;
}

void worker_reply2(int sock, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
                   size_t n2)
{
        struct wire_hdr r = {.type = h->type, .seq = h->seq, .obj = h->obj};
        /* A broker that went away ends us at the next receive; nothing to do here. */
        (void)wire_send(sock, &r, p1, n1, p2, n2, -1, false);
}

void worker_reply(int sock, const struct wire_hdr *h, int status, const void *p, size_t n,
                  const char *msg)
{
        if (status < 0) {
                struct wire_hdr r = {
                    .type = h->type, .seq = h->seq, .obj = h->obj, .status = status};
                msg = msg ? msg : "";
                (void)wire_send(sock, &r, msg, strlen(msg), NULL, 0, -1, false);
                return;
        }
        worker_reply2(sock, h, p, n, NULL, 0);
}

int main(int argc, char **argv)
{
        struct worker w = {0};
        struct sprout_err err = {0};
        if (parse(argc, argv, &w.o) < 0) {
                usage(stderr);
                return 2;
        }
        /* A fixed number of malloc arenas: each clone thread would otherwise get one of its own
         * (64 MiB reserved each), and glibc sizes the arena limit the first time threads contend
         * by reading the CPU count from /sys, which the vCPU filter does not allow. */
        mallopt(M_ARENA_MAX, 4);
        /* The broker's death closes the socket, which ends the loop below. */
        signal(SIGPIPE, SIG_IGN);
        pthread_mutex_init(&w.lock, NULL);
        w.clones = calloc(w.o.max_clones, sizeof(*w.clones));
        void *buf = malloc(WIRE_MAX_PAYLOAD);
        if (!w.clones || !buf) {
                sp_err("worker (tenant %s): out of memory", w.o.tenant);
                return 1;
        }
        int r = sprout_kvm_open(&w.kvm, &err);
        if (r == 0)
                r = worker_jail(&w, &err);
        if (r == 0 && w.o.seccomp && (r = worker_seccomp_process(&err)) == 0)
                w.jailed |= 4;
        if (r < 0) {
                sp_err("worker (tenant %s): %s", w.o.tenant, err.msg);
                return 1;
        }
        struct wire_hello hello = {.pid = (uint32_t)getpid(),
                                   .host_kind = (uint32_t)sprout_kvm_host_kind(w.kvm),
                                   .jailed = w.jailed};
        struct wire_hdr h = {.type = WIRE_HELLO};
        if (wire_send(w.o.sock, &h, &hello, sizeof(hello), NULL, 0, -1, false) < 0)
                return 1;
        for (;;) {
                struct wire_msg m;
                r = wire_recv(w.o.sock, &m, buf, WIRE_MAX_PAYLOAD);
                if (r == -ECONNRESET)
                        break;
                if (r < 0) {
                        /* Only the broker can write here; a malformed message means it is not
                         * the broker we know, so stop rather than guess. */
                        sp_err("worker (tenant %s): broker message: %s", w.o.tenant, strerror(-r));
                        break;
                }
                worker_handle(&w, &m);
                wire_msg_close(&m);
        }
        worker_shutdown(&w);
        return 0;
}
