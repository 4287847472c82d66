/* Integration tests of the VMM core on real KVM with the real guest kernel and real images:
 * `test_vmm CASE IMAGES_DIR`. Each case boots what it needs, acts, and checks the outcome. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/check.h"
#include "../common/kvm_case.h"
#include "../common/proc.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/vmm.h"

#define BOOT_TIMEOUT_MS (300 * 1000)

static const char *images;
static struct sprout_kvm *kvm;

static struct sprout_manifest *load_image(const char *name)
{
        char path[4096];
        struct sprout_err err = {0};
        struct sprout_manifest *m = NULL;
        snprintf(path, sizeof(path), "%s/%s", images, name);
        if (sprout_manifest_load(path, &m, &err) < 0) {
                fprintf(stderr, "FATAL: image %s: %s\n", name, err.msg);
                exit(1);
        }
        return m;
}

static struct sprout_vm *create(struct sprout_manifest *m, const char *cmdline,
                                struct sprout_err *err)
{
        struct sprout_vm *vm = NULL;
        struct sprout_vm_config cfg = sprout_manifest_vm_config(m);
        if (cmdline)
                cfg.cmdline = cmdline;
        if (sprout_vm_create(kvm, &cfg, &vm, err) < 0)
                return NULL;
        return vm;
}

/* Boots an image until its first event; the console tail is printed when it is not READY. */
static struct sprout_vm *boot(const char *name, const char *cmdline, struct sprout_vm_event *ev)
{
        struct sprout_err err = {0};
        struct sprout_manifest *m = load_image(name);
        struct sprout_vm *vm = create(m, cmdline, &err);
        sprout_manifest_free(m);
        CHECK(vm != NULL, "creating %s: %s", name, err.msg);
        if (!vm)
                return NULL;
        double t0 = sprout_mono_s();
        int r = sprout_vm_run(vm, BOOT_TIMEOUT_MS, ev, &err);
        printf("%s: first event %d after %.2f s\n", name, ev->kind, sprout_mono_s() - t0);
        CHECK(r == 0, "running %s: %s", name, err.msg);
        if (r < 0 || ev->kind != SPROUT_EV_READY) {
                char tail[4096];
                sprout_vm_console_tail(vm, tail, sizeof(tail), 30);
                fprintf(stderr, "console of %s:\n%s\n", name, tail);
        }
        return vm;
}

static bool console_has(struct sprout_vm *vm, const char *needle)
{
        static char all[65536];
        sprout_vm_console_tail(vm, all, sizeof(all), 100000);
        return strstr(all, needle) != NULL;
}

static void case_boot_hello(void)
{
        struct sprout_vm_event ev;
        /* loglevel after the VMM's quiet, so the banner reaches the console */
        struct sprout_vm *vm = boot("hello", "loglevel=6", &ev);
        if (!vm)
                return;
        CHECK(ev.kind == SPROUT_EV_READY, "hello rang %d, not READY (%s)", ev.kind, ev.detail);
        CHECK(ev.abi_version == SPROUT_ABI_VERSION, "READY reported ABI 0x%x, expected 0x%x",
              ev.abi_version, SPROUT_ABI_VERSION);
        CHECK(console_has(vm, "Linux version 6.1"), "the console lacks the kernel banner");
        CHECK(strstr(sprout_vm_cmdline(vm), "console=ttyS0") != NULL, "cmdline lacks the console");
        if (sprout_kvm_host_kind(kvm) == SPROUT_HOST_PVM)
                CHECK(strstr(sprout_vm_cmdline(vm), "noxsave") != NULL,
                      "a PVM host must hide XSAVE on the command line: %s", sprout_vm_cmdline(vm));

        /* The runtime answers requests after READY. */
        struct sprout_err err = {0};
        const void *resp;
        size_t len;
        const char req[] = "{\"name\":\"test\"}";
        int r = sprout_vm_invoke(vm, req, strlen(req), 30000, &resp, &len, &ev, &err);
        CHECK(r == 0 && ev.kind == SPROUT_EV_DONE, "invoke: r=%d kind=%d %s %s", r, ev.kind,
              err.msg, ev.detail);
        if (r == 0 && ev.kind == SPROUT_EV_DONE)
                CHECK(memmem(resp, len, "\"hello\"", 7) && memmem(resp, len, "test", 4),
                      "unexpected response '%.*s'", (int)len, (const char *)resp);
        sprout_vm_destroy(vm);
}

