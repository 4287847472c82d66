/* The initramfs being assembled: guest paths mapped to what goes there, with priorities deciding
 * who wins a path and symlinked directories followed as the kernel would when unpacking. Internal
 * to the image library. */
#ifndef SPROUT_IMAGE_TREE_H
#define SPROUT_IMAGE_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/err.h"

enum tnode_type { TN_DIR, TN_FILE, TN_DATA, TN_SYMLINK, TN_CHR, TN_BLK, TN_FIFO };

/* Who put an entry there; a higher priority replaces a lower one at the same path. */
enum tnode_prio {
        PRIO_PARENT = 0,  /* a directory made only to hold something */
        PRIO_SKELETON,    /* /dev, /proc, ... and /dev/console */
        PRIO_BUSYBOX,     /* busybox and its applet links fill gaps only */
        PRIO_ROOTFS,      /* the image's "rootfs" */
        PRIO_FILES,       /* the image's "files" */
        PRIO_EXTRA_FILES, /* --file from the command line */
        PRIO_SPROUT,      /* /init and /sprout/ lists: never overridden */
};

struct tnode {
        char *path; /* canonical, relative to the guest root ("bin/sh") */
        enum tnode_type type;
        enum tnode_prio prio;
        unsigned mode;           /* permission bits only */
        int64_t mtime;           /* seconds; kept from host files so .pyc checks still match */
        char *src;               /* TN_FILE: host path */
        uint64_t size;           /* TN_FILE: size when added; TN_DATA: len of data */
        char *data;              /* TN_DATA: owned bytes; TN_SYMLINK: target */
        unsigned rmajor, rminor; /* TN_CHR, TN_BLK */
        size_t children;         /* TN_DIR: entries directly below */
};

struct tree {
        struct tnode **nodes;
        size_t n, cap;
        size_t *slots; /* open-addressing hash of node indexes; SIZE_MAX = empty */
        size_t nslots;
        uint64_t file_bytes; /* total TN_FILE and TN_DATA bytes */
};

/* Which entries tree_add is handed. Strings are copied. */
struct tnode_spec {
        const char *path; /* guest path, absolute or relative, canonical components */
        enum tnode_type type;
        enum tnode_prio prio;
        unsigned mode;
        int64_t mtime;
        const char *src;  /* TN_FILE */
        uint64_t size;    /* TN_FILE, TN_DATA */
        const void *data; /* TN_DATA bytes, TN_SYMLINK target (a string) */
        unsigned rmajor, rminor;
};

void tree_init(struct tree *t);
void tree_free(struct tree *t);

/*
 * Add an entry. Parent directories that are symlinks in the tree are followed; missing parents are
 * created. A lower-priority entry than the one already at the final path is dropped (return 0).
 * Errors: a non-directory in the way of the path, a symlink loop, a file replacing a non-empty
 * directory, limits; the message names the path.
 */
int tree_add(struct tree *t, const struct tnode_spec *s, struct sprout_err *err);

/*
 * What the guest will find at path (absolute or relative), following symlinks everywhere, the last
 * component included; NULL if nothing, a dangling link or a loop.
 */
const struct tnode *tree_find(const struct tree *t, const char *path);

/* Lookup by canonical relative path; NULL if absent. */
struct tnode *tree_get(const struct tree *t, const char *path);

/* Sort the nodes by path, which puts every directory before what it holds. Ends lookups. */
void tree_sort(struct tree *t);

#endif
