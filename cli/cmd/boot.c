/* sprout boot: cold-boot an image to READY and report how long it took; --stay keeps it running. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_opts.h"
#include "commands.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/vmm.h"

#define DEFAULT_BOOT_TIMEOUT_S 300 /* PVM hosts emulate every guest kernel instruction */
#define CONSOLE_TAIL_LINES     20

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
        (void)sig;
        interrupted = 1;
}

static void boot_usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout boot IMAGE [options]\n\n"
            "Boots IMAGE (a directory made by 'sprout build', or its manifest.json) in a fresh\n"
            "microVM until the runtime rings READY, prints the time from start to READY, then\n"
            "stops the VM.\n\n"
            "options:\n"
            "  --console          stream the guest serial console to stdout\n"
            "  --stay             keep the VM running after READY until it stops or Ctrl-C\n"
            "  --timeout SEC      give up if READY has not come after SEC seconds (default %d)\n"
            "  --append ARGS      add ARGS to the guest kernel command line\n"
            "  --kernel PATH      boot this vmlinux instead of the image's kernel\n"
            "  --memory MIB       override the image's memory size\n"
            "  --json             print the result as one JSON object\n"
            "  -h, --help         show this help\n",
            DEFAULT_BOOT_TIMEOUT_S);
}

static const struct cli_verb boot_verb = {.name = "boot",
                                          .usage = boot_usage,
                                          .operands = 1,
                                          .operands_msg = "expected exactly one IMAGE"};

/* Prints the failure with the console's last lines, which usually say what the guest was doing. */
static void report_failure(struct sprout_vm *vm, const char *what)
{
        char tail[4096];
        fprintf(stderr, "sprout boot: %s\n", what);
        if (vm && sprout_vm_console_tail(vm, tail, sizeof(tail), CONSOLE_TAIL_LINES) > 0)
                fprintf(stderr, "last console lines:\n%s%s", tail,
                        tail[strlen(tail) - 1] == '\n' ? "" : "\n");
}

struct boot_args {
        bool console, stay, json;
        long timeout_s, memory_mib;
        const char *append, *kernel;
};

/* The image's VM with the command line's overrides; *cmdline owns an --append'ed command line. */
static int boot_config(const struct sprout_manifest *m, const struct boot_args *a, char **cmdline,
                       struct sprout_vm_config *cfg)
{
        *cfg = sprout_manifest_vm_config(m);
        if (a->append) {
                if (asprintf(cmdline, "%s %s", m->cmdline ? m->cmdline : "", a->append) < 0) {
                        *cmdline = NULL;
                        return -ENOMEM;
                }
                cfg->cmdline = *cmdline;
        }
        if (a->memory_mib)
                cfg->mem_size = (uint64_t)a->memory_mib << 20;
        if (a->kernel) {
                cfg->kernel_path = a->kernel;
                cfg->kernel_fd = -1; /* --kernel wins over the image's: open it by path */
        }
        if (a->console)
                cfg->console_fd = STDOUT_FILENO;
        return 0;
}

/* Runs the guest until READY; anything else is reported with the console's tail. */
static int run_to_ready(struct sprout_vm *vm, long timeout_s, struct sprout_vm_event *ev)
{
        struct sprout_err err = {0};
        int r = sprout_vm_run(vm, timeout_s * 1000, ev, &err);
        if (r == 0 && ev->kind == SPROUT_EV_READY)
                return 0;
        if (r == 0)
                r = sprout_vm_event_error(ev, "the guest", "ring READY", timeout_s * 1000, &err);
        report_failure(vm, err.msg);
        return r ? r : -EIO;
}

