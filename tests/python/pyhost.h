/* Helpers shared by the Python runtime's test and benchmark: running the example handler as a
 * plain host python3 process, and reading JSON responses. */
#ifndef SPROUT_TEST_PYHOST_H
#define SPROUT_TEST_PYHOST_H

#include <stddef.h>

#include <jansson.h>

/* Where the host-side pieces are (argv of the test programs). */
struct pyhost {
        const char *python;   /* Debian's interpreter, e.g. /usr/bin/python3.11 */
        const char *shim_dir; /* guest/python: sprout_shim.py */
        const char *handler;  /* examples/python/handler.py */
};

/* Runs `python -s -S -B -c 'import sprout_shim; sprout_shim.main()' HANDLER --once EVENT` with the
 * guest's environment and returns its stdout (malloc'd, NUL-terminated, trailing newline removed),
 * or NULL if it could not run or failed. *ns gets the wall time from spawn to exit if ns != NULL.
 */
char *pyhost_once(const struct pyhost *h, const char *event, long long *ns);

/* Runs `python -s -S -B -c pass` (interpreter start and exit only); returns its wall time in ns,
 * or -1. */
long long pyhost_bare(const struct pyhost *h);

/* Parses a response; NULL (and a message on stderr naming what) if it is not a JSON object. */
json_t *pyhost_parse(const char *what, const void *resp, size_t len);

/* The string at a dotted path ("error.type") of a JSON object, or "" if there is none. */
const char *pyhost_str(json_t *root, const char *path);

/* The integer at a dotted path, or -1. */
long long pyhost_int(json_t *root, const char *path);

#endif