/* The same runtime ringing through the MMIO doorbell page instead of the port. */
static void case_boot_mmio(void)
{
        struct sprout_vm_event ev;
        struct sprout_err err = {0};
        struct sprout_vm *vm = boot("hello-mmio", NULL, &ev);
        const void *resp;
        size_t len;
        if (!vm)
                return;
        CHECK(ev.kind == SPROUT_EV_READY, "hello-mmio rang %d, not READY (%s)", ev.kind, ev.detail);
        CHECK(strstr(sprout_vm_cmdline(vm), "SPROUT_DOORBELL=mmio") != NULL, "cmdline: %s",
              sprout_vm_cmdline(vm));
        for (int i = 1; i <= 3; i++) {
                int r = sprout_vm_invoke(vm, "{\"m\":1}", 7, 30000, &resp, &len, &ev, &err);
                CHECK(r == 0 && ev.kind == SPROUT_EV_DONE && memmem(resp, len, "\"m\":1", 5),
                      "mmio invoke %d: r=%d kind=%d %s", i, r, ev.kind, err.msg);
        }
        sprout_vm_destroy(vm);
}

static void case_boot_poweroff(void)
{
        struct sprout_vm_event ev;
        struct sprout_vm *vm = boot("poweroff", NULL, &ev);
        if (!vm)
                return;
        CHECK(ev.kind == SPROUT_EV_STOPPED, "poweroff gave event %d (%s)", ev.kind, ev.detail);
        CHECK(strstr(ev.detail, "powered off") != NULL, "stop reason '%s'", ev.detail);
        /* A stopped VM stays stopped. */
        struct sprout_err err = {0};
        CHECK(sprout_vm_run(vm, 1000, &ev, &err) == 0 && ev.kind == SPROUT_EV_STOPPED,
              "a stopped VM ran again");
        sprout_vm_destroy(vm);
}

static void case_boot_crash(void)
{
        struct sprout_vm_event ev;
        struct sprout_vm *vm = boot("crash", NULL, &ev);
        if (!vm)
                return;
        CHECK(ev.kind == SPROUT_EV_PANIC, "crash gave event %d (%s)", ev.kind, ev.detail);
        CHECK(ev.arg == SPROUT_PANIC_HANDLER_EXIT, "panic code %u", ev.arg);
        /* The agent's words with the status of `exit 3`, and nothing else. */
        CHECK(!strcmp(ev.detail, "handler exited with status 3"),
              "panic detail '%s', want 'handler exited with status 3'", ev.detail);
        sprout_vm_destroy(vm);
}

