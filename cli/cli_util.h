/* What every verb shares: its exit codes and strict number parsing. */
#ifndef SPROUT_CLI_UTIL_H
#define SPROUT_CLI_UTIL_H

#include <errno.h>
#include <stdlib.h>

/* The exit codes of every verb (see main.c's usage). */
#define CLI_EXIT_FAIL        1 /* the operation failed, or the daemon refused it */
#define CLI_EXIT_USAGE       2
#define CLI_EXIT_UNREACHABLE 3 /* no daemon answered on the socket */

/* Parses a whole decimal string within [min, max]; -EINVAL otherwise. */
static inline int cli_parse_long(const char *s, long min, long max, long *out)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end != '\0' || v < min || v > max)
                return -EINVAL;
        *out = v;
        return 0;
}

#endif
