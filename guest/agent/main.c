/* sprout-agent: /init (PID 1) of a sprout image. Mounts the basics, starts the handler named in
 * /sprout/argv, then only reaps children and turns handler death or a shutdown request into a
 * report to the host. The handler, not the agent, rings READY. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

static struct agent agent; /* static: PID 1 lives as long as the guest */

static void spawn_handler(struct agent *a)
{
        posix_spawnattr_t attr;
        sigset_t none;
        int rc;

        /* posix_spawn shares our memory until exec (CLONE_VFORK): no page-table copy, which a fork
         * costs dearly when the guest kernel is emulated. Dispositions are all default already, so
         * only the mask needs resetting. */
        sigemptyset(&none);
        rc = posix_spawnattr_init(&attr);
        if (rc == 0)
                rc = posix_spawnattr_setsigmask(&attr, &none);
        if (rc == 0)
                rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        if (rc != 0)
                agent_fail(a, SPROUT_PANIC_AGENT, "posix_spawnattr: %s", strerror(rc));
        rc = posix_spawn(&a->handler, a->argv.items[0], NULL, &attr, a->argv.items, a->envp);
        posix_spawnattr_destroy(&attr);
        if (rc != 0)
                agent_fail(a, SPROUT_PANIC_HANDLER_EXEC, "cannot start handler %s: %s",
                           a->argv.items[0], strerror(rc));
}

static void reap(struct agent *a)
{
        int st;
        pid_t pid;

        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                if (pid != a->handler)
                        continue; /* an orphan re-parented to us: reaping it is all init owes it */
                if (WIFSIGNALED(st))
                        agent_fail(a, SPROUT_PANIC_HANDLER_EXIT,
                                   "handler killed by signal %d (SIG%s)", WTERMSIG(st),
                                   sigabbrev_np(WTERMSIG(st)) ?: "?");
                agent_fail(a, SPROUT_PANIC_HANDLER_EXIT, "handler exited with status %d",
                           WEXITSTATUS(st));
        }
}

int main(int argc, char **argv, char **envp)
{
        struct agent *a = &agent;
        struct sprout_err err = {0};
        sigset_t set;

        (void)argc;
        (void)argv;
        if (getpid() != 1) {
                fprintf(stderr,
                        "sprout-agent: must run as PID 1 (it is /init of a sprout image)\n");
                return 1;
        }
        /* Blocked signals still queue for PID 1, and sigwaitinfo then takes them one at a time: no
         * async handlers, no races with reaping. busybox poweroff sends SIGUSR2, halt SIGUSR1,
         * reboot SIGTERM; the kernel sends SIGINT for ctrl-alt-del. */
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                agent_fail(a, SPROUT_PANIC_AGENT, "sigprocmask: %s", strerror(errno));

        if (agent_setup_fs(&err) < 0 || agent_setup_console(&err) < 0 ||
            agent_list_read(SPROUT_INITRD_ARGV, &a->argv, 0, &err) < 0 ||
            agent_list_read(SPROUT_INITRD_ENV, &a->env_file, 1, &err) < 0)
                agent_fail(a, SPROUT_PANIC_AGENT, "%s", err.msg);
        if (a->argv.n == 0 || a->argv.items[0][0] != '/')
                agent_fail(a, SPROUT_PANIC_AGENT, "%s: argv[0] must be an absolute path",
                           SPROUT_INITRD_ARGV);
        agent_build_env(a, envp);
        spawn_handler(a);

        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&set, &si);
                if (sig < 0)
                        continue; /* EINTR from a stop/continue; nothing else can fail here */
                switch (sig) {
                case SIGCHLD:
                        reap(a);
                        break;
                case SIGUSR1:
                case SIGUSR2:
                        agent_poweroff(a);
                case SIGTERM:
                case SIGINT:
                        agent_reboot();
                }
        }
}
