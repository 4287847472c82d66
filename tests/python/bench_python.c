/* Benchmark of the Python example (examples/python): cold start (boot to READY + first invocation)
 * against warm start (clone + first invocation), and the same handler as a plain python3 process
 * on the host. Optionally counts the guest-kernel work of one invocation with KVM trace events.
 *   bench_python IMAGES_DIR SNAPSHOT PYTHON SHIM_DIR HANDLER [--cold N] [--warm N] [--host N]
 *                [--ktrace]
 * The snapshot is made (one boot) if it does not exist. Results: docs/python.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/kvm_skip.h"
#include "pyhost.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/image.h"
#include "sprout/vmm.h"
#include "sprout/stats.h"

#define TIMEOUT_MS 30000
#define QUOTE                                                                                      \
        "{\"sku\":\"SKU-0042\",\"qty\":3,\"country\":\"DE\",\"customer\":\"Ada Lovelace "          \
        "<ada@example.org>\"}"

static struct sprout_kvm *kvm;

static void row(const char *what, double *v, size_t n, const char *unit)
{
        struct latency_summary s = summarize(v, n);
        printf("  %-38s n=%-4zu p50 %9.3f  p99 %9.3f  min %9.3f  max %9.3f %s\n", what, s.n, s.p50,
               s.p99, s.min, s.max, unit);
}

static int die(const char *what, const struct sprout_err *err)
{
        fprintf(stderr, "bench_python: %s: %s\n", what, err->msg);
        return 1;
}

/* Checks that a response is the quote's success answer. */
static bool quote_ok(const void *resp, size_t len)
{
        return len > 20 && memmem(resp, len, "\"ok\":true", 9) &&
               memmem(resp, len, "\"total\":\"538.71\"", 16);
}

/* ---- cold: a fresh VM booted from the image, then its first request ---- */

static int bench_cold(const char *images, int n)
{
        char img[4096];
        snprintf(img, sizeof(img), "%s/python", images);
        struct sprout_err err = {0};
        struct sprout_manifest *m = NULL;
        if (sprout_manifest_load(img, &m, &err) < 0)
                return die("loading the image", &err);
        double boot[16], first[16], total[16];
        int done = 0;
        printf(
            "cold start (boot to READY, then the first invocation), %d boot(s), one at a time:\n",
            n);
        for (int i = 0; i < n && i < 16; i++) {
                struct sprout_vm_config cfg = sprout_manifest_vm_config(m);
                struct sprout_vm *vm = NULL;
                struct sprout_vm_event ev;
                double t0 = sprout_mono_ms();
                if (sprout_vm_create(kvm, &cfg, &vm, &err) < 0 ||
                    sprout_vm_run(vm, 900000, &ev, &err) < 0) {
                        sprout_vm_destroy(vm);
                        sprout_manifest_free(m);
                        return die("cold boot", &err);
                }
                double t1 = sprout_mono_ms();
                if (ev.kind != SPROUT_EV_READY) {
                        fprintf(stderr, "bench_python: cold boot ended with event %d: %s\n",
                                ev.kind, ev.detail);
                        sprout_vm_destroy(vm);
                        sprout_manifest_free(m);
                        return 1;
                }
                const void *resp;
                size_t len;
                int r =
                    sprout_vm_invoke(vm, QUOTE, strlen(QUOTE), TIMEOUT_MS, &resp, &len, &ev, &err);
                double t2 = sprout_mono_ms();
                if (r < 0 || ev.kind != SPROUT_EV_DONE || !quote_ok(resp, len)) {
                        fprintf(stderr, "bench_python: cold invoke failed: %s %s\n", err.msg,
                                ev.detail);
                        sprout_vm_destroy(vm);
                        sprout_manifest_free(m);
                        return 1;
                }
                boot[done] = (t1 - t0) / 1e3;
                first[done] = t2 - t1;
                total[done] = (t2 - t0) / 1e3;
                printf("  boot %d: READY after %.2f s, first invocation %.3f ms\n", i + 1,
                       boot[done], first[done]);
                done++;
                sprout_vm_destroy(vm);
        }
        sprout_manifest_free(m);
        row("boot to READY", boot, (size_t)done, "s");
        row("first invocation after READY", first, (size_t)done, "ms");
        row("cold start (boot + first invocation)", total, (size_t)done, "s");
        return 0;
}

