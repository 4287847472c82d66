/* Integration tests of snapshots and clones on real KVM: `test_clone CASE IMAGES_DIR SNAP_DIR`.
 * The `prewarm` case writes the snapshots the other cases share (a ctest fixture). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/check.h"
#include "../common/kvm_case.h"
#include "../common/prewarmed.h"
#include "../common/proc.h"
#include "sprout/abi.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/snapshot.h"
#include "sprout/vmm.h"
#include "sprout/vmstate.h"

static void case_prewarm(void)
{
        /* hello-oldrng: hello whose kernel ignores the seed page (the identity step's old path). */
        /* hostile-warmup: a guest that dies at every warm-up (the pool keeper's give-up rule). */
        static const char *names[] = {"hello", "hostile", "hello-oldrng", "hostile-warmup"};
        static const char *image[] = {"hello", "hostile", "hello", "hostile"};
        static const char *cmdline[] = {NULL, NULL, "sprout.seed=off", "SPROUT_HOSTILE=warmup"};
        mkdir(snaps, 0755);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                char img[4096];
                snprintf(img, sizeof(img), "%s/%s", images, image[i]);
                struct sprout_prewarm_opts o = {.image = img,
                                                .cmdline = cmdline[i],
                                                .out_path = snap_path(names[i]),
                                                .console_fd = -1,
                                                .timeout_ms = 300000};
                struct sprout_prewarm_stats st;
                struct sprout_err err = {0};
                int r = sprout_prewarm(kvm, &o, &st, &err);
                CHECK(r == 0, "prewarm %s: %s\n%s", names[i], err.msg, st.console_tail);
                if (r == 0) {
                        printf(
                            "%s: boot %.2f s, capture %.2f ms, write %.3f s, %llu -> %llu bytes\n",
                            names[i], st.boot_s, st.capture_ms, st.write.seconds,
                            (unsigned long long)st.write.ram_size,
                            (unsigned long long)st.write.file_size);
                        CHECK(st.write.file_size < st.write.ram_size / 4,
                              "%s: snapshot %llu bytes for %llu of RAM: zero pages not left out?",
                              names[i], (unsigned long long)st.write.file_size,
                              (unsigned long long)st.write.ram_size);
                }
        }
}

static void case_basic(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        struct sprout_clone *c;
        struct sprout_clone_timing t;
        int r = sprout_clone_create(b, -1, &c, &t, &err);
        CHECK(r == 0, "clone: %s", err.msg);
        if (r == 0) {
                char *resp = invoke(c, "{\"name\":\"clone\"}");
                CHECK(resp && strstr(resp, "\"hello\":\"world\"") &&
                          strstr(resp, "\"name\":\"clone\""),
                      "response '%s'", resp ? resp : "");
                CHECK(resp && strstr(resp, "\"seq\":1"), "first response is not seq 1: '%s'",
                      resp ? resp : "");
                printf("restore %.3f ms, response %s\n", t.restore_ms, resp ? resp : "");
                free(resp);
                sprout_clone_destroy(c);
        }
        sprout_base_free(b);
}

/* A string field of an identity answer ("key":"value") into out; "" when absent. */
static void field(const char *resp, const char *key, char *out, size_t n)
{
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":\"", key);
        const char *p = resp ? strstr(resp, pat) : NULL;
        out[0] = '\0';
        if (p) {
                p += strlen(pat);
                size_t len = strcspn(p, "\"");
                snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), p);
        }
}

