/* What a verb that takes an IMAGE accepts: a built image, or a function directory that it builds
 * first (docs/python.md, "Your own function"). */
#ifndef SPROUT_CLI_SOURCE_H
#define SPROUT_CLI_SOURCE_H

#include <stddef.h>

/*
 * Resolves arg to a built image directory in out (absolute). A built image is used as it is. A
 * Python function directory is built into build_root/NAME (NAME: its directory's name), progress on
 * stderr; with build_root NULL it is refused. An image.json source is refused with how to build it.
 * Returns 0, or a CLI exit status with the reason printed, prefixed by verb.
 */
int cli_image_from(const char *verb, const char *arg, const char *build_root, char *out,
                   size_t outlen);

#endif