/* ---- warm: clones of the snapshot ---- */

/* Resident and private KiB of the clone's RAM mapping (the only mapping of exactly ram_size bytes
 * with pages in it while one clone lives). */
static void clone_ram_kib(uint64_t ram_size, unsigned long long *rss, unsigned long long *anon)
{
        FILE *f = fopen("/proc/self/smaps", "re");
        char line[256];
        bool in = false;
        unsigned long long kb, cur_rss = 0;
        *rss = *anon = 0;
        while (f && fgets(line, sizeof(line), f)) {
                unsigned long long a, b;
                if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
                        in = b - a == ram_size;
                        continue;
                }
                if (in && sscanf(line, "Rss: %llu kB", &kb) == 1)
                        cur_rss = kb;
                if (in && sscanf(line, "Anonymous: %llu kB", &kb) == 1 && cur_rss > *rss) {
                        *rss = cur_rss;
                        *anon = kb;
                }
        }
        if (f)
                fclose(f);
}

struct warm {
        double *restore, *first, *start, *second;
        size_t n;
};

static int warm_run(struct sprout_base *b, int n, bool pooled, struct warm *w)
{
        struct sprout_err err = {0};
        w->n = 0;
        for (int i = 0; i < n; i++) {
                if (pooled && sprout_base_prepare(b, 1, &err) < 0)
                        return die("preparing a shell", &err);
                struct sprout_clone *c;
                struct sprout_clone_timing t;
                const void *resp;
                size_t len;
                double t0 = sprout_mono_ms();
                if (sprout_clone_create(b, -1, &c, &t, &err) < 0)
                        return die("clone", &err);
                double t1 = sprout_mono_ms();
                int r = sprout_clone_invoke(c, QUOTE, strlen(QUOTE), TIMEOUT_MS, &resp, &len, &err);
                double t2 = sprout_mono_ms();
                if (r < 0 || !quote_ok(resp, len)) {
                        sprout_clone_destroy(c);
                        return die("warm invoke", &err);
                }
                r = sprout_clone_invoke(c, QUOTE, strlen(QUOTE), TIMEOUT_MS, &resp, &len, &err);
                double t3 = sprout_mono_ms();
                if (r < 0 || !quote_ok(resp, len)) {
                        sprout_clone_destroy(c);
                        return die("second invoke", &err);
                }
                if (i == 0 && !pooled) {
                        unsigned long long rss, anon;
                        clone_ram_kib(sprout_base_info(b)->ram_size, &rss, &anon);
                        printf("  memory of one clone after two invocations: %llu KiB of guest RAM "
                               "mapped, %llu KiB of it copied (private)\n",
                               rss, anon);
                }
                w->restore[w->n] = t.restore_ms;
                w->first[w->n] = t2 - t1;
                w->start[w->n] = t2 - t0;
                w->second[w->n] = t3 - t2;
                w->n++;
                sprout_clone_destroy(c);
        }
        return 0;
}

