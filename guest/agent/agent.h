/* Internal interfaces of sprout-agent, the guest's PID 1: setup, the handler's lists, and reporting
 * to the host. */
#ifndef SPROUT_AGENT_H
#define SPROUT_AGENT_H

#include <stddef.h>
#include <sys/types.h>

#include "sprout/err.h"
#include "sprout/guest.h"
#include "sprout/initramfs.h"

/* A list file read into buf and split at its NULs; items[n] is NULL. */
struct agent_list {
        char buf[SPROUT_LIST_MAX_BYTES + 1];
        char *items[SPROUT_LIST_MAX_ENTRIES + 1];
        size_t n;
};

struct agent {
        struct agent_list argv;
        struct agent_list env_file;
        /* The handler's environment: SPROUT_* from the kernel command line, then /sprout/env. */
        char *envp[2 * SPROUT_LIST_MAX_ENTRIES + 1];
        pid_t handler;
        int dev_open; /* g is open (opened lazily: only failures and shutdown need the mailbox) */
        struct sprout_guest g;
};

/* Mount the pseudo filesystems and make sure fds 0-2 are the console. */
int agent_setup_fs(struct sprout_err *err);
int agent_setup_console(struct sprout_err *err);

/* Read a list file; for env, check every item is NAME=VALUE. */
int agent_list_read(const char *path, struct agent_list *l, int is_env, struct sprout_err *err);

/* Fill a->envp from the agent's own environment (SPROUT_* entries) and a->env_file. */
void agent_build_env(struct agent *a, char **own_env);

/* Tell the host the guest cannot go on (console line + PANIC with code), then power off. Never
 * returns. */
__attribute__((noreturn, format(printf, 3, 4))) void agent_fail(struct agent *a, unsigned code,
                                                                const char *fmt, ...);

/* Kill every other process, sync, ring POWEROFF, power off. Never returns. */
__attribute__((noreturn)) void agent_poweroff(struct agent *a);

/* Kill every other process, sync, reboot (the VMM sees the reset). Never returns. */
__attribute__((noreturn)) void agent_reboot(void);

#endif