static void case_hostile(void)
{
        struct sprout_vm_event ev;
        struct sprout_err err = {0};
        struct sprout_vm *vm = boot("hostile", NULL, &ev);
        const void *resp;
        size_t len;
        if (!vm)
                return;
        CHECK(ev.kind == SPROUT_EV_READY, "lies before READY stopped the guest: %d (%s)", ev.kind,
              ev.detail);
        CHECK(console_has(vm, "[guest] hostile\\x01\\x1b[31m"),
              "control bytes in LOG were not escaped");

        char want[512];
        int r = sprout_vm_invoke(vm, "B", 1, 30000, &resp, &len, &ev, &err);
        snprintf(want, sizeof(want),
                 "guest reported a %u-byte response; the response area holds %llu", 0xfffffff0u,
                 (unsigned long long)SPROUT_MB_RESP_SIZE);
        CHECK(r == 0 && ev.kind == SPROUT_EV_PANIC && !strcmp(ev.detail, want),
              "an oversized response length was not refused: r=%d kind=%d '%s', want '%s'", r,
              ev.kind, ev.detail, want);
        r = sprout_vm_invoke(vm, "V", 1, 30000, &resp, &len, &ev, &err);
        snprintf(want, sizeof(want), "guest speaks sprout ABI 127.0, this VMM speaks %u.%u",
                 SPROUT_ABI_MAJOR, SPROUT_ABI_MINOR);
        CHECK(r == 0 && ev.kind == SPROUT_EV_PANIC && ev.arg == SPROUT_PANIC_ABI &&
                  !strcmp(ev.detail, want),
              "a foreign ABI was not refused: r=%d kind=%d arg=%u '%s', want '%s'", r, ev.kind,
              ev.arg, ev.detail, want);
        /* Still serving after the lies. */
        r = sprout_vm_invoke(vm, "x", 1, 30000, &resp, &len, &ev, &err);
        CHECK(r == 0 && ev.kind == SPROUT_EV_DONE && len == 2 && !memcmp(resp, "ok", 2),
              "the guest stopped serving: r=%d kind=%d", r, ev.kind);
        /* The request area's limit, on a buffer that really is that long: a full area is taken,
         * one byte more is refused before anything is copied. */
        char *big = malloc(SPROUT_MB_REQ_SIZE + 1);
        REQUIRE(big != NULL, "out of memory");
        memset(big, 'y', SPROUT_MB_REQ_SIZE + 1);
        r = sprout_vm_invoke(vm, big, SPROUT_MB_REQ_SIZE, 30000, &resp, &len, &ev, &err);
        CHECK(r == 0 && ev.kind == SPROUT_EV_DONE && len == 2 && !memcmp(resp, "ok", 2),
              "a request filling the area: r=%d kind=%d '%s'", r, ev.kind, err.msg);
        sprout_err_clear(&err);
        r = sprout_vm_invoke(vm, big, SPROUT_MB_REQ_SIZE + 1, 1000, &resp, &len, &ev, &err);
        snprintf(want, sizeof(want), "the request is %u bytes; the mailbox takes at most %u",
                 (unsigned)SPROUT_MB_REQ_SIZE + 1, (unsigned)SPROUT_MB_REQ_SIZE);
        CHECK(r == -EMSGSIZE && !strcmp(err.msg, want),
              "an oversized request: r=%d '%s', want '%s'", r, err.msg, want);
        free(big);
        /* A guest that never answers is stopped by the invoke time limit. */
        sprout_err_clear(&err);
        double t0 = sprout_mono_s();
        r = sprout_vm_invoke(vm, "L", 1, 1500, &resp, &len, &ev, &err);
        double dt = sprout_mono_s() - t0;
        CHECK(r == 0 && ev.kind == SPROUT_EV_TIMEOUT, "a spinning guest: r=%d kind=%d", r, ev.kind);
        CHECK(dt > 1.4 && dt < 10, "the invoke timeout took %.2f s for 1.5 s", dt);
        sprout_vm_destroy(vm);
}

/* Boots a hostile guest on, 1 s at a time, until its handler logs `log`: each run must end by its
 * deadline, never by an event (ev holds the last run's, a timeout on entry). Whether it logged. */
static bool run_until_logged(struct sprout_vm *vm, const char *log, struct sprout_vm_event *ev,
                             struct sprout_err *err)
{
        double until = sprout_mono_s() + BOOT_TIMEOUT_MS / 1000.0;
        bool logged = false;
        int r = 0;
        while (!logged && r == 0 && ev->kind == SPROUT_EV_TIMEOUT && sprout_mono_s() < until) {
                r = sprout_vm_run(vm, 1000, ev, err);
                logged = console_has(vm, log);
        }
        CHECK(r == 0 && ev->kind == SPROUT_EV_TIMEOUT, "booting to '%s': r=%d kind=%d %s %s", log,
              r, ev->kind, err->msg, ev->detail);
        CHECK(logged, "the handler never logged '%s'", log);
        return r == 0 && logged;
}

