/* Shared helpers of the snapshot tests: a scratch directory, deterministic RAM contents, whole-file
 * I/O and re-sealing checksums of forged files. Counting checks is tests/common/check.h's job. */
#ifndef SPROUT_SNAP_TEST_H
#define SPROUT_SNAP_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot_format.h"
#include "sprout/snapshot.h"

/* A fresh directory under $TMPDIR (or /tmp) and its removal with the files in it. */
const char *t_tmpdir(const char *tag);
void t_rmdir(const char *dir);
int t_count_entries(const char *dir); /* entries other than . and .. */
int t_count_fds(void);

uint64_t t_rand(uint64_t *state);
void t_fill_random(void *p, size_t n, uint64_t seed);
/* Text-like page: words from a small vocabulary, so it compresses like real memory does. */
void t_fill_text(void *p, size_t n, uint64_t seed);

uint8_t *t_slurp(const char *path, size_t *len);
int t_spit(const char *path, const void *buf, size_t len);

/* Recompute index_checksum and header_checksum of a whole file image after a test forged it. */
void t_reseal(uint8_t *file);
static inline struct snap_fmt_header *t_hdr(uint8_t *file)
{
        return (struct snap_fmt_header *)file;
}
static inline struct snap_fmt_entry *t_entry(uint8_t *file, uint64_t i)
{
        struct snap_fmt_header *h = t_hdr(file);
        return (struct snap_fmt_entry *)(file + h->index_off + i * h->index_entry_size);
}

/* Default write options for tests: one vCPU, fixed host facts. */
struct snap_write_opts t_opts(const char *path, const void *ram, uint64_t ram_size);

bool t_contains(const char *haystack, const char *needle);

#endif
