/* A Python function directory (handler.py, optionally function.json) into an image: the Python
 * runtime's recipe (guest/python/mkimage.py) stages a rootfs in a scratch directory, then the
 * ordinary builder packs it (docs/python.md, "Your own function"). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sprout/fileio.h"
#include "sprout/image.h"

extern char **environ;

#ifndef SPROUT_PY_BUILD_DIR
#error "SPROUT_PY_BUILD_DIR (the Python runtime's source directory) must come from the build"
#endif

/* What the recipe prints is kept up to this much; its last line says what went wrong. */
#define RECIPE_OUTPUT_MAX (64u << 10)

bool sprout_is_function_dir(const char *dir)
{
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof(p), "%s/image.json", dir);
        if (stat(p, &st) == 0)
                return false;
        snprintf(p, sizeof(p), "%s/handler.py", dir);
        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The Python runtime's files: this build's (the source tree's recipe and shim, the built
 * extension), or, for an installed sprout whose build tree is gone, the installed copies. */
static int find_runtime(char *recipe, char *shim, char *ext, struct sprout_err *err)
{
        const char *dirs[] = {SPROUT_PY_BUILD_DIR, SPROUT_PY_INSTALLED_DIR};
        const char *exts[] = {SPROUT_PY_BUILD_EXT, SPROUT_PY_INSTALLED_DIR "/" SPROUT_PY_EXT_NAME};
        for (int i = 0; i < 2; i++) {
                snprintf(recipe, PATH_MAX, "%s/mkimage.py", dirs[i]);
                snprintf(shim, PATH_MAX, "%s/sprout_shim.py", dirs[i]);
                snprintf(ext, PATH_MAX, "%s", exts[i]);
                if (access(recipe, R_OK) == 0 && access(shim, R_OK) == 0 && access(ext, R_OK) == 0)
                        return 0;
        }
        return sprout_err_set(err, -ENOENT,
                              "the Python runtime is not here (looked in %s and %s): install "
                              "sprout, or build it",
                              SPROUT_PY_BUILD_DIR, SPROUT_PY_INSTALLED_DIR);
}

/* The line of the recipe's output that says what failed ("mkimage: ..."), into err. */
static int recipe_failed(const char *out, int status, struct sprout_err *err)
{
        const char *line = strstr(out, "mkimage: ");
        if (!line)
                return sprout_err_set(err, -EINVAL, "the Python recipe failed (status %d): %.400s",
                                      status, out);
        size_t n = strcspn(line + 9, "\n");
        return sprout_err_set(err, -EINVAL, "%.*s", (int)(n > 480 ? 480 : n), line + 9);
}

static int run_recipe(const char *fn_dir, const char *src, char *out, size_t outlen,
                      struct sprout_err *err)
{
        char recipe[PATH_MAX], shim[PATH_MAX], ext[PATH_MAX];
        int r = find_runtime(recipe, shim, ext, err);
        if (r < 0)
                return r;
        char *argv[] = {SPROUT_PYTHON_PATH,
                        recipe,
                        "--function-dir",
                        (char *)fn_dir,
                        "--shim",
                        shim,
                        "--ext",
                        ext,
                        "--out",
                        (char *)src,
                        NULL};
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return sprout_err_errno(err, -errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
        /* The recipe runs the handler's own code (to trace its imports), in sproutd as the
         * client (POST /v1/snapshots): it must inherit none of the daemon's descriptors, even one
         * opened without O_CLOEXEC. */
        posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
        pid_t pid;
        r = -posix_spawn(&pid, SPROUT_PYTHON_PATH, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                return sprout_err_errno(err, r, "running %s", SPROUT_PYTHON_PATH);
        }
        char *text = NULL;
        size_t len = 0;
        int rr = sprout_read_capped(p[0], RECIPE_OUTPUT_MAX, &text, &len);
        close(p[0]);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        snprintf(out, outlen, "%s", rr == 0 ? text : "");
        free(text);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return recipe_failed(out, WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

int sprout_function_build(const struct sprout_build_opts *o, char *log, size_t loglen,
                          struct sprout_err *err)
{
        char tmp[] = "/tmp/sprout-function-XXXXXX", src[64];
        if (!mkdtemp(tmp))
                return sprout_err_errno(err, -errno, "a scratch directory");
        snprintf(src, sizeof(src), "%s/src", tmp);
        int r = run_recipe(o->src_dir, src, log, loglen, err);
        if (r == 0) {
                struct sprout_build_opts b = *o;
                b.src_dir = src;
                r = sprout_image_build(&b, err);
        }
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}