/* A run's deadline, against a guest that never rings READY (hostile, told to spin in user mode):
 * the deadline is the only way the run can end, however fast the host boots. */
static void case_timeout(void)
{
        struct sprout_err err = {0};
        struct sprout_manifest *m = load_image("hostile");
        struct sprout_vm *vm = create(m, "SPROUT_HOSTILE=spin", &err);
        sprout_manifest_free(m);
        REQUIRE(vm != NULL, "create: %s", err.msg);
        struct sprout_vm_event ev;
        double t0 = sprout_mono_s();
        int r = sprout_vm_run(vm, 1000, &ev, &err);
        double dt = sprout_mono_s() - t0;
        CHECK(r == 0 && ev.kind == SPROUT_EV_TIMEOUT, "a 1 s run gave r=%d kind=%d %s", r, ev.kind,
              err.msg);
        CHECK(dt >= 0.99 && dt < 5, "a 1 s deadline took %.2f s", dt);
        if (r < 0 || !run_until_logged(vm, "[guest] spinning", &ev, &err)) {
                sprout_vm_destroy(vm);
                return;
        }
        /* Now the guest is in user mode for good: a run ends at its deadline and only then. */
        t0 = sprout_mono_s();
        r = sprout_vm_run(vm, 1000, &ev, &err);
        dt = sprout_mono_s() - t0;
        CHECK(r == 0 && ev.kind == SPROUT_EV_TIMEOUT, "a 1 s run of a spinning guest: r=%d kind=%d",
              r, ev.kind);
        CHECK(dt >= 0.99 && dt < 5, "a 1 s deadline on a spinning guest took %.2f s", dt);
        /* The timeout says what the vCPU was doing: running, interruptible, and mostly in user
         * mode with a user-half rip. A deadline may also land in its timer interrupt (kernel
         * mode; on a PVM host, whose guest kernel is emulated, often): one of a few runs must
         * land in the loop itself. */
        bool in_loop = false;
        for (int i = 0; i < 8 && !in_loop && r == 0 && ev.kind == SPROUT_EV_TIMEOUT; i++) {
                if (i)
                        r = sprout_vm_run(vm, 200, &ev, &err);
                unsigned long long rip = 0;
                const char *at = strstr(ev.detail, " at rip ");
                if (at)
                        rip = strtoull(at + 8, NULL, 16);
                in_loop = !strncmp(ev.detail, "vCPU running in user mode at rip 0x", 35) && rip &&
                          rip < (1ULL << 47) && strstr(ev.detail, "interrupts on; LAPIC timer");
                CHECK(!strncmp(ev.detail, "vCPU running in ", 16),
                      "a spinning guest's timeout detail: '%s'", ev.detail);
        }
        CHECK(in_loop, "no deadline found the spinning guest in its loop: last '%s'", ev.detail);
        printf("spinning guest at its deadline: %s\n", ev.detail);
        sprout_vm_destroy(vm);
}

/* A guest that sleeps for good: its vCPU halts, and the timeout's detail says so (a halted guest
 * that nothing wakes is another bug than one that loops; docs/api.md, "invoke_timeout"). */
