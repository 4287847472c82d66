/* Host path helpers for the image library: joining, sprout's cache directory, directory creation,
 * and files committed by rename. Internal to the image library. */
#ifndef SPROUT_IMAGE_PATHS_H
#define SPROUT_IMAGE_PATHS_H

#include "sprout/err.h"

/* rel if it is absolute, else dir/rel; malloc'd, NULL when out of memory. */
char *path_join_rel(const char *dir, const char *rel);

/* mkdir -p with mode 0755. */
int path_mkdirs(const char *dir, struct sprout_err *err);

/* A file written under a temporary name in dir and renamed to its final name by atomic_commit. */
struct atomic_file {
        int fd;
        char *tmp;   /* dir/.name.XXXXXX */
        char *final; /* dir/name */
};

int atomic_open(const char *dir, const char *name, struct atomic_file *f, struct sprout_err *err);
/* fsync, close, rename into place. On failure the temporary is removed. */
int atomic_commit(struct atomic_file *f, struct sprout_err *err);
/* Close and remove the temporary; safe after a commit or on a zeroed struct. */
void atomic_abort(struct atomic_file *f);
/* fsync a directory so the renames in it survive a crash. */
int path_fsync_dir(const char *dir, struct sprout_err *err);

#endif
