/* QEMU as the peer in benchmarks: the same guest booted by qemu-system-x86_64 -M microvm. */
#ifndef SPROUT_BENCH_QEMU_H
#define SPROUT_BENCH_QEMU_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sprout/err.h"
#include "sprout/image.h"

struct qmp {
        int fd;
        size_t len;
        char buf[65536];
};

/* Connects to QEMU's QMP socket (retrying until QEMU has made it) and negotiates capabilities. */
int qmp_connect(struct qmp *q, const char *path, int64_t timeout_ms);
/* Sends one command (JSON text with CRLF) and returns its answer ("return" or "error"), or NULL. */
json_t *qmp_command(struct qmp *q, const char *json_cmd, int64_t timeout_ms);
void qmp_close(struct qmp *q);

/*
 * Boots the image's kernel and initrd under QEMU (microvm, KVM, the same CPU profile and command
 * line as sprout) until the guest first writes the sprout doorbell port, which QEMU's
 * isa-debug-exit device turns into QEMU exiting. *seconds is the wall time from spawn to exit.
 */
int qemu_boot_to_doorbell(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                          double *seconds, struct sprout_err *err);

/*
 * QEMU's restore of the same guest: boots the image under QEMU until its first doorbell write (an
 * isa-debugcon on the doorbell port records it), saves the VM to a migration file, then n times
 * starts QEMU with -incoming from that file and times spawn-to-running. out[] gets n seconds.
 */
int qemu_restore_bench(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                       const char *workdir, size_t n, double *out, struct sprout_err *err);

#endif
