/* The process-wide logger behind sp_log(): one line per event on stderr, with level, time and
 * origin. Every message is escaped here, so no caller can let guest or client text end a line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sprout/escape.h"
#include "sprout/log.h"

int sprout_log_level = SPROUT_LOG_WARN;

void sprout_log_emit(int level, const char *file, int line, const char *fmt, ...)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};
        char msg[1024], esc[4 * sizeof(msg)];
        struct timespec ts;
        va_list ap;
        const char *base = strrchr(file, '/');

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* Arguments carry URLs, paths and guest text: a newline, ESC or invalid UTF-8 in one would
         * forge a line or drive the terminal that reads the log. */
        sprout_escape(esc, sizeof(esc), msg, strlen(msg), 0);
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        /* One fprintf per line so concurrent threads never interleave within a line. */
        fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s:%d %s\n", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                names[level < 0   ? 0
                      : level > 3 ? 3
                                  : level],
                base ? base + 1 : file, line, esc);
}
