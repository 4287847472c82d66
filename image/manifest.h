/* manifest.json, the built image's description for the VMM: written by the builder. Internal to the
 * image library (loading is public, in sprout/image.h). */
#ifndef SPROUT_IMAGE_MANIFEST_H
#define SPROUT_IMAGE_MANIFEST_H

#include "sprout/err.h"
#include "spec.h"

#define MANIFEST_NAME "manifest.json"
#define INITRD_NAME   "initrd.cpio"

/* Write the normalized manifest for s to fd (left open); name is for messages. */
int manifest_write(const struct image_spec *s, int fd, const char *name, struct sprout_err *err);

#endif
