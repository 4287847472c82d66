/* Error context carried from where a failure is found to the boundary that reports it.
 * Functions return 0 or a negative errno; the first message set wins, as it is usually the root
 * cause. */
#ifndef SPROUT_ERR_H
#define SPROUT_ERR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct sprout_err {
        int code;      /* negative errno of the first failure, 0 if none */
        char msg[512]; /* human text for that failure, "" if none */
};

__attribute__((format(printf, 3, 4))) static inline int
sprout_err_set(struct sprout_err *e, int code, const char *fmt, ...)
{
        if (e && e->msg[0] == '\0') {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
                va_end(ap);
                e->code = code;
        }
        return code;
}

/* Like sprout_err_set, appending strerror(-code) to the message. */
#define sprout_err_errno(e, code, fmt, ...)                                                        \
        sprout_err_set((e), (code), fmt ": %s", ##__VA_ARGS__, strerror(-(code)))

static inline void sprout_err_clear(struct sprout_err *e)
{
        e->code = 0;
        e->msg[0] = '\0';
}

#endif