/* --stay: keeps the guest running until it stops, panics or we are interrupted. */
static int stay_running(struct sprout_vm *vm)
{
        struct sprout_err err = {0};
        struct sprout_vm_event ev;
        char msg[1024];
        struct sigaction sa = {.sa_handler = on_sigint};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        while (!interrupted) {
                /* Short slices so Ctrl-C is noticed promptly. */
                if (sprout_vm_run(vm, 200, &ev, &err) < 0) {
                        report_failure(vm, err.msg);
                        return -EIO;
                }
                if (ev.kind == SPROUT_EV_STOPPED) {
                        fprintf(stderr, "sprout: VM stopped: %s\n", ev.detail);
                        return 0;
                }
                if (ev.kind == SPROUT_EV_PANIC) {
                        snprintf(msg, sizeof(msg), "the guest panicked: %s", ev.detail);
                        report_failure(vm, msg);
                        return -EIO;
                }
        }
        return 0;
}

static void print_ready(const struct sprout_manifest *m, int host_kind,
                        const struct sprout_vm_event *ev, double create_ms, double ready_s,
                        bool json)
{
        if (json)
                printf(
                    "{\"event\":\"ready\",\"image\":\"%s\",\"host_kind\":\"%s\",\"abi\":\"%u.%u\","
                    "\"vm_create_ms\":%.3f,\"ready_s\":%.6f}\n",
                    m->name, sprout_host_kind_name(host_kind), ev->abi_version >> 16,
                    ev->abi_version & 0xffff, create_ms, ready_s);
        else
                printf("READY in %.3f s (image %s, host %s, guest ABI %u.%u)\n", ready_s, m->name,
                       sprout_host_kind_name(host_kind), ev->abi_version >> 16,
                       ev->abi_version & 0xffff);
        fflush(stdout);
}

int sprout_cmd_boot(int argc, char **argv)
{
        struct boot_args a = {.timeout_s = DEFAULT_BOOT_TIMEOUT_S};
        const struct cli_opt opts[] = {
            CLI_FLAG("console", 0, &a.console),
            CLI_FLAG("stay", 0, &a.stay),
            CLI_LONG_UNIT("timeout", 0, &a.timeout_s, 1, 86400, "seconds"),
            CLI_STRING("append", 0, &a.append),
            CLI_STRING("kernel", 0, &a.kernel),
            CLI_LONG_UNIT("memory", 0, &a.memory_mib, 32, 3072, "MiB"),
            CLI_JSON(&a.json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&boot_verb, opts, argc, argv, &status) < 0)
                return status;

        struct sprout_err err = {0};
        struct sprout_manifest *m = NULL;
        struct sprout_kvm *kvm = NULL;
        struct sprout_vm *vm = NULL;
        struct sprout_vm_config cfg;
        struct sprout_vm_event ev;
        int rc = 1;
        char *cmdline = NULL;

        /* The image first (cheap, and the user's input), then KVM, so each message names its own
         * fault. */
        if (sprout_manifest_load(argv[optind], &m, &err) < 0 || sprout_kvm_open(&kvm, &err) < 0) {
                fprintf(stderr, "sprout boot: %s\n", err.msg);
                goto out;
        }
        if (boot_config(m, &a, &cmdline, &cfg) < 0) {
                fprintf(stderr, "sprout boot: out of memory\n");
                goto out;
        }
        int host_kind = sprout_kvm_host_kind(kvm);
        if (!a.json)
                fprintf(stderr, "sprout: host kind %s; booting %s (%llu MiB, %u vCPU)\n",
                        sprout_host_kind_name(host_kind), m->name,
                        (unsigned long long)(cfg.mem_size >> 20), cfg.vcpus);

        int64_t t0 = sprout_mono_ns();
        if (sprout_vm_create(kvm, &cfg, &vm, &err) < 0) {
                fprintf(stderr, "sprout boot: %s\n", err.msg);
                goto out;
        }
        int64_t t_created = sprout_mono_ns();
        if (run_to_ready(vm, a.timeout_s, &ev) < 0)
                goto out;
        int64_t t_ready = sprout_mono_ns();
        print_ready(m, host_kind, &ev, (double)(t_created - t0) / 1e6, (double)(t_ready - t0) / 1e9,
                    a.json);
        rc = a.stay && stay_running(vm) < 0 ? 1 : 0;
out:
        sprout_vm_destroy(vm);
        sprout_kvm_close(kvm);
        sprout_manifest_free(m);
        free(cmdline);
        return rc;
}
