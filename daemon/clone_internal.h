/* What clone.c needs from base.c: the shell pool and the restore of a clone's state. */
#ifndef SPROUT_CLONE_INTERNAL_H
#define SPROUT_CLONE_INTERNAL_H

#include "sprout/clone.h"
#include "sprout/snapshot.h"

/* A prepared shell from the pool, or NULL when it is empty. */
struct sprout_vm *base_take_shell(struct sprout_base *b);

/* Restores the base's state into shell (or into a new VM when shell is NULL). The shell is
 * consumed: on failure it has been destroyed. */
int base_restore(struct sprout_base *b, struct sprout_vm *shell, int console_fd,
                 struct sprout_vm **out, struct sprout_err *err);

/* The facts a snapshot records about the host that took it. */
void host_facts(const struct sprout_kvm *kvm, struct snap_host_facts *h);

#endif
