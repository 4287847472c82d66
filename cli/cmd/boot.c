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

int sprout_cmd_boot(int argc, char **argv)
{
        bool console = false, stay = false, json = false;
        long timeout_s = DEFAULT_BOOT_TIMEOUT_S, memory_mib = 0;
        const char *append = NULL, *kernel = NULL;
        const struct cli_opt opts[] = {
            CLI_FLAG("console", 0, &console),
            CLI_FLAG("stay", 0, &stay),
            CLI_LONG_UNIT("timeout", 0, &timeout_s, 1, 86400, "seconds"),
            CLI_STRING("append", 0, &append),
            CLI_STRING("kernel", 0, &kernel),
            CLI_LONG_UNIT("memory", 0, &memory_mib, 32, 3072, "MiB"),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&boot_verb, opts, argc, argv, &status) < 0)
                return status;

        struct sprout_err err = {0};
        struct sprout_manifest *m = NULL;
        struct sprout_kvm *kvm = NULL;
        struct sprout_vm *vm = NULL;
        int rc = 1;
        char *cmdline = NULL;

        /* KVM first: without it nothing else matters, and the message says what to fix. */
        if (sprout_kvm_open(&kvm, &err) < 0 || sprout_manifest_load(argv[optind], &m, &err) < 0) {
                fprintf(stderr, "sprout boot: %s\n", err.msg);
                goto out;
        }
        if (append && asprintf(&cmdline, "%s %s", m->cmdline ? m->cmdline : "", append) < 0) {
                fprintf(stderr, "sprout boot: out of memory\n");
                goto out;
        }
        struct sprout_vm_config cfg = {
            .mem_size = memory_mib ? (uint64_t)memory_mib << 20 : m->mem_size,
            .vcpus = m->vcpus,
            .kernel_path = kernel ? kernel : m->kernel_path,
            .initrd_path = m->initrd_path,
            .cmdline = cmdline ? cmdline : m->cmdline,
            .console_fd = console ? STDOUT_FILENO : -1,
        };
        if (!json)
                fprintf(stderr, "sprout: host kind %s; booting %s (%llu MiB, %u vCPU)\n",
                        sprout_host_kind_name(sprout_kvm_host_kind(kvm)), m->name,
                        (unsigned long long)(cfg.mem_size >> 20), cfg.vcpus);

        int64_t t0 = sprout_mono_ns();
        if (sprout_vm_create(kvm, &cfg, &vm, &err) < 0) {
                fprintf(stderr, "sprout boot: %s\n", err.msg);
                goto out;
        }
        int64_t t_created = sprout_mono_ns();

        struct sprout_vm_event ev;
        if (sprout_vm_run(vm, timeout_s * 1000, &ev, &err) < 0) {
                report_failure(vm, err.msg);
                goto out;
        }
        int64_t t_ready = sprout_mono_ns();
        char msg[1024];
        switch (ev.kind) {
        case SPROUT_EV_READY:
                break;
        case SPROUT_EV_TIMEOUT:
                snprintf(msg, sizeof(msg), "the guest did not ring READY within %ld s", timeout_s);
                report_failure(vm, msg);
                goto out;
        case SPROUT_EV_PANIC:
                snprintf(msg, sizeof(msg), "the guest panicked before READY: %s", ev.detail);
                report_failure(vm, msg);
                goto out;
        case SPROUT_EV_STOPPED:
                snprintf(msg, sizeof(msg), "the guest stopped before READY: %s", ev.detail);
                report_failure(vm, msg);
                goto out;
        default:
                snprintf(msg, sizeof(msg), "the guest sent event %d before READY", ev.kind);
                report_failure(vm, msg);
                goto out;
        }
        double ready_s = (double)(t_ready - t0) / 1e9;
        if (json)
                printf(
                    "{\"event\":\"ready\",\"image\":\"%s\",\"host_kind\":\"%s\",\"abi\":\"%u.%u\","
                    "\"vm_create_ms\":%.3f,\"ready_s\":%.6f}\n",
                    m->name, sprout_host_kind_name(sprout_kvm_host_kind(kvm)), ev.abi_version >> 16,
                    ev.abi_version & 0xffff, (double)(t_created - t0) / 1e6, ready_s);
        else
                printf("READY in %.3f s (image %s, host %s, guest ABI %u.%u)\n", ready_s, m->name,
                       sprout_host_kind_name(sprout_kvm_host_kind(kvm)), ev.abi_version >> 16,
                       ev.abi_version & 0xffff);
        fflush(stdout);
        rc = 0;

        if (stay) {
                struct sigaction sa = {.sa_handler = on_sigint};
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                while (!interrupted) {
                        /* Short slices so Ctrl-C is noticed promptly. */
                        if (sprout_vm_run(vm, 200, &ev, &err) < 0) {
                                report_failure(vm, err.msg);
                                rc = 1;
                                break;
                        }
                        if (ev.kind == SPROUT_EV_STOPPED) {
                                fprintf(stderr, "sprout: VM stopped: %s\n", ev.detail);
                                break;
                        }
                        if (ev.kind == SPROUT_EV_PANIC) {
                                snprintf(msg, sizeof(msg), "the guest panicked: %s", ev.detail);
                                report_failure(vm, msg);
                                rc = 1;
                                break;
                        }
                }
        }
out:
        sprout_vm_destroy(vm);
        sprout_kvm_close(kvm);
        sprout_manifest_free(m);
        free(cmdline);
        return rc;
}
