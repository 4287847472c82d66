/* Runs QEMU on a sprout image for the boot and restore benchmarks; see bench_qemu.h. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_qemu.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/vmm.h"

extern char **environ;

/* The QEMU command line both benchmarks share: microvm, KVM, sprout's CPU profile and cmdline. */
struct qemu_cmd {
        char *argv[48];
        int n;
        char mem[32];
};

static void qemu_base(struct qemu_cmd *c, const struct sprout_manifest *m, const char *cmdline,
                      int host_kind)
{
        snprintf(c->mem, sizeof(c->mem), "%llu", (unsigned long long)(m->mem_size >> 20));
        /* The CPUID side of sprout's PVM profile; the rest of it is on the command line. */
        /* Without arch-capabilities: QEMU 7.2 aborts setting MSR 0x10a, which PVM does not offer.
         */
        const char *cpu = host_kind == SPROUT_HOST_PVM ? "host,-cx16,-arch-capabilities" : "host";
        char *base[] = {
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
            c->mem,
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
        };
        c->n = 0;
        for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
                c->argv[c->n++] = base[i];
        c->argv[c->n] = NULL;
}

static void qemu_add(struct qemu_cmd *c, char *a, char *b)
{
        c->argv[c->n++] = a;
        c->argv[c->n++] = b;
        c->argv[c->n] = NULL;
}

