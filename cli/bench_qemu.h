/* QEMU as the peer in benchmarks: the same guest booted by qemu-system-x86_64 -M microvm. */
#ifndef SPROUT_BENCH_QEMU_H
#define SPROUT_BENCH_QEMU_H

#include "sprout/err.h"
#include "sprout/image.h"

/*
 * Boots the image's kernel and initrd under QEMU (microvm, KVM, the same CPU profile and command
 * line as sprout) until the guest first writes the sprout doorbell port, which QEMU's
 * isa-debug-exit device turns into QEMU exiting. *seconds is the wall time from spawn to exit.
 */
int qemu_boot_to_doorbell(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                          double *seconds, struct sprout_err *err);

#endif
