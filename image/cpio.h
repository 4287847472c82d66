/* Writing the initramfs tree as an uncompressed cpio newc archive. Internal to the image lib. */
#ifndef SPROUT_IMAGE_CPIO_H
#define SPROUT_IMAGE_CPIO_H

#include "sprout/err.h"
#include "tree.h"

/* Write every node of the sorted tree t to fd (left open) in node order. */
int cpio_write(const struct tree *t, int fd, const char *name, struct sprout_err *err);

#endif
