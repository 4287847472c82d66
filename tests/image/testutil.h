/* File helpers shared by the image tests: scratch directories and small files. Failures abort the
 * test program (exit 2): a test that cannot set up must not pass. */
#ifndef SPROUT_TEST_UTIL_H
#define SPROUT_TEST_UTIL_H

#include <stddef.h>

/* A new empty directory under $TMPDIR (or /tmp); malloc'd path. */
char *tu_mkdtemp(const char *tag);
/* dir/name, malloc'd. */
char *tu_path(const char *dir, const char *name);
/* Write len bytes (or strlen(text) if len is (size_t)-1) to dir/name, creating it. */
void tu_write(const char *dir, const char *name, const char *text, size_t len);
/* Read a whole file; malloc'd, NUL-terminated, *len set; NULL if it cannot be read. */
char *tu_read(const char *path, size_t *len);
/* rm -rf dir (best effort). */
void tu_rmtree(const char *dir);
/* 1 if path exists. */
int tu_exists(const char *path);

#endif