static void case_timeout_halted(void)
{
        struct sprout_err err = {0};
        struct sprout_manifest *m = load_image("hostile");
        struct sprout_vm *vm = create(m, "SPROUT_HOSTILE=sleep", &err);
        sprout_manifest_free(m);
        REQUIRE(vm != NULL, "create: %s", err.msg);
        struct sprout_vm_event ev = {.kind = SPROUT_EV_TIMEOUT}; /* as if a run had timed out */
        int r = 0;
        if (!run_until_logged(vm, "[guest] sleeping", &ev, &err)) {
                sprout_vm_destroy(vm);
                return;
        }
        /* Its kernel may still finish a timer or two after the log: the last of a few runs. */
        for (int i = 0; i < 3 && r == 0; i++)
                r = sprout_vm_run(vm, 500, &ev, &err);
        CHECK(r == 0 && ev.kind == SPROUT_EV_TIMEOUT &&
                  !strncmp(ev.detail, "vCPU halted in kernel mode at rip ", 34) &&
                  strstr(ev.detail, "interrupts on"),
              "a sleeping guest's timeout: r=%d kind=%d detail '%s'", r, ev.kind, ev.detail);
        struct sprout_err e2 = {0};
        sprout_vm_event_error(&ev, "the sleeper", "answer", 500, &e2);
        CHECK(strstr(e2.msg, "did not answer within 500 ms (vCPU halted in kernel mode at rip "),
              "the timeout's error: '%s'", e2.msg);
        printf("sleeping guest at its deadline: %s\n", e2.msg);
        sprout_vm_destroy(vm);
}

/* Writes a small ELF with one PT_LOAD segment at paddr, for the loader's bad-input cases. */
static void write_elf(const char *path, unsigned char cls, uint16_t machine, uint64_t paddr,
                      uint64_t filesz, uint16_t phnum)
{
        Elf64_Ehdr eh = {0};
        Elf64_Phdr ph = {0};
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = cls;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_type = ET_EXEC;
        eh.e_machine = machine;
        eh.e_entry = paddr;
        eh.e_phoff = sizeof(eh);
        eh.e_phentsize = sizeof(ph);
        eh.e_phnum = phnum;
        ph.p_type = PT_LOAD;
        ph.p_offset = 0;
        ph.p_paddr = paddr;
        ph.p_vaddr = paddr;
        ph.p_filesz = filesz;
        ph.p_memsz = filesz;
        FILE *f = fopen(path, "w");
        fwrite(&eh, sizeof(eh), 1, f);
        fwrite(&ph, sizeof(ph), 1, f);
        fclose(f);
}

static void expect_create_error(const char *what, struct sprout_vm_config cfg, const char *needle)
{
        struct sprout_err err = {0};
        struct sprout_vm *vm = NULL;
        int r = sprout_vm_create(kvm, &cfg, &vm, &err);
        CHECK(r < 0 && vm == NULL, "%s: created a VM", what);
        CHECK(strstr(err.msg, needle) != NULL, "%s: error '%s' lacks '%s'", what, err.msg, needle);
}