static int qemu_spawn(struct qemu_cmd *c, pid_t *pid, struct sprout_err *err)
{
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        int r = posix_spawnp(pid, c->argv[0], &fa, NULL, c->argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return sprout_err_set(err, -r, "cannot run qemu-system-x86_64: %s", strerror(r));
        return 0;
}

static int qemu_wait(pid_t pid, int *status)
{
        while (waitpid(pid, status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

int qemu_boot_to_doorbell(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                          double *seconds, struct sprout_err *err)
{
        struct qemu_cmd c;
        char dev[96];
        pid_t pid;
        int status, r;

        qemu_base(&c, m, cmdline, host_kind);
        snprintf(dev, sizeof(dev), "isa-debug-exit,iobase=0x%x,iosize=4", SPROUT_DOORBELL_PORT);
        qemu_add(&c, "-device", dev);
        int64_t t0 = sprout_mono_ns();
        if ((r = qemu_spawn(&c, &pid, err)) < 0)
                return r;
        if ((r = qemu_wait(pid, &status)) < 0)
                return sprout_err_errno(err, r, "waiting for qemu");
        *seconds = (double)(sprout_mono_ns() - t0) / 1e9;
        /* isa-debug-exit exits with (value << 1) | 1: odd and at least 3 means the doorbell rang.
         */
        if (!WIFEXITED(status) || WEXITSTATUS(status) < 3 || !(WEXITSTATUS(status) & 1))
                return sprout_err_set(err, -EIO, "qemu ended without the doorbell (status 0x%x)",
                                      status);
        return 0;
}

static bool qmp_ok(json_t *j)
{
        bool ok = j && json_object_get(j, "return");
        json_decref(j);
        return ok;
}

/* Polls a QMP query until field (under "return") equals want; returns 0, or -ETIMEDOUT/-EPROTO. */
static int qmp_wait_for(struct qmp *q, const char *cmd, const char *field, const char *want_str,
                        int want_bool, int64_t timeout_ms)
{
        int64_t deadline = sprout_mono_ns() + timeout_ms * 1000000;
        while (sprout_mono_ns() < deadline) {
                json_t *j = qmp_command(q, cmd, 5000);
                json_t *v = j ? json_object_get(json_object_get(j, "return"), field) : NULL;
                int done = 0;
                if (v && want_str && json_is_string(v)) {
                        done = !strcmp(json_string_value(v), want_str);
                        if (!strcmp(json_string_value(v), "failed"))
                                done = -1;
                } else if (v && !want_str && json_is_boolean(v)) {
                        done = json_is_true(v) == want_bool;
                }
                json_decref(j);
                if (!j)
                        return -EPROTO;
                if (done)
                        return done > 0 ? 0 : -EIO;
                usleep(500);
        }
        return -ETIMEDOUT;
}

/* The files of a restore benchmark, and the QEMU options that name them. */
struct restore_files {
        char qmp[4200], doorbell[4200], state[4200];
        char chardev[4300], debugcon[96], qmp_opt[4300];
};

static void restore_files(struct restore_files *f, const char *workdir)
{
        snprintf(f->qmp, sizeof(f->qmp), "%s/qmp.sock", workdir);
        snprintf(f->doorbell, sizeof(f->doorbell), "%s/doorbell.out", workdir);
        snprintf(f->state, sizeof(f->state), "%s/vm.state", workdir);
        snprintf(f->chardev, sizeof(f->chardev), "file,id=db,path=%s", f->doorbell);
        snprintf(f->debugcon, sizeof(f->debugcon), "isa-debugcon,iobase=0x%x,chardev=db",
                 SPROUT_DOORBELL_PORT);
        snprintf(f->qmp_opt, sizeof(f->qmp_opt), "unix:%s,server=on,wait=off", f->qmp);
}

/* The guest under QEMU with its doorbell writes recorded in a file and a QMP socket. */
static void qemu_recorded(struct qemu_cmd *c, const struct sprout_manifest *m, const char *cmdline,
                          int host_kind, struct restore_files *f)
{
        qemu_base(c, m, cmdline, host_kind);
        qemu_add(c, "-chardev", f->chardev);
        qemu_add(c, "-device", f->debugcon);
        qemu_add(c, "-qmp", f->qmp_opt);
}

/* Boots under QEMU until the guest writes the doorbell port (the READY point), then saves the VM
 * with a migration to a file, as QEMU users snapshot a running guest. */
static int boot_and_save(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                         struct restore_files *f, struct sprout_err *err)
{
        char migrate[4400];
        struct qemu_cmd c;
        struct qmp q = {.fd = -1};
        pid_t pid;
        int status, r;

        qemu_recorded(&c, m, cmdline, host_kind, f);
        unlink(f->qmp);
        unlink(f->doorbell);
        if ((r = qemu_spawn(&c, &pid, err)) < 0)
                return r;
        int64_t deadline = sprout_mono_ns() + 600LL * 1000000000;
        struct stat st;
        while (!(stat(f->doorbell, &st) == 0 && st.st_size > 0)) {
                if (sprout_mono_ns() > deadline || waitpid(pid, &status, WNOHANG) == pid) {
                        kill(pid, SIGKILL);
                        qemu_wait(pid, &status);
                        return sprout_err_set(err, -EIO, "the guest never wrote the doorbell");
                }
                usleep(50000);
        }
        snprintf(migrate, sizeof(migrate),
                 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > %s\"}}\r\n",
                 f->state);
        r = qmp_connect(&q, f->qmp, 10000);
        if (r == 0 && !qmp_ok(qmp_command(&q, migrate, 10000)))
                r = -EPROTO;
        if (r == 0)
                r = qmp_wait_for(&q, "{\"execute\":\"query-migrate\"}\r\n", "status", "completed",
                                 0, 120000);
        if (q.fd >= 0)
                qmp_ok(qmp_command(&q, "{\"execute\":\"quit\"}\r\n", 5000));
        qmp_close(&q);
        qemu_wait(pid, &status);
        if (r < 0)
                return sprout_err_errno(err, r, "saving the VM to a migration file");
        return 0;
}

/* One restore from the migration file: spawn to running, as a QEMU-based clone would. */
static int restore_once(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                        struct restore_files *f, const char *incoming, double *seconds,
                        struct sprout_err *err)
{
        struct qemu_cmd c;
        struct qmp q = {.fd = -1};
        pid_t pid;
        int status, r;

        qemu_recorded(&c, m, cmdline, host_kind, f);
        qemu_add(&c, "-incoming", (char *)incoming);
        unlink(f->qmp);
        int64_t t0 = sprout_mono_ns();
        if ((r = qemu_spawn(&c, &pid, err)) < 0)
                return r;
        r = qmp_connect(&q, f->qmp, 20000);
        if (r == 0)
                r = qmp_wait_for(&q, "{\"execute\":\"query-status\"}\r\n", "running", NULL, 1,
                                 20000);
        *seconds = (double)(sprout_mono_ns() - t0) / 1e9;
        if (q.fd >= 0)
                qmp_ok(qmp_command(&q, "{\"execute\":\"quit\"}\r\n", 5000));
        qmp_close(&q);
        if (r < 0)
                kill(pid, SIGKILL);
        qemu_wait(pid, &status);
        if (r < 0)
                return sprout_err_errno(err, r, "restoring from the migration file");
        return 0;
}

int qemu_restore_bench(const struct sprout_manifest *m, const char *cmdline, int host_kind,
                       const char *workdir, size_t n, double *out, struct sprout_err *err)
{
        struct restore_files f;
        char incoming[4300];
        int r;

        restore_files(&f, workdir);
        if ((r = boot_and_save(m, cmdline, host_kind, &f, err)) < 0)
                return r;
        snprintf(incoming, sizeof(incoming), "exec:cat %s", f.state);
        for (size_t i = 0; i < n; i++)
                if ((r = restore_once(m, cmdline, host_kind, &f, incoming, &out[i], err)) < 0)
                        return r;
        unlink(f.state);
        unlink(f.doorbell);
        unlink(f.qmp);
        return 0;
}