/* What applying a clone's identity costs inside the guest, from the runtime's own counters. */
static int identity_split(struct sprout_base *b, int n)
{
        double *ns = calloc((size_t)n, sizeof(double)), *first = calloc((size_t)n, sizeof(double));
        long long sys = -1;
        int got = 0;
        for (int i = 0; i < n && ns && first; i++) {
                struct sprout_err err = {0};
                struct sprout_clone *c;
                const void *resp;
                size_t len;
                if (sprout_clone_create(b, -1, &c, NULL, &err) < 0)
                        return die("clone", &err);
                double t0 = sprout_mono_ms();
                int r =
                    sprout_clone_invoke(c, "{\"op\":\"info\"}", 13, TIMEOUT_MS, &resp, &len, &err);
                double t1 = sprout_mono_ms();
                json_t *j = r == 0 ? pyhost_parse("info", resp, len) : NULL;
                if (j && pyhost_int(j, "result.ns") > 0) {
                        ns[got] = (double)pyhost_int(j, "result.ns") / 1e6;
                        first[got++] = t1 - t0;
                        sys = pyhost_int(j, "result.syscalls");
                }
                json_decref(j);
                sprout_clone_destroy(c);
        }
        printf("identity step inside the guest (the {\"op\":\"info\"} request, %d clones):\n", got);
        row("first invocation (info)", first, (size_t)got, "ms");
        row("of which the identity step (guest clock)", ns, (size_t)got, "ms");
        printf("  system calls the identity step made: %lld per clone\n", sys);
        free(ns);
        free(first);
        return 0;
}

/* Ready clones: restored and warmed up off the request path (the base's ready pool, ABI 1.3);
 * the request path is only the first invocation. The warm-up is timed on its own per clone. */
static int ready_run(struct sprout_base *b, int n)
{
        double *first = calloc((size_t)n, sizeof(double)),
               *warm = calloc((size_t)n, sizeof(double));
        size_t nf = 0, nw = 0;
        int rc = first && warm ? 0 : 1;
        for (int i = 0; i < n && !rc; i++) {
                struct sprout_err err = {0};
                struct sprout_clone *c;
                if (sprout_clone_create(b, -1, &c, NULL, &err) < 0) {
                        rc = die("clone", &err);
                        break;
                }
                double t0 = sprout_mono_ms();
                int r = sprout_clone_warmup(c, TIMEOUT_MS, &err);
                double t1 = sprout_mono_ms();
                sprout_clone_destroy(c);
                if (r == -ENOTSUP) {
                        printf(" ready clones: none (%s)\n", err.msg);
                        goto out;
                }
                if (r < 0) {
                        rc = die("warm-up", &err);
                        break;
                }
                warm[nw++] = t1 - t0;
                if (sprout_base_prepare_ready(b, 1, &err) < 0) {
                        rc = die("preparing a ready clone", &err);
                        break;
                }
                const void *resp;
                size_t len;
                if (sprout_clone_take_ready(b, &c) < 0) {
                        rc = 1;
                        break;
                }
                t0 = sprout_mono_ms();
                r = sprout_clone_invoke(c, QUOTE, strlen(QUOTE), TIMEOUT_MS, &resp, &len, &err);
                t1 = sprout_mono_ms();
                bool ok = r == 0 && quote_ok(resp, len);
                sprout_clone_destroy(c);
                if (!ok) {
                        rc = die("ready clone invoke", &err);
                        break;
                }
                first[nf++] = t1 - t0;
        }
        if (!rc) {
                printf(
                    " ready clones (sprout_base_prepare_ready: restored and warmed up ahead):\n");
                row("ready clone: first invoke", first, nf, "ms");
                row("warm-up (off the request path)", warm, nw, "ms");
        }
out:
        free(first);
        free(warm);
        return rc;
}

