/* What the image builder writes into an initramfs for the guest agent to read: shared by the
 * builder (host) and the agent (guest), so both enforce the same limits. */
#ifndef SPROUT_INITRAMFS_H
#define SPROUT_INITRAMFS_H

/* NUL-terminated strings back to back: the handler's argv, and its environment as NAME=VALUE. */
#define SPROUT_INITRD_ARGV "/sprout/argv"
#define SPROUT_INITRD_ENV  "/sprout/env"

/* Limits on each list file, checked by the builder and again by the agent. */
#define SPROUT_LIST_MAX_BYTES   16384
#define SPROUT_LIST_MAX_ENTRIES 256

#endif