static void case_bad_input(void)
{
        struct sprout_manifest *m = load_image("hello");
        char dir[] = "/tmp/sprout-test-XXXXXX", p[4200];
        if (!mkdtemp(dir)) {
                CHECK(0, "mkdtemp");
                return;
        }
        struct sprout_vm_config good = sprout_manifest_vm_config(m);
        /* These cases name their bad files by path, so the manifest's own open fds must not be
         * used. */
        good.have_fds = false;
        struct sprout_vm_config c = good;

        c.kernel_path = "/nonexistent/vmlinux";
        expect_create_error("missing kernel", c, "No such file");
        c.kernel_path = m->initrd_path;
        expect_create_error("kernel not ELF", c, "not an ELF");
        snprintf(p, sizeof(p), "%s/elf32", dir);
        write_elf(p, ELFCLASS32, EM_386, 0x1000000, 64, 1);
        c.kernel_path = p;
        expect_create_error("32-bit ELF", c, "not an x86-64");
        snprintf(p, sizeof(p), "%s/arm", dir);
        write_elf(p, ELFCLASS64, EM_AARCH64, 0x1000000, 64, 1);
        expect_create_error("arm64 ELF", c, "not an x86-64");
        snprintf(p, sizeof(p), "%s/phnum", dir);
        write_elf(p, ELFCLASS64, EM_X86_64, 0x1000000, 64, 60000);
        expect_create_error("huge phnum", c, "program header");
        snprintf(p, sizeof(p), "%s/past-eof", dir);
        write_elf(p, ELFCLASS64, EM_X86_64, 0x1000000, 1 << 30, 1);
        expect_create_error("segment past EOF", c, "outside the file");
        snprintf(p, sizeof(p), "%s/high", dir);
        write_elf(p, ELFCLASS64, EM_X86_64, 1ULL << 30, 64, 1);
        expect_create_error("kernel above RAM", c, "does not fit");
        snprintf(p, sizeof(p), "%s/low", dir);
        write_elf(p, ELFCLASS64, EM_X86_64, 0x1000, 64, 1);
        expect_create_error("kernel over the boot tables", c, "does not fit");
        c = good;
        c.initrd_path = "/nonexistent/initrd";
        expect_create_error("missing initrd", c, "No such file");
        snprintf(p, sizeof(p), "%s/big-initrd", dir);
        int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        CHECK(fd >= 0 && ftruncate(fd, 30 << 20) == 0, "making a big initrd");
        close(fd);
        c.initrd_path = p;
        c.mem_size = 32 << 20;
        expect_create_error("initrd larger than RAM allows", c, "does not fit");
        c = good;
        c.mem_size = (64 << 20) + 4096;
        expect_create_error("unaligned memory", c, "multiple of 2 MiB");
        c.mem_size = 8 << 20;
        expect_create_error("tiny memory", c, "between");
        c.mem_size = 8ULL << 30;
        expect_create_error("too much memory", c, "between");
        c = good;
        c.vcpus = 2;
        expect_create_error("two vCPUs", c, "only 1 vCPU");
        c = good;
        static char longline[5000];
        memset(longline, 'x', sizeof(longline) - 1);
        c.cmdline = longline;
        expect_create_error("huge cmdline", c, "command line");

        snprintf(p, sizeof(p), "rm -rf %s", dir);
        CHECK(system(p) == 0, "cleanup");
        sprout_manifest_free(m);
}

static void case_leaks(void)
{
        struct sprout_manifest *m = load_image("hello");
        struct sprout_err err = {0};
        int fds0 = proc_count_fds();
        long rss0 = 0;
        for (int i = 0; i < 40; i++) {
                if (i == 5)
                        rss0 = proc_rss_kib(); /* after allocator warm-up */
                struct sprout_vm *vm = create(m, NULL, &err);
                CHECK(vm != NULL, "create %d: %s", i, err.msg);
                if (!vm)
                        break;
                struct sprout_vm_event ev;
                if (i % 10 == 0) /* some run a little, so the vCPU has state to drop */
                        CHECK(sprout_vm_run(vm, 50, &ev, &err) == 0, "run %d: %s", i, err.msg);
                sprout_vm_destroy(vm);
        }
        int fds1 = proc_count_fds();
        long rss1 = proc_rss_kib();
        printf("fds %d -> %d, rss %ld -> %ld KiB over 35 VMs\n", fds0, fds1, rss0, rss1);
        CHECK(fds0 == fds1, "file descriptors leaked: %d before, %d after", fds0, fds1);
        CHECK(rss1 - rss0 < 16 * 1024, "RSS grew by %ld KiB over 35 VM lifecycles", rss1 - rss0);
        sprout_manifest_free(m);
}

int main(int argc, char **argv)
{
        static const struct kvm_case cases[] = {
            {"boot_hello", case_boot_hello},
            {"boot_mmio", case_boot_mmio},
            {"boot_poweroff", case_boot_poweroff},
            {"boot_crash", case_boot_crash},
            {"hostile", case_hostile},
            {"timeout", case_timeout},
            {"timeout_halted", case_timeout_halted},
            {"bad_input", case_bad_input},
            {"leaks", case_leaks},
        };
        if (argc != 3) {
                fprintf(stderr, "usage: test_vmm CASE IMAGES_DIR\n");
                return 2;
        }
        images = argv[2];
        return kvm_case_run(argv[1], cases, sizeof(cases) / sizeof(cases[0]), &kvm);
}
