/* Filling the initramfs tree from the host: a rootfs directory, busybox and its applets, single
 * files. Internal to the image library. */
#ifndef SPROUT_IMAGE_FILL_H
#define SPROUT_IMAGE_FILL_H

#include "sprout/err.h"
#include "tree.h"

/* Copy the host directory dir, recursively, under the guest root (symlinks as symlinks). */
int fill_rootfs(struct tree *t, const char *dir, struct sprout_err *err);

/* A static busybox at /bin/busybox, plus a symlink per applet from `busybox --list-full`. */
int fill_busybox(struct tree *t, const char *busybox, struct sprout_err *err);

/* One host file at guest_path, keeping its permission bits (less set-id) and mtime. */
int fill_file(struct tree *t, const char *guest_path, const char *host, enum tnode_prio prio,
              struct sprout_err *err);

/* Check that path is an ELF executable with no program interpreter (i.e. statically linked). */
int fill_check_static_elf(const char *path, const char *what, struct sprout_err *err);

#endif
