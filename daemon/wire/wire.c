/* Framing of the broker <-> worker protocol (wire.h): one message per sendmsg on a SOCK_SEQPACKET
 * socket, so a message is never split or merged, and descriptors ride in SCM_RIGHTS. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sprout/abi.h"
#include "wire.h"

_Static_assert(SPROUT_MB_REQ_SIZE + sizeof(struct wire_invoke) <= WIRE_MAX_PAYLOAD &&
                   SPROUT_MB_RESP_SIZE + sizeof(struct wire_invoke_log) + WIRE_INVOKE_LOG_MAX <=
                       WIRE_MAX_PAYLOAD,
               "a request, or a response with its call's log, fits one message");

const char *wire_type_name(unsigned type)
{
        static const char *const names[] = {
            [WIRE_HELLO] = "hello",           [WIRE_BASE_ADD] = "base-add",
            [WIRE_BASE_DROP] = "base-drop",   [WIRE_CLONE_NEW] = "clone-new",
            [WIRE_CLONE_INVOKE] = "invoke",   [WIRE_CLONE_LOG] = "log",
            [WIRE_CLONE_DROP] = "clone-drop", [WIRE_CLONE_MEMORY] = "memory",
            [WIRE_POOLS] = "pools",
        };
        return type < WIRE_TYPE_END && names[type] ? names[type] : "unknown";
}

int wire_socketpair(int sv[2], int bufsz)
{
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        for (int i = 0; i < 2; i++) {
                int sz = bufsz;
                if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
                if (setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
                        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        }
        return 0;
}

int wire_send(int sock, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
              size_t n2, int fd, bool nowait)
{
        struct wire_hdr hdr = *h;
        if (n1 + n2 > WIRE_MAX_PAYLOAD)
                return -EMSGSIZE;
        hdr.magic = WIRE_MAGIC;
        hdr.version = WIRE_VERSION;
        hdr.len = (uint32_t)(n1 + n2);
        struct iovec iov[3] = {
            {.iov_base = &hdr, .iov_len = sizeof(hdr)},
            {.iov_base = (void *)p1, .iov_len = n1},
            {.iov_base = (void *)p2, .iov_len = n2},
        };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
        if (fd >= 0) {
                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.buf;
                mh.msg_controllen = sizeof(ctl.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        for (;;) {
                ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0));
                if (n >= 0)
                        return (size_t)n == sizeof(hdr) + n1 + n2 ? 0 : -EPROTO;
                if (errno != EINTR)
                        return -errno;
        }
}

/* Closes every descriptor a control message carried; returns how many. */
static unsigned close_fds(struct msghdr *mh, int *first)
{
        unsigned n = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (first && n == 0)
                                *first = fd;
                        else
                                close(fd);
                        n++;
                }
        }
        return n;
}

/* Room for the descriptors a message may carry: more than one is refused, but read to be closed. */
union wire_ctl {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
};

/* One recvmsg, retried on EINTR: the bytes read, -ECONNRESET at end of stream, or -errno. */
static ssize_t recv_once(int sock, struct msghdr *mh, int flags)
{
        ssize_t n;
        do
                n = recvmsg(sock, mh, flags);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n == 0 ? -ECONNRESET : n;
}

long wire_peek_len(int sock)
{
        struct wire_hdr h;
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        /* MSG_TRUNC makes a SEQPACKET receive answer the whole message's length (Linux >= 3.4);
         * a descriptor riding on it stays queued for the real receive. recvmsg, not recv: a
         * clone's thread may make only the former (docs/workers.md, "System calls"). */
        ssize_t n = recv_once(sock, &mh, MSG_PEEK | MSG_TRUNC);
        if (n < 0)
                return (long)n;
        if ((size_t)n < sizeof(h))
                return -EPROTO;
        return (long)((size_t)n - sizeof(h));
}

int wire_recv(int sock, struct wire_msg *m, void *buf, size_t cap)
{
        union wire_ctl ctl;
        struct iovec iov[2] = {
            {.iov_base = &m->hdr, .iov_len = sizeof(m->hdr)},
            {.iov_base = buf, .iov_len = cap < WIRE_MAX_PAYLOAD ? cap : WIRE_MAX_PAYLOAD},
        };
        struct msghdr mh = {
            .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl)};
        m->payload = NULL;
        m->fd = -1;
        ssize_t n = recv_once(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return (int)n;
        int fd = -1;
        unsigned nfds = close_fds(&mh, &fd);
        bool bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(m->hdr) ||
                   m->hdr.magic != WIRE_MAGIC || m->hdr.version != WIRE_VERSION ||
                   m->hdr.type == 0 || m->hdr.type >= WIRE_TYPE_END ||
                   m->hdr.len != (size_t)n - sizeof(m->hdr) || nfds > WIRE_MAX_FDS;
        if (bad) {
                if (fd >= 0)
                        close(fd);
                return -EPROTO;
        }
        m->fd = fd;
        m->payload = m->hdr.len ? buf : NULL;
        return 0;
}

int wire_drain(int sock, struct wire_hdr *h)
{
        struct iovec iov = {.iov_base = h, .iov_len = sizeof(*h)};
        union wire_ctl ctl;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl)};
        ssize_t n = recv_once(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return (int)n;
        (void)close_fds(&mh, NULL);
        return (size_t)n == sizeof(*h) && h->magic == WIRE_MAGIC && h->version == WIRE_VERSION
                   ? 0
                   : -EPROTO;
}

void wire_msg_close(struct wire_msg *m)
{
        if (m->fd >= 0)
                close(m->fd);
        m->fd = -1;
}
