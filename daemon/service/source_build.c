/* POST /v1/snapshots naming a function directory (handler.py) instead of a built image: the daemon
 * builds it first, as `sprout build` would, on a thread holding the client's credentials, into the
 * directory's own .sprout-image beneath the same image root (docs/api.md, "Function directories").
 * Everything the build reads or runs (the handler's own code is run, to trace its imports) is the
 * client's to read and run: it could do the same without us. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/escape.h"
#include "sprout/log.h"
#include "service.h"

/* A build runs the handler's import and its priming: seconds, or a minute for a heavy one. */
#define SOURCE_BUILD_TIMEOUT_MS 300000
/* The recipe's output kept for the message of a failed build. */
#define SOURCE_BUILD_LOG (16u << 10)

struct source_build {
        const struct sprout_image_roots *roots;
        char image[PATH_MAX];
        char out[PATH_MAX];
        bool built;
        struct sprout_err err;
        char log[SOURCE_BUILD_LOG];
};

static bool beneath(const struct sprout_image_roots *roots, const char *real)
{
        for (size_t i = 0; i < roots->n; i++) {
                size_t n = strlen(roots->paths[i]);
                if (!strncmp(real, roots->paths[i], n) && (real[n] == '/' || n == 1))
                        return true;
        }
        return false;
}

/* With the client's credentials: realpath, the roots, the kind of directory, the build. */
static int build_as_client(void *arg)
{
        struct source_build *b = arg;
        char real[PATH_MAX];
        if (!realpath(b->image, real) || !beneath(b->roots, real) || !sprout_is_function_dir(real))
                return 0; /* not a function directory it may read: the image path as it is */
        if (snprintf(b->out, sizeof(b->out), "%s/.sprout-image", real) >= (int)sizeof(b->out))
                return sprout_err_set(&b->err, -ENAMETOOLONG,
                                      "the function directory's path is "
                                      "too long");
        struct sprout_build_opts o = {.src_dir = real, .out_dir = b->out};
        int r = sprout_function_build(&o, b->log, sizeof(b->log), &b->err);
        if (r < 0)
                return r;
        b->built = true;
        return 0;
}

static void build_abandoned(void *arg, int result)
{
        (void)result;
        free(arg);
}

int source_build(struct sproutd *d, const struct sprout_creds *who, const char *image, char *out,
                 size_t outlen, struct sprout_err *err)
{
        snprintf(out, outlen, "%s", image);
        pthread_mutex_lock(&d->lock);
        bool busy = d->builds_running >= SOURCE_BUILDS_MAX;
        if (!busy)
                d->builds_running++;
        pthread_mutex_unlock(&d->lock);
        struct source_build *b = busy ? NULL : calloc(1, sizeof(*b));
        int r;
        if (busy) {
                return sprout_err_set(err, -EAGAIN, "%d function builds are running; retry later",
                                      SOURCE_BUILDS_MAX);
        } else if (!b) {
                r = sprout_err_set(err, -ENOMEM, "out of memory");
        } else {
                b->roots = &d->image_roots;
                snprintf(b->image, sizeof(b->image), "%s", image);
                r = sprout_run_as(who, SOURCE_BUILD_TIMEOUT_MS, build_as_client, build_abandoned,
                                  b);
                if (r == -ETIMEDOUT) {
                        r = sprout_err_set(err, -ETIMEDOUT,
                                           "building the function took longer than %d s",
                                           SOURCE_BUILD_TIMEOUT_MS / 1000);
                        b = NULL; /* the thread's now */
                } else if (r < 0) {
                        *err = b->err;
                        if (!err->msg[0])
                                sprout_err_set(err, r, "building the function: %s", strerror(-r));
                } else if (b->built) {
                        snprintf(out, outlen, "%s", b->out);
                        char esc[4 * 256 + 1];
                        sp_info("built the function %s for uid %u",
                                sprout_escape_str(esc, sizeof(esc), b->out, 0), (unsigned)who->uid);
                        r = 1;
                }
                free(b);
        }
        pthread_mutex_lock(&d->lock);
        d->builds_running--;
        pthread_mutex_unlock(&d->lock);
        return r;
}
