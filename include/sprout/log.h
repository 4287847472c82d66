/* One-line-per-event logging to stderr with a level; file and line are added for debug builds'
 * sake. */
#ifndef SPROUT_LOG_H
#define SPROUT_LOG_H

#include <stdio.h>

enum sprout_log_level { SPROUT_LOG_ERROR, SPROUT_LOG_WARN, SPROUT_LOG_INFO, SPROUT_LOG_DEBUG };

/* The process-wide threshold; set once by main() from flags or the environment. */
extern int sprout_log_level;

void sprout_log_emit(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define sp_log(lvl, ...)                                                                           \
        do {                                                                                       \
                if ((lvl) <= sprout_log_level)                                                     \
                        sprout_log_emit((lvl), __FILE__, __LINE__, __VA_ARGS__);                   \
        } while (0)
#define sp_err(...)   sp_log(SPROUT_LOG_ERROR, __VA_ARGS__)
#define sp_warn(...)  sp_log(SPROUT_LOG_WARN, __VA_ARGS__)
#define sp_info(...)  sp_log(SPROUT_LOG_INFO, __VA_ARGS__)
#define sp_debug(...) sp_log(SPROUT_LOG_DEBUG, __VA_ARGS__)

#endif
