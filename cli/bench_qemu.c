/* Runs QEMU on a sprout image for the boot benchmark; see bench_qemu.h. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_qemu.h"
#include "cli_util.h"
#include "sprout/abi.h"
#include "sprout/vmm.h"

extern char **environ;

int qemu_boot_to_doorbell(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                          double *seconds, struct sprout_err *err)
{
        char mem[32], dev[96];
        snprintf(mem, sizeof(mem), "%llu", (unsigned long long)(m->mem_size >> 20));
        snprintf(dev, sizeof(dev), "isa-debug-exit,iobase=0x%x,iosize=4", SPROUT_DOORBELL_PORT);
        /* The CPUID side of sprout's PVM profile; the rest of it is on the command line. */
        const char *cpu = host_kind == SPROUT_HOST_PVM ? "host,-cx16" : "host";
        char *argv[] = {
            "qemu-system-x86_64",
            "-M",
            "microvm,x-option-roms=off,rtc=off,isa-serial=on",
            "-accel",
            "kvm",
            "-cpu",
            (char *)cpu,
            "-smp",
            "1",
            "-m",
            mem,
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-serial",
            "null",
            "-no-reboot",
            "-kernel",
            m->kernel_path,
            "-initrd",
            m->initrd_path,
            "-append",
            (char *)cmdline,
            "-device",
            dev,
            NULL,
        };
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int64_t t0 = cli_now_ns();
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return sprout_err_set(err, -r, "cannot run qemu-system-x86_64: %s", strerror(r));
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return sprout_err_errno(err, -errno, "waiting for qemu");
        *seconds = (double)(cli_now_ns() - t0) / 1e9;
        /* isa-debug-exit exits with (value << 1) | 1: odd and at least 3 means the doorbell rang.
         */
        if (!WIFEXITED(status) || WEXITSTATUS(status) < 3 || !(WEXITSTATUS(status) & 1))
                return sprout_err_set(err, -EIO, "qemu ended without the doorbell (status 0x%x)",
                                      status);
        return 0;
}
