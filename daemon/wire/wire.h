/* The broker <-> worker protocol (docs/workers.md): SOCK_SEQPACKET sockets, one per worker for its
 * control requests and one per clone for that clone's requests, one message per request or reply,
 * descriptors passed with SCM_RIGHTS. Both ends link this; each end checks every message it
 * receives, and the broker treats a worker's as hostile. */
#ifndef SPROUT_WIRE_H
#define SPROUT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC   0x4b525753u /* "SWRK" */
#define WIRE_VERSION 3u

/* A request or reply payload fits in one message: the largest is a response or request (the
 * mailbox's 508 KiB) or a clone's log (256 KiB escaped). Both socket ends are sized for it. */
#define WIRE_MAX_PAYLOAD (600u * 1024u)
#define WIRE_SOCKBUF     (2u * 1024u * 1024u)
/* A clone's socket carries one request or reply at a time: a buffer of one message bounds what a
 * hostile worker can leave queued there (the kernel also caps the queue at max_dgram_qlen
 * messages). */
#define WIRE_CLONE_SOCKBUF (WIRE_MAX_PAYLOAD + 128u * 1024u)
#define WIRE_MAX_FDS       1u

enum wire_type {
        WIRE_HELLO = 1, /* worker -> broker, once at start: struct wire_hello */
        WIRE_BASE_ADD,  /* + the base's memfd: struct wire_base_add, then the sections */
        WIRE_BASE_DROP, /* the base slot in hdr.obj */
        WIRE_CLONE_NEW, /* + the clone's socket: struct wire_clone_new; reply wire_clone_made */
        /* These three travel on the clone's own socket, never on the worker's: */
        WIRE_CLONE_INVOKE, /* struct wire_invoke, then the request; reply the response */
        WIRE_CLONE_LOG,    /* reply: the clone's log text */
        WIRE_CLONE_DROP,   /* destroy; the reply comes after the teardown */
        WIRE_CLONE_MEMORY, /* payload: uint32 clone slots; reply: uint64 private bytes each */
        WIRE_POOLS,        /* worker -> broker, unsolicited (seq 0): struct wire_pools */
        WIRE_TYPE_END,
};

/* Every message starts with this. A reply carries its request's type and seq; status is 0 or a
 * negative errno, and a failed reply's payload is the error message (text, not NUL-terminated). */
struct wire_hdr {
        uint32_t magic;
        uint16_t version;
        uint16_t type;
        uint32_t seq; /* the broker's request number; 0 for HELLO */
        uint32_t obj; /* the base or clone slot the request is about */
        int32_t status;
        uint32_t len; /* payload bytes after the header */
};

struct wire_hello {
        uint32_t pid; /* as the worker sees itself (1 in its own pid namespace) */
        uint32_t host_kind;
        uint32_t jailed; /* bit 0 namespaces, bit 1 uid dropped, bit 2 seccomp */
        uint32_t reserved;
};

struct wire_section {
        uint32_t tag;
        uint32_t len;
};

#define WIRE_MAX_SECTIONS 8

struct wire_base_add {
        uint8_t uuid[16];
        uint64_t ram_size;
        uint32_t host_kind; /* what the snapshot recorded */
        uint32_t nsections;
        uint32_t pool_shells, pool_ready;
        uint32_t recycle;        /* 0: released clones are destroyed (sproutd --recycle 0) */
        uint32_t pool_ready_max; /* the ready pool grows with demand up to this (>= pool_ready) */
        uint32_t
            prefault_shells; /* 1: the working set goes into shells (sproutd --prefault-shells) */
        struct wire_section sections[WIRE_MAX_SECTIONS]; /* then each section's bytes, in order */
};

struct wire_clone_new {
        uint32_t base;
        uint32_t take_ready; /* a one-shot may be served by a ready clone */
};

struct wire_clone_made {
        uint8_t uuid[16];
        uint64_t restore_ns;
        uint32_t pooled, ready;
        uint32_t shells_left, ready_left; /* the worker's pools of this base, after */
        uint32_t generation;              /* a ready clone's recycles (sprout_clone_generation) */
        uint32_t reserved;
};

/* What a worker keeps ready of the base in hdr.obj, sent whenever its pool thread has filled. */
struct wire_pools {
        uint32_t shells, ready;
};

#define WIRE_INVOKE_LOG     1u /* wire_invoke.flags: answer the call's log too */
#define WIRE_INVOKE_LOG_MAX (64u * 1024u)
struct wire_invoke {
        int64_t timeout_ms;
        uint32_t flags;
        uint32_t reserved;
};
/* With WIRE_INVOKE_LOG, a reply's payload is this, log_len bytes of the log the call wrote
 * (escaped, at most WIRE_INVOKE_LOG_MAX: the newest), then the response. */
struct wire_invoke_log {
        uint32_t log_len;
        uint32_t lost; /* some of the call's log is not in it */
};

/* A received message: the header, a malloc'd payload (NULL when empty) and the fd, if one came. */
struct wire_msg {
        struct wire_hdr hdr;
        void *payload;
        int fd;
};

/* A connected SOCK_SEQPACKET pair (close-on-exec) with bufsz-byte buffers (WIRE_SOCKBUF or
 * WIRE_CLONE_SOCKBUF): forced past wmem_max where the caller may (a broker running as root),
 * else as much as the host's limits allow. 0 or -errno. */
int wire_socketpair(int sv[2], int bufsz);

/* Sends one message: the header, up to two payload parts, and fd (-1 for none). 0 or -errno
 * (-EPIPE when the peer is gone; -EAGAIN, with nowait, when its socket buffer is full). */
int wire_send(int sock, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
              size_t n2, int fd, bool nowait);
/* Receives one message into m and checks its framing (magic, version, type, length, at most one
 * fd; anything else is closed and refused with -EPROTO). 0, -ECONNRESET at end of stream, or
 * -errno. buf (cap bytes, at most WIRE_MAX_PAYLOAD) receives the payload; m->payload points into
 * it. A message longer than cap is refused (-EPROTO). */
int wire_recv(int sock, struct wire_msg *m, void *buf, size_t cap);
/* The payload length of the message waiting on sock, without taking it (the caller sizes a buffer
 * to it): >= 0, -ECONNRESET at end of stream, -EPROTO for one shorter than a header, or -errno. */
long wire_peek_len(int sock);
void wire_msg_close(struct wire_msg *m);
/* Takes the waiting message off sock without its payload (one that cannot be read for want of
 * memory), so the stream stays in step; *h is its header, unchecked but for magic and version.
 * 0, -ECONNRESET at end of stream, -EPROTO, or -errno. */
int wire_drain(int sock, struct wire_hdr *h);
const char *wire_type_name(unsigned type);

#endif