static long long num_field(const char *resp, const char *key)
{
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *p = resp ? strstr(resp, pat) : NULL;
        return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/*
 * N clones of one snapshot answer, each with its own identity: the UUID the VMM gave it, and kernel
 * randomness of its own through getrandom(), /dev/urandom and the kernel's own get_random_bytes
 * (/proc/sys/kernel/random/uuid), with the right wall clock. kernel_seeds says which path the
 * snapshot's kernel takes: the seed page (no RNG system call in the identity step) or the ioctls.
 */
enum { ID_FIELDS = 4 };
static void check_identities(const char *snap, int n, bool kernel_seeds)
{
        static const char *const keys[ID_FIELDS] = {"clone", "random", "urandom", "kernel_uuid"};
        struct sprout_base *b = load_base(snap);
        if (!b)
                return;
        char(*got)[ID_FIELDS][40] = calloc((size_t)n, sizeof(*got));
        long long max_sc = 0, min_sc = 1 << 30;
        double id_ms = 0, inv_ms = 0;
        int ok = 0;
        for (int i = 0; i < n; i++) {
                struct sprout_err err = {0};
                struct sprout_clone *c;
                if (sprout_clone_create(b, -1, &c, NULL, &err) < 0) {
                        CHECK(0, "%s clone %d: %s", snap, i, err.msg);
                        continue;
                }
                int64_t t0 = sprout_mono_ns();
                char *resp = invoke(c, "{\"identity\":true}");
                inv_ms += (double)(sprout_mono_ns() - t0) / 1e6;
                double hs = (double)sprout_real_ns() / 1e9;
                for (int k = 0; k < ID_FIELDS; k++) {
                        field(resp, keys[k], got[i][k], sizeof(got[i][k]));
                        CHECK(got[i][k][0] && strspn(got[i][k], "0") != strlen(got[i][k]),
                              "%s clone %d: no %s in '%s'", snap, i, keys[k], resp ? resp : "");
                }
                CHECK(!strcmp(got[i][0], sprout_clone_id(c)),
                      "%s clone %d reports id %s, the VMM gave %s", snap, i, got[i][0],
                      sprout_clone_id(c));
                long long t = num_field(resp, "time_ns");
                CHECK(t > 0 && t / 1e9 > hs - 1 && t / 1e9 <= hs + 0.01,
                      "%s clone %d: guest clock %.3f, host %.3f", snap, i, t / 1e9, hs);
                CHECK(resp && strstr(resp, kernel_seeds ? "\"kernel_seeds\":true"
                                                        : "\"kernel_seeds\":false"),
                      "%s clone %d: the kernel should%s take the seed page: '%s'", snap, i,
                      kernel_seeds ? "" : " not", resp ? resp : "");
                long long sc = num_field(resp, "identity_syscalls");
                max_sc = sc > max_sc ? sc : max_sc;
                min_sc = sc < min_sc ? sc : min_sc;
                id_ms += (double)num_field(resp, "identity_ns") / 1e6;
                ok += resp != NULL;
                free(resp);
                sprout_clone_destroy(c);
        }
        CHECK(ok == n, "%s: %d of %d clones answered", snap, ok, n);
        /* The seed page leaves the identity step only the clock's system call, if that; the old
         * path makes two RNG ioctls. */
        if (kernel_seeds)
                CHECK(max_sc <= 1, "%s: the identity step made up to %lld system calls", snap,
                      max_sc);
        else
                CHECK(min_sc >= 2, "%s: the identity step made only %lld system calls", snap,
                      min_sc);
        for (int k = 0; k < ID_FIELDS; k++)
                for (int i = 0; i < n; i++)
                        for (int j = i + 1; j < n; j++)
                                CHECK(strcmp(got[i][k], got[j][k]) != 0 || !got[i][k][0],
                                      "%s clones %d and %d share %s %s", snap, i, j, keys[k],
                                      got[i][k]);
        printf("%s: %d clones, %d distinct ids and kernel randomness (getrandom, /dev/urandom, "
               "kernel uuid); identity step %lld-%lld system calls, %.3f ms mean; first invoke "
               "(the kernel's re-key included) %.3f ms mean\n",
               snap, n, ok, min_sc, max_sc, ok ? id_ms / ok : 0, ok ? inv_ms / ok : 0);
        free(got);
        sprout_base_free(b);
}

static void case_many(void)
{
        check_identities("hello", 100, true);
}

/* A clone of a snapshot at least 20 s old: its kvm-clock jumps by that age, more than the 8
 * chunks of 2 s from which the guest kernel (guest/kernel/patches/0006) adds the jump at once
 * rather than a second at a time. Its wall clock must still be right (check_identities), and its
 * CLOCK_MONOTONIC must run at the host's rate after the jump: 200 ms of the guest's, spun on the
 * vDSO clock, take at least 200 ms of ours. */
static void case_aged(void)
{
        struct stat st;
        if (stat(snap_path("hello"), &st) < 0) {
                CHECK(0, "%s: %s", snap_path("hello"), strerror(errno));
                return;
        }
        time_t age = time(NULL) - st.st_mtime;
        if (age < 20)
                sleep((unsigned)(20 - age));
        check_identities("hello", 3, true);
        struct sprout_base *b = load_base("hello");
        struct sprout_clone *c;
        struct sprout_err err = {0};
        if (!b || sprout_clone_create(b, -1, &c, NULL, &err) < 0) {
                CHECK(0, "clone of the aged snapshot: %s", err.msg);
                sprout_base_free(b);
                return;
        }
        int64_t t0 = sprout_mono_ns();
        char *resp = invoke(c, "{\"hold_ms\":200}");
        double ms = (double)(sprout_mono_ns() - t0) / 1e6;
        CHECK(resp && strstr(resp, "\"held_ms\":200"), "hold_ms answer: '%s'", resp ? resp : "");
        CHECK(ms >= 199.0, "200 ms of the clone's CLOCK_MONOTONIC took %.1f ms of the host's", ms);
        printf("a clone of a %lld s old snapshot: 200 ms of its monotonic clock in %.1f ms\n",
               (long long)(time(NULL) - st.st_mtime), ms);
        free(resp);
        sprout_clone_destroy(c);
        sprout_base_free(b);
}

/* The working set prewarm recorded. By default a clone holds almost nothing private until its first
 * run, which brings the write set in as private copies; the old path copies it into the shell
 * (before the clone runs, off the request path); without it the first request faults everything
 * in. All three answer as clones do. Where KVM builds the guest page tables ahead
 * (KVM_PRE_FAULT_MEMORY, in the shell only), the shell-pre-faulted clone's first request also
 * takes far fewer of KVM's page faults: a count, so it holds on any host that has the ioctl.
 * Indexed by enum sprout_prefault. */
static void case_working_set(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        const struct sprout_base_info *bi = sprout_base_info(b);
        CHECK(bi->ws_read_pages > 0 && bi->ws_write_pages > 0,
              "prewarm recorded %llu read and %llu written pages",
              (unsigned long long)bi->ws_read_pages, (unsigned long long)bi->ws_write_pages);
        static const char *const name[3] = {"at the first run", "in the shell", "off"};
        uint64_t before_run[3] = {0}, after_run[3] = {0}, faults[3] = {0};
        bool counted = true;
        for (int m = 0; m < 3; m++) {
                struct sprout_err err = {0};
                struct sprout_clone *c;
                sprout_base_set_prefault(b, (enum sprout_prefault)m);
                int r = sprout_base_prepare(b, 1, &err);
                if (r == 0)
                        r = sprout_clone_create(b, -1, &c, NULL, &err);
                CHECK(r == 0, "clone (pre-fault %s): %s", name[m], err.msg);
                if (r < 0)
                        continue;
                before_run[m] = sprout_clone_private_bytes(c);
                struct sprout_vm *vm = sprout_clone_vm(c);
                uint64_t before = 0, after = 0;
                counted = counted && sprout_vm_vcpu_stat(vm, "pf_taken", &before) == 0;
                char *resp = invoke(c, "{\"identity\":true}");
                counted = counted && sprout_vm_vcpu_stat(vm, "pf_taken", &after) == 0;
                after_run[m] = sprout_clone_private_bytes(c);
                faults[m] = after - before;
                CHECK(resp && strstr(resp, "\"seq\":1") && strstr(resp, sprout_clone_id(c)),
                      "clone (pre-fault %s) answered '%s'", name[m], resp ? resp : "");
                free(resp);
                sprout_clone_destroy(c);
        }
        sprout_base_set_prefault(b, SPROUT_PREFAULT_FIRST_RUN);
        uint64_t ws = bi->ws_write_pages * 4096;
        CHECK(before_run[SPROUT_PREFAULT_SHELL] >= ws &&
                  before_run[SPROUT_PREFAULT_FIRST_RUN] < ws / 2 &&
                  before_run[SPROUT_PREFAULT_OFF] < ws / 2,
              "private memory before the first run: %llu KiB at the first run, %llu KiB in the "
              "shell, %llu KiB off, for a %llu KiB write set",
              (unsigned long long)before_run[0] >> 10, (unsigned long long)before_run[1] >> 10,
              (unsigned long long)before_run[2] >> 10, (unsigned long long)ws >> 10);
        CHECK(after_run[SPROUT_PREFAULT_FIRST_RUN] >= ws,
              "the first run brought in %llu KiB of a %llu KiB write set",
              (unsigned long long)after_run[0] >> 10, (unsigned long long)ws >> 10);
        printf("working set: %llu pages read, %llu written; private KiB before / after the first "
               "run: %llu / %llu at the first run, %llu / %llu in the shell, %llu / %llu off\n",
               (unsigned long long)bi->ws_read_pages, (unsigned long long)bi->ws_write_pages,
               (unsigned long long)before_run[0] >> 10, (unsigned long long)after_run[0] >> 10,
               (unsigned long long)before_run[1] >> 10, (unsigned long long)after_run[1] >> 10,
               (unsigned long long)before_run[2] >> 10, (unsigned long long)after_run[2] >> 10);
        if (counted)
                printf("KVM page faults in the first request: %llu at the first run, %llu in the "
                       "shell, %llu off (KVM_PRE_FAULT_MEMORY %s)\n",
                       (unsigned long long)faults[0], (unsigned long long)faults[1],
                       (unsigned long long)faults[2],
                       sprout_kvm_pre_faults(kvm) ? "used" : "absent on this host");
        else
                printf("KVM page faults: this KVM has no pf_taken statistic\n");
        /* The guest touches more than the recorded set (a clone's request differs from the
         * warm-up's), so the pre-faulted count is not zero: a half is a margin, not a tuning. */
        if (counted && sprout_kvm_pre_faults(kvm))
                CHECK(faults[SPROUT_PREFAULT_SHELL] < faults[SPROUT_PREFAULT_OFF] / 2,
                      "KVM_PRE_FAULT_MEMORY saved too few faults: %llu, against %llu without",
                      (unsigned long long)faults[SPROUT_PREFAULT_SHELL],
                      (unsigned long long)faults[SPROUT_PREFAULT_OFF]);
        sprout_base_free(b);
}

/* A kernel told not to take the seed page (sprout.seed=off) keeps the guest library's ioctls. */
static void case_identity_old(void)
{
        check_identities("hello-oldrng", 20, false);
}

/* A clone's writes are its own: a sibling started later sees the snapshot's state, not its writes.
 */
static void case_isolation(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        struct sprout_clone *a, *c;
        REQUIRE(sprout_clone_create(b, -1, &a, NULL, &err) == 0, "clone a: %s", err.msg);
        char *r1 = NULL;
        for (int i = 0; i < 5; i++) {
                free(r1);
                r1 = invoke(a, "{}");
        }
        CHECK(r1 && strstr(r1, "\"seq\":5"), "clone a after 5 requests: '%s'", r1 ? r1 : "");
        REQUIRE(sprout_clone_create(b, -1, &c, NULL, &err) == 0, "clone c: %s", err.msg);
        char *r2 = invoke(c, "{}");
        CHECK(r2 && strstr(r2, "\"seq\":1"), "a sibling saw another clone's writes: '%s'",
              r2 ? r2 : "");
        free(r1);
        free(r2);

        /* Private memory follows what a clone writes, not the size of the base. */
        uint64_t idle = sprout_clone_private_bytes(c);
        char *r3 = invoke(c, "{\"touch_mib\":16}");
        uint64_t touched = sprout_clone_private_bytes(c);
        uint64_t other = sprout_clone_private_bytes(a);
        printf("private memory: idle clone %llu KiB, after touching 16 MiB %llu KiB\n",
               (unsigned long long)(idle >> 10), (unsigned long long)(touched >> 10));
        CHECK(touched >= idle + (15ULL << 20),
              "touching 16 MiB grew private memory by only %llu KiB",
              (unsigned long long)((touched - idle) >> 10));
        CHECK(other < (8ULL << 20), "the sibling's private memory is %llu KiB",
              (unsigned long long)(other >> 10));
        free(r3);
        sprout_clone_destroy(a);
        sprout_clone_destroy(c);
        sprout_base_free(b);
}

static void case_sequence(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        struct sprout_clone *c;
        REQUIRE(sprout_clone_create(b, -1, &c, NULL, &err) == 0, "clone: %s", err.msg);
        int good = 0;
        for (int i = 1; i <= 100; i++) {
                char want[32];
                snprintf(want, sizeof(want), "\"seq\":%d}", i);
                char *r = invoke(c, "{\"k\":[1,2,3]}");
                good += r && strstr(r, want) != NULL;
                free(r);
        }
        CHECK(good == 100, "%d of 100 sequential invocations answered in order", good);
        sprout_clone_destroy(c);
        sprout_base_free(b);
}

/* A guest that misbehaves after restore costs only its own clone. */
static void case_hostile(void)
{
        struct sprout_base *b = load_base("hostile");
        if (!b)
                return;
        struct sprout_err err = {0};
        struct sprout_clone *bad, *good;
        const void *resp;
        size_t len;
        REQUIRE(sprout_clone_create(b, -1, &bad, NULL, &err) == 0, "clone: %s", err.msg);
        REQUIRE(sprout_clone_create(b, -1, &good, NULL, &err) == 0, "clone: %s", err.msg);
        double t0 = sprout_mono_s();
        int r = sprout_clone_invoke(bad, "L", 1, 1000, &resp, &len, &err);
        CHECK(r == -ETIMEDOUT && strstr(err.msg, "did not answer"), "a looping clone: r=%d '%s'", r,
              err.msg);
        CHECK(sprout_mono_s() - t0 < 5, "the invoke time limit took %.2f s", sprout_mono_s() - t0);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(bad, "x", 1, 1000, &resp, &len, &err);
        CHECK(r == -ESHUTDOWN, "a timed-out clone took another request: r=%d", r);
        sprout_err_clear(&err);
        static char big[SPROUT_MB_REQ_SIZE + 1];
        r = sprout_clone_invoke(good, big, sizeof(big), 1000, &resp, &len, &err);
        CHECK(r == -EMSGSIZE, "an oversized request: r=%d '%s'", r, err.msg);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(good, "B", 1, 10000, &resp, &len, &err);
        CHECK(r == -EPROTO && strstr(err.msg, "response area"),
              "a lying response length: r=%d '%s'", r, err.msg);
        struct sprout_clone *dies;
        REQUIRE(sprout_clone_create(b, -1, &dies, NULL, &err) == 0, "clone: %s", err.msg);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(dies, "X", 1, 30000, &resp, &len, &err);
        CHECK(r == -EPROTO && strstr(err.msg, "exited"), "a handler that dies: r=%d '%s'", r,
              err.msg);
        sprout_clone_destroy(dies);
        /* A guest that answers with a new identity unapplied served with its parent's entropy:
         * the answer is refused and the clone is dead. */
        struct sprout_clone *noid;
        REQUIRE(sprout_clone_create(b, -1, &noid, NULL, &err) == 0, "clone: %s", err.msg);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(noid, "Z", 1, 10000, &resp, &len, &err);
        CHECK(r == 0 && len == 2, "a bare DONE: r=%d '%s'", r, err.msg);
        static const uint8_t uuid[16] = {0x5a};
        sprout_err_clear(&err);
        REQUIRE(sprout_vm_set_identity(sprout_clone_vm(noid), uuid, &err) == 0, "identity: %s",
                err.msg);
        r = sprout_clone_invoke(noid, "x", 1, 10000, &resp, &len, &err);
        CHECK(r == -EPROTO && strstr(err.msg, "without applying its new identity"),
              "an answer with NEW_IDENTITY set: r=%d '%s'", r, err.msg);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(noid, "x", 1, 10000, &resp, &len, &err);
        CHECK(r == -ESHUTDOWN, "the clone took another request: r=%d '%s'", r, err.msg);
        sprout_clone_destroy(noid);
        sprout_clone_destroy(bad);
        sprout_clone_destroy(good);
        /* Other clones of the same base still work. */
        struct sprout_clone *fresh;
        REQUIRE(sprout_clone_create(b, -1, &fresh, NULL, &err) == 0, "clone: %s", err.msg);
        sprout_err_clear(&err);
        r = sprout_clone_invoke(fresh, "x", 1, 10000, &resp, &len, &err);
        CHECK(r == 0 && len == 2 && !memcmp(resp, "ok", 2), "a fresh clone: r=%d '%s'", r, err.msg);
        sprout_clone_destroy(fresh);
        sprout_base_free(b);
}

static void case_leaks(void)
{
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        int fds0 = 0;
        long rss0 = 0;
        int ok = 0;
        for (int i = 0; i < 200; i++) {
                if (i == 10) {
                        fds0 = proc_count_fds();
                        rss0 = proc_rss_kib();
                }
                struct sprout_err err = {0};
                struct sprout_clone *c;
                if (sprout_clone_create(b, -1, &c, NULL, &err) < 0) {
                        CHECK(0, "clone %d: %s", i, err.msg);
                        break;
                }
                char *r = invoke(c, "{}");
                ok += r != NULL;
                free(r);
                sprout_clone_destroy(c);
        }
        int fds1 = proc_count_fds();
        long rss1 = proc_rss_kib();
        printf("200 clone/invoke/destroy cycles: fds %d -> %d, RSS %ld -> %ld KiB\n", fds0, fds1,
               rss0, rss1);
        CHECK(ok == 200, "%d of 200 clones answered", ok);
        CHECK(fds0 == fds1, "file descriptors leaked: %d -> %d", fds0, fds1);
        CHECK(rss1 - rss0 < 8 * 1024, "RSS grew %ld KiB over 190 clone lifecycles", rss1 - rss0);
        sprout_base_free(b);
}

/* Rewrites a snapshot with its vCPU section or host facts altered, as a foreign host would. */
static int added_bit = -1; /* the leaf 7 EDX bit rewrite() set, which this host lacks */

/* guest_abi nonzero: also set the VM section's record of the ABI the guest's READY reported (type
 * 8), as a snapshot of an older guest would have it. */
static int rewrite(const char *src, const char *dst, uint32_t host_kind, bool add_cpu_feature,
                   uint32_t guest_abi)
{
        struct sprout_err err = {0};
        struct snap_file *f;
        if (snap_open(src, &f, &err) < 0)
                return -1;
        const struct snap_info *si = snap_get_info(f);
        struct snap_section secs[16];
        void *copies[16] = {0};
        unsigned n = 0;
        for (unsigned i = 0; i < si->nsections && n < 16; i++, n++) {
                snap_section_at(f, i, &secs[i]);
                if (secs[i].tag == SPROUT_SEC_VCPU && add_cpu_feature) {
                        /* Find the CPUID record (type 11) and set a leaf 7 EDX bit it lacks: the
                         * record is this host's profile, so the host lacks that feature. */
                        uint8_t *d = malloc(secs[i].len);
                        memcpy(d, secs[i].data, secs[i].len);
                        for (size_t off = 0; off + 8 <= secs[i].len;) {
                                uint32_t type, len;
                                memcpy(&type, d + off, 4);
                                memcpy(&len, d + off + 4, 4);
                                if (type == 11) {
                                        struct kvm_cpuid2 *c = (struct kvm_cpuid2 *)(d + off + 8);
                                        for (uint32_t e = 0; e < c->nent; e++)
                                                if (c->entries[e].function == 7 &&
                                                    c->entries[e].index == 0) {
                                                        uint32_t *edx = &c->entries[e].edx;
                                                        for (added_bit = 31;
                                                             added_bit > 0 &&
                                                             (*edx >> added_bit & 1);
                                                             added_bit--)
                                                                ;
                                                        *edx |= 1u << added_bit;
                                                }
                                }
                                off += 8 + ((len + 7) & ~7u);
                        }
                        secs[i].data = d;
                        copies[i] = d;
                }
                if (secs[i].tag == SPROUT_SEC_VM && guest_abi) {
                        uint8_t *d = malloc(secs[i].len);
                        memcpy(d, secs[i].data, secs[i].len);
                        bool found = false;
                        for (size_t off = 0; off + 8 <= secs[i].len;) {
                                uint32_t type, len;
                                memcpy(&type, d + off, 4);
                                memcpy(&len, d + off + 4, 4);
                                if (type == 8 && len == 4) {
                                        memcpy(d + off + 8, &guest_abi, 4);
                                        found = true;
                                }
                                off += 8 + ((len + 7) & ~7u);
                        }
                        CHECK(found, "the VM section has no guest ABI record");
                        secs[i].data = d;
                        copies[i] = d;
                }
        }
        /* The RAM, through a base memfd like any reader's. */
        int memfd = -1;
        struct snap_load_stats ls;
        if (snap_load_ram(f, 0, &memfd, &ls, &err) < 0)
                return -1;
        void *ram = mmap(NULL, si->ram_size, PROT_READ, MAP_SHARED, memfd, 0);
        struct snap_write_opts o = {.path = dst,
                                    .vcpus = si->vcpus,
                                    .sections = secs,
                                    .nsections = n,
                                    .ram = ram,
                                    .ram_size = si->ram_size,
                                    .host = si->host};
        o.host.host_kind = host_kind;
        struct snap_write_stats ws;
        int r = ram == MAP_FAILED ? -1 : snap_write(&o, &ws, &err);
        if (ram != MAP_FAILED)
                munmap(ram, si->ram_size);
        close(memfd);
        for (unsigned i = 0; i < 16; i++)
                free(copies[i]);
        snap_close(f);
        return r;
}

static void case_foreign(void)
{
        char p[4200];
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        uint32_t here = sprout_kvm_host_kind(kvm);
        uint32_t other = here == SPROUT_HOST_PVM ? SPROUT_HOST_VMX : SPROUT_HOST_PVM;

        snprintf(p, sizeof(p), "%s/foreign-kind.snap", snaps);
        CHECK(rewrite(snap_path("hello"), p, other, false, 0) == 0,
              "rewriting for another host kind");
        int r = sprout_base_load(kvm, p, 0, &b, &err);
        CHECK(r == -ENOTSUP && strstr(err.msg, "host"), "another host kind: r=%d '%s'", r, err.msg);
        sprout_base_free(b);
        b = NULL;
        unlink(p);

        sprout_err_clear(&err);
        snprintf(p, sizeof(p), "%s/foreign-cpu.snap", snaps);
        CHECK(rewrite(snap_path("hello"), p, here, true, 0) == 0,
              "rewriting with a new CPU feature");
        r = sprout_base_load(kvm, p, 0, &b, &err);
        char want[64];
        snprintf(want, sizeof(want), "leaf 0x7.0 EDX bit %d", added_bit);
        CHECK(r == -ENOTSUP && strstr(err.msg, want),
              "a CPU feature this host lacks (%s): r=%d '%s'", want, r, err.msg);
        sprout_base_free(b);
        unlink(p);

        sprout_err_clear(&err);
        r = sprout_base_load(kvm, "/nonexistent.snap", 0, &b, &err);
        CHECK(r < 0 && strstr(err.msg, "No such file"), "a missing snapshot: '%s'", err.msg);
}

/* Ready clones: warmed up off the request path, each with its own identity, each handed out once;
 * a warmed clone's first real request is still its first ("seq":1). */
/* The pools' keeper (sprout_base_keep_pools): a healthy base fills both pools and reports no
 * failure; a guest that dies at every warm-up is retried after doubling waits, then gets no more
 * ready clones while its shells are still kept. */
static void case_keeper(void)
{
        struct sprout_err err = {0};
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_pool_keeper k = {0};
        int64_t ms = sprout_base_keep_pools(b, 2, 1, 1, &k, &err);
        CHECK(ms == 0 && k.failures == 0 && !k.ready_off, "hello's pools: %lld ms, %s",
              (long long)ms, err.msg);
        CHECK(sprout_base_pooled(b) == 2 && sprout_base_ready_count(b) == 1,
              "hello keeps 2 shells and 1 ready clone (%u, %u)", sprout_base_pooled(b),
              sprout_base_ready_count(b));
        sprout_base_free(b);

        b = load_base("hostile-warmup");
        if (!b)
                return;
        k = (struct sprout_pool_keeper){0};
        int64_t want = SPROUT_KEEP_RETRY_MIN_MS;
        for (int i = 0; i < SPROUT_KEEP_READY_GIVE_UP; i++, want *= 2) {
                err = (struct sprout_err){0};
                ms = sprout_base_keep_pools(b, 1, 1, 1, &k, &err);
                CHECK(ms == want && k.failures == (unsigned)i + 1,
                      "failed warm-up %d: retry in %lld ms (want %lld), %u failures: %s", i + 1,
                      (long long)ms, (long long)want, k.failures, err.msg);
                if (i == 0)
                        printf("a warm-up that kills the guest: %s\n", err.msg);
        }
        CHECK(k.ready_off, "ready clones still on after %d failed warm-ups",
              SPROUT_KEEP_READY_GIVE_UP);
        ms = sprout_base_keep_pools(b, 1, 1, 1, &k, &err);
        CHECK(ms == 0 && k.failures == 0 && sprout_base_ready_count(b) == 0 &&
                  sprout_base_pooled(b) == 1,
              "after giving up: %lld ms, %u ready, %u shells", (long long)ms,
              sprout_base_ready_count(b), sprout_base_pooled(b));
        /* Its clones still work on the request path. */
        struct sprout_clone *c;
        int r = sprout_clone_create(b, -1, &c, NULL, &err);
        CHECK(r == 0, "a clone of hostile-warmup: %s", err.msg);
        if (r == 0)
                sprout_clone_destroy(c);
        sprout_base_free(b);
}

static void case_ready(void)
{
        enum { N = 10 };
        struct sprout_base *b = load_base("hello");
        if (!b)
                return;
        struct sprout_err err = {0};
        double t0 = sprout_mono_s();
        int r = sprout_base_prepare_ready(b, N, &err);
        double t1 = sprout_mono_s();
        CHECK(r == 0, "prepare_ready: %s", err.msg);
        CHECK(sprout_base_ready_count(b) == N, "%u ready clones, wanted %d",
              sprout_base_ready_count(b), N);
        printf("%d ready clones in %.1f ms\n", N, (t1 - t0) * 1e3);
        static char ids[N][64], rnd[N][64];
        struct sprout_clone *taken[N] = {0};
        for (int i = 0; i < N; i++) {
                struct sprout_clone *c = NULL;
                r = sprout_clone_take_ready(b, &c);
                CHECK(r == 0 && c, "take_ready %d: %d", i, r);
                if (r < 0)
                        continue;
                for (int j = 0; j < i; j++)
                        CHECK(taken[j] != c, "ready clone %d handed out twice", j);
                taken[i] = c;
                char *resp = invoke(c, "{\"identity\":true}");
                char *p;
                CHECK(resp && strstr(resp, "\"seq\":1}"),
                      "ready clone %d: first response not seq 1: '%s'", i, resp ? resp : "");
                if (resp && (p = strstr(resp, "\"clone\":\""))) {
                        snprintf(ids[i], sizeof(ids[i]), "%.36s", p + 9);
                        CHECK(!strcmp(ids[i], sprout_clone_id(c)),
                              "ready clone %d reports id %s, the VMM gave %s", i, ids[i],
                              sprout_clone_id(c));
                } else {
                        CHECK(0, "ready clone %d: no clone id in '%s'", i, resp ? resp : "");
                }
                if (resp && (p = strstr(resp, "\"random\":\"")))
                        snprintf(rnd[i], sizeof(rnd[i]), "%.32s", p + 10);
                else
                        CHECK(0, "ready clone %d: no random bytes in '%s'", i, resp ? resp : "");
                free(resp);
                resp = invoke(c, "{\"name\":\"again\"}");
                CHECK(resp && strstr(resp, "\"seq\":2}") && strstr(resp, "\"name\":\"again\""),
                      "ready clone %d: second response '%s'", i, resp ? resp : "");
                free(resp);
        }
        struct sprout_clone *none = NULL;
        CHECK(sprout_clone_take_ready(b, &none) == -ENOENT && !none, "an empty pool gave a clone");
        for (int i = 0; i < N; i++) {
                for (int j = i + 1; j < N; j++) {
                        CHECK(strcmp(ids[i], ids[j]) != 0 || !ids[i][0],
                              "ready clones %d and %d share id %s", i, j, ids[i]);
                        CHECK(strcmp(rnd[i], rnd[j]) != 0 || !rnd[i][0],
                              "ready clones %d and %d read the same random bytes %s", i, j, rnd[i]);
                }
                sprout_clone_destroy(taken[i]);
        }
        /* A warm-up on a clone taken the ordinary way, then a second one: both answered. */
        struct sprout_clone *c;
        r = sprout_clone_create(b, -1, &c, NULL, &err);
        CHECK(r == 0, "clone: %s", err.msg);
        if (r == 0) {
                CHECK(sprout_clone_warmup(c, 30000, &err) == 0, "warm-up: %s", err.msg);
                CHECK(sprout_clone_warmup(c, 30000, &err) == 0, "second warm-up: %s", err.msg);
                char *resp = invoke(c, "{\"x\":1}");
                CHECK(resp && strstr(resp, "\"seq\":1}"), "after two warm-ups: '%s'",
                      resp ? resp : "");
                free(resp);
                sprout_clone_destroy(c);
        }
        /* Ready clones left in the pool are destroyed with the base. */
        r = sprout_base_prepare_ready(b, 2, &err);
        CHECK(r == 0 && sprout_base_ready_count(b) == 2, "prepare_ready 2: %s", err.msg);
        sprout_base_free(b);
}

/* A snapshot whose guest reported ABI 1.2 at READY never gets a warm-up: the VMM refuses it
 * before running the guest, and the clone serves as usual. */
static void case_warmup_old(void)
{
        char p[4200];
        struct sprout_err err = {0};
        struct sprout_base *b = NULL;
        snprintf(p, sizeof(p), "%s/old-abi.snap", snaps);
        CHECK(rewrite(snap_path("hello"), p, sprout_kvm_host_kind(kvm), false, (1u << 16) | 2u) ==
                  0,
              "rewriting with guest ABI 1.2");
        int r = sprout_base_load(kvm, p, 0, &b, &err);
        CHECK(r == 0, "loading the 1.2 snapshot: %s", err.msg);
        unlink(p);
        if (r < 0)
                return;
        struct sprout_clone *c;
        r = sprout_clone_create(b, -1, &c, NULL, &err);
        CHECK(r == 0, "clone: %s", err.msg);
        if (r == 0) {
                CHECK(!sprout_vm_can_warmup(sprout_clone_vm(c)) &&
                          sprout_vm_guest_abi(sprout_clone_vm(c)) == ((1u << 16) | 2u),
                      "the clone's recorded guest ABI is 0x%x",
                      sprout_vm_guest_abi(sprout_clone_vm(c)));
                r = sprout_clone_warmup(c, 30000, &err);
                CHECK(r == -ENOTSUP && strstr(err.msg, "1.2"), "warm-up to a 1.2 guest: r=%d '%s'",
                      r, err.msg);
                char *resp = invoke(c, "{\"identity\":true}");
                CHECK(resp && strstr(resp, "\"seq\":1}") && strstr(resp, sprout_clone_id(c)),
                      "after the refused warm-up: '%s'", resp ? resp : "");
                free(resp);
                sprout_clone_destroy(c);
        }
        sprout_err_clear(&err);
        r = sprout_base_prepare_ready(b, 3, &err);
        CHECK(r == -ENOTSUP && sprout_base_ready_count(b) == 0,
              "prepare_ready on a 1.2 snapshot: r=%d, %u pooled, '%s'", r,
              sprout_base_ready_count(b), err.msg);
        struct sprout_clone *none = NULL;
        CHECK(sprout_clone_take_ready(b, &none) == -ENOENT, "take_ready on an empty pool");
        sprout_base_free(b);

        /* The snapshot as written records what its guest said: 1.3 or later. */
        b = load_base("hello");
        if (!b)
                return;
        r = sprout_clone_create(b, -1, &c, NULL, &err);
        CHECK(r == 0, "clone: %s", err.msg);
        if (r == 0) {
                CHECK(sprout_vm_can_warmup(sprout_clone_vm(c)), "hello's recorded ABI is 0x%x",
                      sprout_vm_guest_abi(sprout_clone_vm(c)));
                sprout_clone_destroy(c);
        }
        sprout_base_free(b);
}

int main(int argc, char **argv)
{
        static const struct kvm_case cases[] = {
            {"prewarm", case_prewarm},
            {"basic", case_basic},
            {"many", case_many},
            {"isolation", case_isolation},
            {"sequence", case_sequence},
            {"hostile", case_hostile},
            {"leaks", case_leaks},
            {"foreign", case_foreign},
            {"ready", case_ready},
            {"keeper", case_keeper},
            {"warmup_old", case_warmup_old},
            {"identity_old", case_identity_old},
            {"working_set", case_working_set},
            {"aged", case_aged},
        };
        if (argc != 4) {
                fprintf(stderr, "usage: test_clone CASE IMAGES_DIR SNAP_DIR\n");
                return 2;
        }
        images = argv[2];
        snaps = argv[3];
        return kvm_case_run(argv[1], cases, sizeof(cases) / sizeof(cases[0]), &kvm);
}
