/* Snapshot files: a versioned header, opaque tagged state sections and guest RAM in independent
 * zstd chunks with all-zero pages left out. This library stores and loads them; it never interprets
 * sections. The on-disk layout is described in docs/snapshot-format.md. */
#ifndef SPROUT_SNAPSHOT_H
#define SPROUT_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "sprout/err.h"

#define SNAP_FORMAT_MAJOR 1
#define SNAP_FORMAT_MINOR 1 /* 1.1 adds the authenticator; files without one are written as 1.0 */

/* Limits: snap_write() refuses to exceed them and snap_open() checks a file against them before it
 * allocates anything, so a hostile file cannot make the reader allocate more than these allow. */
#define SNAP_PAGE_SIZE          4096u
#define SNAP_MAX_RAM            (64ULL << 30)
#define SNAP_MAX_VCPUS          64u
#define SNAP_MAX_SECTIONS       1024u
#define SNAP_MAX_SECTION_LEN    (64ULL << 20)
#define SNAP_MAX_SECTIONS_BYTES (256ULL << 20) /* all sections with their prefixes and padding */
#define SNAP_MIN_CHUNK          (64u << 10)
#define SNAP_MAX_CHUNK          (64u << 20)
#define SNAP_DEFAULT_CHUNK      (2u << 20)
#define SNAP_DEFAULT_ZSTD_LEVEL 3
#define SNAP_MAX_THREADS        256u

/* The key of the snapshot authenticator (keyed BLAKE2b-256, libsodium): whoever holds it can write
 * files a keyed reader accepts, so it is as secret as the snapshots are trusted. */
#define SNAP_KEY_BYTES 32u
#define SNAP_TAG_BYTES 32u
struct snap_key {
        uint8_t k[SNAP_KEY_BYTES];
};

/* Facts about the host that took the snapshot, stored for the restoring side to compare. */
struct snap_host_facts {
        uint32_t host_kind;  /* caller-defined (e.g. plain KVM vs PVM) */
        char cpu_vendor[16]; /* NUL-terminated, e.g. "GenuineIntel" */
        uint32_t family, model, stepping;
        uint32_t kvm_api; /* KVM_GET_API_VERSION */
};

/* One state section. Several may share a tag (one per vCPU, say); they keep their order. */
struct snap_section {
        uint32_t tag;   /* the caller's; not interpreted */
        uint32_t flags; /* the caller's; not interpreted */
        const void *data;
        uint64_t len; /* <= SNAP_MAX_SECTION_LEN; 0 is allowed */
};

