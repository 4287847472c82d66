/* sprout images: building one (image.json + guest binaries -> initrd.cpio + manifest.json) and
 * loading a built image's manifest.json for the VMM. Both treat their input files as hostile. */
#ifndef SPROUT_IMAGE_H
#define SPROUT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/err.h"

#define SPROUT_IMAGE_FORMAT     1 /* "format" in manifest.json */
#define SPROUT_MEM_MIB_MIN      32
#define SPROUT_MEM_MIB_MAX      3072 /* SPROUT_RAM_MAX in abi.h */
#define SPROUT_MEM_MIB_DEFAULT  256
#define SPROUT_NAME_MAX         64   /* image names: [A-Za-z0-9._-], not starting with '.' */
#define SPROUT_CMDLINE_MAX      1024 /* the image's part; the VMM adds its own defaults */
#define SPROUT_JSON_MAX_BYTES   (1u << 20)
#define SPROUT_INITRD_MAX_BYTES (2ull << 30) /* file content; it must also fit in guest RAM */

/* An extra file for the image: the host file host_path goes to guest_path (absolute). */
struct sprout_build_file {
        const char *guest_path;
        const char *host_path;
};

/* What a build produced, for the CLI's summary line. */
struct sprout_build_stats {
        char name[SPROUT_NAME_MAX + 1];
        size_t entries;        /* cpio entries (files, dirs, links, nodes) */
        size_t files;          /* regular files among them */
        uint64_t initrd_bytes; /* size of initrd.cpio */
};

struct sprout_build_opts {
        const char *src_dir; /* holds image.json; relative host paths in it resolve against this */
        const char *out_dir; /* created if missing; gets initrd.cpio and manifest.json */
        /* The agent binary (/init). NULL: $SPROUT_AGENT, else the one built next to this library.
         */
        const char *agent_path;
        /* A static busybox. NULL: $SPROUT_BUSYBOX, else /bin/busybox. */
        const char *busybox_path;
        /* Extra files (host paths relative to the current directory); they win over image.json. */
        const struct sprout_build_file *files;
        size_t n_files;
        struct sprout_build_stats *stats; /* optional: filled on success */
};

/*
 * Build the image described by o->src_dir/image.json into o->out_dir. Both outputs are written
 * under temporary names and renamed into place, manifest.json last, so a failed build leaves any
 * previous image untouched. Returns 0 or a negative errno with err naming the file and field at
 * fault.
 */
int sprout_image_build(const struct sprout_build_opts *o, struct sprout_err *err);

/* Whether dir is a Python function directory: a handler.py and no image.json. */
bool sprout_is_function_dir(const char *dir);

/*
 * Builds the function directory o->src_dir (handler.py, optionally function.json: docs/python.md)
 * into o->out_dir: Debian's python3 with the modules the handler loads (its own directory's,
 * the standard library's and Debian python3-* packages'), found by tracing it on this host, plus
 * sprout's Python runtime. o->files must be empty. log gets what the recipe printed (the files it
 * shipped, or why it failed); a module that cannot be found fails the build, naming it.
 */
int sprout_function_build(const struct sprout_build_opts *o, char *log, size_t loglen,
                          struct sprout_err *err);

/* A built image, as the VMM needs it. Every string is owned by the manifest. */
struct sprout_manifest {
        char *name;
        char *kernel_path; /* absolute; "default" already resolved; the file exists */
        char *initrd_path; /* absolute; the file exists */
        char *cmdline;     /* to append to the VMM's own command line; may be "" */
        uint64_t mem_size; /* bytes */
        uint32_t vcpus;
        uint32_t abi_version; /* SPROUT_ABI_VERSION the image's guest side was built against */
        size_t argc;
        char **argv;          /* the handler's argv: argc strings, then NULL */
        char *created;        /* build time, RFC 3339 UTC */
        char *sprout_version; /* version of the sprout that built it */
        /* The kernel and the initrd, opened (read-only) when the manifest was loaded: the VMM
         * reads these and never reopens the paths. -1 when not opened (a confined load's
         * "default" kernel, which is the host's own). Closed by sprout_manifest_free. */
        int kernel_fd, initrd_fd;
};

/*
 * Load and validate a built image: path is the image directory or its manifest.json. The kernel
 * "default" resolves to $SPROUT_KERNEL, else <cache>/kernel/default (see sprout_cache_dir). On
 * success *out is the caller's to free with sprout_manifest_free; on failure *out is NULL.
 */
int sprout_manifest_load(const char *path, struct sprout_manifest **out, struct sprout_err *err);
void sprout_manifest_free(struct sprout_manifest *m);

/* Where a daemon may open files its clients name: directories, each opened once (O_PATH) with
 * its canonical path. */
#define SPROUT_IMAGE_ROOTS_MAX 8
struct sprout_image_roots {
        size_t n;
        int fds[SPROUT_IMAGE_ROOTS_MAX];
        char paths[SPROUT_IMAGE_ROOTS_MAX][4096];
};

/* Opens the roots of a colon-separated list of absolute directory paths. */
int sprout_image_roots_open(struct sprout_image_roots *r, const char *list, struct sprout_err *err);
void sprout_image_roots_close(struct sprout_image_roots *r);

/*
 * sprout_manifest_load for an image a client named (docs/api.md, "Files a request names"): image is
 * the absolute path of an image directory beneath one of roots, and every file (the directory, its
 * manifest.json, the initrd, a kernel given by path) is opened beneath a root with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), O_NONBLOCK, and must be a
 * regular file. A file that cannot be used gets the same message whatever the reason (absent,
 * unreadable, a symlink, a FIFO, outside the roots), and no message quotes a file's content. Run it
 * with the client's credentials (sprout_run_as), so the client's rights decide what it can read.
 */
int sprout_manifest_load_confined(const struct sprout_image_roots *roots, const char *image,
                                  struct sprout_manifest **out, struct sprout_err *err);

/* sprout's cache directory: $SPROUT_CACHE_DIR, else $XDG_CACHE_HOME/sprout, else
 * $HOME/.cache/sprout. */
int sprout_cache_dir(char *buf, size_t len, struct sprout_err *err);

/* The path "default" kernel means: $SPROUT_KERNEL, else <cache>/kernel/default (may not exist). */
int sprout_default_kernel_path(char *buf, size_t len, struct sprout_err *err);

#endif
