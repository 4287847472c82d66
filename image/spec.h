/* The source manifest, image.json, parsed and validated: what the builder packs. Internal to the
 * image library. */
#ifndef SPROUT_IMAGE_SPEC_H
#define SPROUT_IMAGE_SPEC_H

#include <stddef.h>

#include "sprout/err.h"

struct spec_file {
        char *guest; /* canonical absolute guest path */
        char *host;  /* host path, relative ones joined to the image directory */
};

struct image_spec {
        char *json_path; /* SRC/image.json, for messages */
        char *name;
        char *kernel; /* "default" or an absolute host path that exists */
        char *cmdline;
        unsigned memory_mib;
        unsigned vcpus;
        char **argv; /* NULL-terminated */
        size_t argc;
        char **env; /* NAME=VALUE strings, NULL-terminated */
        size_t nenv;
        struct spec_file *files;
        size_t nfiles;
        char *rootfs; /* host directory or NULL */
        int busybox;  /* 1: pack busybox and its applets (the default) */
};

/* Parse and check src_dir/image.json, including that every host file it names exists. */
int spec_load(const char *src_dir, struct image_spec *s, struct sprout_err *err);
void spec_free(struct image_spec *s);

/* 1 if path is an absolute guest path with no empty, "." or ".." component, at most 4095 bytes and
 * not "/". */
int spec_guest_path_ok(const char *path);

/* 1 if the guest path belongs to sprout (/init, /sprout and below). */
int spec_guest_path_reserved(const char *path);

/* Check that host names a readable regular file (following symlinks); label says who named it. */
int spec_check_host_file(const char *host, const char *label, struct sprout_err *err);

#endif