static int bench_warm(const char *snap, int n)
{
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        double t0 = sprout_mono_ms();
        if (sprout_base_load(kvm, snap, 0, &b, &err) < 0)
                return die("loading the snapshot", &err);
        printf("warm start (clone + first invocation) from %s: base loaded in %.1f ms (%llu MiB "
               "RAM)\n",
               snap, sprout_mono_ms() - t0,
               (unsigned long long)(sprout_base_info(b)->ram_size >> 20));
        struct warm w = {calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)),
                         calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)), 0};
        int rc = !w.restore || !w.first || !w.start || !w.second;
        for (int pooled = 0; pooled < 2 && !rc; pooled++) {
                rc = warm_run(b, n, pooled, &w);
                if (rc)
                        break;
                printf(" %s:\n", pooled ? "with a prepared VM shell (sprout_base_prepare, as the "
                                          "daemon's pool does)"
                                        : "no shell pool (the VM is created on the clone path)");
                row("restore (sprout_clone_create)", w.restore, w.n, "ms");
                row("first invocation", w.first, w.n, "ms");
                row("warm start (clone + first invocation)", w.start, w.n, "ms");
                row("second invocation, same clone", w.second, w.n, "ms");
        }
        if (!rc)
                rc = ready_run(b, n);
        if (!rc)
                rc = identity_split(b, n < 50 ? n : 50);
        free(w.restore);
        free(w.first);
        free(w.start);
        free(w.second);
        sprout_base_free(b);
        return rc;
}

/* ---- host reference ---- */

static int bench_host(const struct pyhost *h, int n)
{
        double *once = calloc((size_t)n, sizeof(double)), *bare = calloc((size_t)n, sizeof(double));
        int got = 0;
        for (int i = 0; i < n && once && bare; i++) {
                long long ns;
                char *out = pyhost_once(h, QUOTE, &ns);
                long long b = pyhost_bare(h);
                if (!out || !quote_ok(out, strlen(out)) || b < 0) {
                        fprintf(stderr, "bench_python: host python failed: %s\n", out ? out : "");
                        free(out);
                        break;
                }
                free(out);
                once[got] = (double)ns / 1e6;
                bare[got++] = (double)b / 1e6;
        }
        printf("host reference: %s as a plain process on this host (not in a VM):\n", h->python);
        row("start + import handler + one call", once, (size_t)got, "ms");
        row("interpreter start and exit only", bare, (size_t)got, "ms");
        free(once);
        free(bare);
        return got == n ? 0 : 1;
}

/* ---- guest kernel work per invocation, from KVM trace events ---- */

#define TRACE_ROOT "/sys/kernel/tracing/instances"

static int put(const char *dir, const char *file, const char *val)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, file);
        int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t r = write(fd, val, strlen(val));
        close(fd);
        return r == (ssize_t)strlen(val) ? 0 : -1;
}

/* Counts the trace's emulated guest-kernel instructions, #PF injections and doorbell writes. */
static void count_trace(const char *dir, long *insn, long *pf, long *pio)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/trace", dir);
        FILE *f = fopen(p, "re");
        char line[512];
        *insn = *pf = *pio = 0;
        while (f && fgets(line, sizeof(line), f)) {
                *insn += strstr(line, "kvm_emulate_insn:") != NULL;
                *pf += strstr(line, "kvm_inj_exception: #PF") != NULL;
                *pio += strstr(line, "kvm_pio:") != NULL;
        }
        if (f)
                fclose(f);
}