struct snap_write_opts {
        const char *path;    /* final name; written as .NAME.tmp.XXXXXX beside it, then renamed */
        const uint8_t *uuid; /* 16 bytes, or NULL to generate a random one */
        int zstd_level;      /* 0: SNAP_DEFAULT_ZSTD_LEVEL; negative levels are zstd's fast modes */
        uint32_t
            chunk_size;   /* 0: SNAP_DEFAULT_CHUNK; else a power of two in [MIN_CHUNK, MAX_CHUNK] */
        unsigned threads; /* compression threads; 0: one per online CPU */
        struct snap_host_facts host;
        uint32_t vcpus;                      /* 1..SNAP_MAX_VCPUS */
        const struct snap_section *sections; /* nsections entries, stored in this order */
        unsigned nsections;
        const void *ram;   /* guest RAM, only read */
        uint64_t ram_size; /* a multiple of SNAP_PAGE_SIZE, at most SNAP_MAX_RAM */
        /* Called on the calling thread after each chunk is queued; a non-zero return cancels the
         * write with -ECANCELED. May be NULL. */
        int (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
        void *progress_ctx;
        /* NULL: no authenticator (a format 1.0 file). Else the file carries tags under this key
         * and is format 1.1. */
        const struct snap_key *key;
};

struct snap_write_stats {
        uint64_t file_size;
        uint64_t ram_size;
        uint64_t nonzero_bytes; /* RAM bytes in non-zero pages: what was compressed */
        uint64_t chunks;        /* chunks stored (all-zero chunks are not) */
        double seconds;         /* wall time of the whole write, fsyncs included */
};

/* Write a snapshot. The file appears under o->path only complete and fsynced (an existing file of
 * that name is replaced atomically); on any failure the temporary file is removed and nothing is
 * left. */
int snap_write(const struct snap_write_opts *o, struct snap_write_stats *st,
               struct sprout_err *err);

struct snap_file;

/* Open a snapshot and validate its header, sections and chunk index (not the chunk data: see
 * snap_verify). Section data is read into memory; pointers returned below live until snap_close.
 * An open snap_file is never modified, so loads, verifies and lookups may run on several threads at
 * once; snap_close must come after all of them. */
int snap_open(const char *path, struct snap_file **out, struct sprout_err *err);
/* snap_open, and with a non-NULL key the file must carry an authenticator made with that key: the
 * header, sections and index tags are checked here, before the sections and the index are parsed,
 * and every chunk's tag by snap_load_ram and snap_verify before the chunk is decompressed. A file
 * without an authenticator is refused (-ENOKEY), one under another key (-EKEYREJECTED) and an
 * edited one (-EBADMSG), each message naming the part whose tag failed. The key is copied. */
int snap_open_keyed(const char *path, const struct snap_key *key, struct snap_file **out,
                    struct sprout_err *err);
void snap_close(struct snap_file *f);

struct snap_info {
        uint8_t uuid[16];
        uint16_t major, minor;
        uint64_t created_ns; /* CLOCK_REALTIME at write */
        struct snap_host_facts host;
        uint64_t ram_size;
        uint32_t vcpus;
        uint32_t chunk_size;
        uint64_t nchunks;          /* chunks stored in the file */
        uint64_t nonzero_pages;    /* pages stored in the file */
        uint64_t compressed_bytes; /* sum of the chunk frames */
        uint64_t file_size;
        unsigned nsections;
        bool authenticated; /* the file carries an authenticator (checked only under a key) */
        bool key_checked;   /* opened with a key: the header, sections and index tags matched */
        uint8_t key_id[8];  /* a keyed hash naming the key (not revealing it); 0 without one */
};

const struct snap_info *snap_get_info(const struct snap_file *f);

/* The nth (from 0) section carrying tag; -ENOENT if there is none. Data is 8-byte aligned. */
int snap_section(const struct snap_file *f, uint32_t tag, unsigned nth, struct snap_section *out);
/* The ith section in file order, for iteration; -ENOENT past the end. */
int snap_section_at(const struct snap_file *f, unsigned i, struct snap_section *out);

struct snap_load_stats {
        uint64_t read_bytes;    /* compressed bytes read from the file */
        uint64_t written_bytes; /* decompressed bytes written into the memfd */
        double seconds;         /* wall time, memfd creation to sealing */
        double mb_per_s;        /* RAM size / seconds, in MiB/s */
        unsigned threads;
};

/* Decompress RAM into a new memfd of ram_size bytes (zero pages stay holes), verifying every chunk,
 * then seal it (F_SEAL_WRITE|SHRINK|GROW|SEAL). threads 0: one per online CPU. On success *memfd is
 * the caller's to close; clones map it MAP_PRIVATE. On failure *memfd is -1. Note that a read fault
 * on a hole (a clone reading a zero page) allocates a shared zero page in the memfd. */
int snap_load_ram(struct snap_file *f, unsigned threads, int *memfd, struct snap_load_stats *st,
                  struct sprout_err *err);

/* Decompress every chunk and check every checksum without keeping the data. On failure the message
 * names the lowest-numbered bad chunk. */
int snap_verify(struct snap_file *f, struct sprout_err *err);

/* Import: writes to path a copy of f (opened with or without a key) authenticated under key. Every
 * chunk is read once, checked as snap_verify checks it and decompressed, and the bytes that passed
 * are the ones copied, so a file changing under the import cannot slip anything past it. The copy
 * keeps the UUID, the creation time, the sections and the frames; it appears only complete, as
 * snap_write's files do. */
int snap_import(struct snap_file *f, const struct snap_key *key, const char *path,
                struct snap_write_stats *st, struct sprout_err *err);

/* The key's identifier as stored in the header (a keyed hash of a constant: it names the key
 * without revealing it). */
void snap_key_id(const struct snap_key *key, uint8_t id[8]);

/* A key file: SNAP_KEY_BYTES random bytes, mode 0600, owned by the caller's effective uid. Loads
 * path; if it does not exist and create is set, makes it first (random bytes written to a fresh
 * temporary file, fsynced, then linked into place, so a crash or a concurrent creator never leaves
 * a short key behind). Refuses a symlink, a file other than a regular one, another owner, any
 * group or other permission, or a size other than SNAP_KEY_BYTES. *created says whether this call
 * made it (may be NULL). */
int snap_key_file_load(const char *path, bool create, struct snap_key *key, bool *created,
                       struct sprout_err *err);
/* Overwrites a key in memory (sodium_memzero: not optimised away). */
void snap_key_wipe(struct snap_key *key);

#endif