static int bench_ktrace(const char *snap)
{
        char dir[256], pid[32];
        snprintf(dir, sizeof(dir), "%s/sprout-pybench-%d", TRACE_ROOT, (int)getpid());
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        if (mkdir(dir, 0700) < 0) {
                fprintf(stderr,
                        "bench_python: --ktrace: mkdir %s: %s (mount tracefs on "
                        "/sys/kernel/tracing, run as root)\n",
                        dir, strerror(errno));
                return 1;
        }
        /* Only this process's events (the vCPU runs on this thread): other VMs on the host do
         * not count. */
        int rc = put(dir, "buffer_size_kb", "16384") | put(dir, "set_event_pid", pid) |
                 put(dir, "events/kvm/kvm_emulate_insn/enable", "1") |
                 put(dir, "events/kvm/kvm_inj_exception/enable", "1") |
                 put(dir, "events/kvm/kvm_pio/enable", "1");
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        if (rc == 0 && sprout_base_load(kvm, snap, 0, &b, &err) < 0)
                rc = die("loading the snapshot", &err);
        static const char *what[] = {"first invocation of a new clone", "second invocation",
                                     "third invocation"};
        struct sprout_clone *c = NULL;
        if (rc == 0 && sprout_clone_create(b, -1, &c, NULL, &err) < 0)
                rc = die("clone", &err);
        printf("guest kernel work per invocation (KVM trace events of this process):\n");
        for (int i = 0; i < 3 && rc == 0; i++) {
                const void *resp;
                size_t len;
                long insn, pf, pio;
                put(dir, "trace", "");
                put(dir, "tracing_on", "1");
                int r = sprout_clone_invoke(c, QUOTE, strlen(QUOTE), TIMEOUT_MS, &resp, &len, &err);
                put(dir, "tracing_on", "0");
                if (r < 0 || !quote_ok(resp, len)) {
                        rc = die("traced invoke", &err);
                        break;
                }
                count_trace(dir, &insn, &pf, &pio);
                printf("  %-34s %6ld emulated guest-kernel instructions, %ld guest kernel "
                       "entries (#PF: system calls arrive so on PVM), %ld doorbell exit(s)\n",
                       what[i], insn, pf, pio);
        }
        sprout_clone_destroy(c);
        sprout_base_free(b);
        put(dir, "events/kvm/enable", "0");
        rmdir(dir);
        return rc;
}

int main(int argc, char **argv)
{
        if (argc < 6) {
                fprintf(stderr, "usage: bench_python IMAGES_DIR SNAPSHOT PYTHON SHIM_DIR HANDLER "
                                "[--cold N] [--warm N] [--host N] [--ktrace]\n");
                return 2;
        }
        if (kvm_absent_skip())
                return KVM_SKIP_STATUS;
        const char *images = argv[1], *snap = argv[2];
        struct pyhost h = {.python = argv[3], .shim_dir = argv[4], .handler = argv[5]};
        int cold = 1, warm = 200, hostn = 50;
        bool ktrace = false;
        for (int i = 6; i < argc; i++) {
                if (!strcmp(argv[i], "--ktrace"))
                        ktrace = true;
                else if (i + 1 < argc && !strcmp(argv[i], "--cold"))
                        cold = atoi(argv[++i]);
                else if (i + 1 < argc && !strcmp(argv[i], "--warm"))
                        warm = atoi(argv[++i]);
                else if (i + 1 < argc && !strcmp(argv[i], "--host"))
                        hostn = atoi(argv[++i]);
                else {
                        fprintf(stderr, "bench_python: unknown option %s\n", argv[i]);
                        return 2;
                }
        }
        struct sprout_err err = {0};
        if (sprout_kvm_open(&kvm, &err) < 0)
                return die("/dev/kvm", &err);
        printf("host kind: %s\n", sprout_host_kind_name(sprout_kvm_host_kind(kvm)));
        int rc = 0;
        struct stat st;
        if (stat(snap, &st) < 0) {
                char img[4096];
                snprintf(img, sizeof(img), "%s/python", images);
                struct sprout_prewarm_opts o = {
                    .image = img, .out_path = snap, .console_fd = -1, .timeout_ms = 900000};
                struct sprout_prewarm_stats ps;
                printf("prewarming %s into %s (one boot)...\n", img, snap);
                rc = sprout_prewarm(kvm, &o, &ps, &err) < 0 ? die("prewarm", &err) : 0;
        }
        if (rc == 0 && hostn > 0)
                rc = bench_host(&h, hostn);
        if (rc == 0 && warm > 0)
                rc = bench_warm(snap, warm);
        if (rc == 0 && ktrace)
                rc = bench_ktrace(snap);
        if (rc == 0 && cold > 0)
                rc = bench_cold(images, cold);
        sprout_kvm_close(kvm);
        return rc;
}
