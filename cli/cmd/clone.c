/* sprout clone: clones through sproutd (their ids are printed), or direct mode, no daemon: load a
 * snapshot as a base, restore N clones, invoke each, and report responses and latencies. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_opts.h"
#include "client.h"
#include "commands.h"
#include "sprout/clock.h"
#include "sprout/clone.h"
#include "sprout/snapshot.h"
#include "sprout/stats.h"

static void direct_usage(FILE *f)
{
        fprintf(
            f, "usage: sprout clone SNAPSHOT [options]\n\n"
               "Loads SNAPSHOT once as a shared base, restores copy-on-write clones of it, sends "
               "each\n"
               "the request, prints the responses and the latencies, and destroys the clones.\n\n"
               "options:\n"
               "  --invoke JSON       the request to send each clone (default {})\n"
               "  -n, --count N       how many clones (default 1)\n"
               "  --requests K        requests per clone, in sequence (default 1)\n"
               "  --pool N            prepare N VM shells ahead, off the restore path (default 0)\n"
               "  --ready             warm each clone up (ABI 1.3 warm-up: identity + runtime\n"
               "                      warm-up hook) before its timed first invoke; print both\n"
               "  --timeout-ms MS     per-invocation time limit (default 10000)\n"
               "  --console           echo the clones' console output to stderr\n"
               "  --quiet             print only the summary\n"
               "  --json              print one JSON object per clone, then a summary object\n"
               "  -h, --help          show this help\n");
}

static const struct cli_verb direct_verb = {
    .name = "clone", .usage = direct_usage, .operands = 1, .operands_msg = "expected one SNAPSHOT"};

static void print_summary(const char *what, struct latency_summary s, bool json)
{
        if (json)
                printf("{\"metric\":\"%s\",\"unit\":\"ms\",\"n\":%zu,\"p50\":%.4f,\"p90\":%.4f,"
                       "\"p99\":%.4f,\"max\":%.4f}\n",
                       what, s.n, s.p50, s.p90, s.p99, s.max);
        else
                printf("%-22s n=%-5zu p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n",
                       what, s.n, s.p50, s.p90, s.p99, s.max);
}

struct direct_args {
        const char *req;
        long count, requests, pool, timeout_ms;
        bool console, quiet, json, ready;
};

/* Latencies in ms: restore per clone (0 where it failed), the others per clone that answered. */
struct direct_stats {
        double *restore, *first, *later, *warm, *invoke1;
        size_t nlater, nok;
};

/* One line (or JSON object) per clone: its first answer and what it cost. */
static void print_clone(const struct direct_args *a, struct sprout_clone *cl,
                        const struct sprout_clone_timing *t, double warm_ms, double ms,
                        const void *resp, size_t len)
{
        unsigned long long priv_kib = sprout_clone_private_bytes(cl) >> 10;
        const char *id = sprout_clone_id(cl), *pooled = t->pooled ? " (pooled)" : "";
        if (a->json && a->ready)
                printf("{\"clone\":\"%s\",\"restore_ms\":%.4f,\"warmup_ms\":%.4f,"
                       "\"invoke_ms\":%.4f,\"private_kib\":%llu,\"response\":%.*s}\n",
                       id, t->restore_ms, warm_ms, ms, priv_kib, (int)len, (const char *)resp);
        else if (a->json)
                printf("{\"clone\":\"%s\",\"restore_ms\":%.4f,\"invoke_ms\":%.4f,"
                       "\"private_kib\":%llu,\"response\":%.*s}\n",
                       id, t->restore_ms, ms, priv_kib, (int)len, (const char *)resp);
        else if (a->ready)
                printf("%s restore %.3f ms%s, warm-up %.3f ms, ready first invoke %.3f ms, "
                       "private %llu KiB: %.*s\n",
                       id, t->restore_ms, pooled, warm_ms, ms, priv_kib, (int)len,
                       (const char *)resp);
        else
                printf("%s restore %.3f ms%s, invoke %.3f ms, private %llu KiB: %.*s\n", id,
                       t->restore_ms, pooled, ms, priv_kib, (int)len, (const char *)resp);
}

/* Sends the clone its requests in sequence: the first is reported, the later ones only timed. */
static int serve(const struct direct_args *a, struct sprout_clone *cl,
                 const struct sprout_clone_timing *t, double warm_ms, struct direct_stats *st)
{
        for (long k = 0; k < a->requests; k++) {
                struct sprout_err err = {0};
                const void *resp;
                size_t len;
                int64_t t0 = sprout_mono_ns();
                int r = sprout_clone_invoke(cl, a->req, strlen(a->req), a->timeout_ms, &resp, &len,
                                            &err);
                double ms = (double)(sprout_mono_ns() - t0) / 1e6;
                if (r < 0) {
                        fprintf(stderr, "sprout clone: %s\n", err.msg);
                        return r;
                }
                if (k > 0) {
                        st->later[st->nlater++] = ms;
                        continue;
                }
                st->warm[st->nok] = warm_ms;
                st->invoke1[st->nok] = ms;
                st->first[st->nok++] = t->restore_ms + ms;
                if (!a->quiet)
                        print_clone(a, cl, t, warm_ms, ms, resp, len);
        }
        return 0;
}

/* Clone i: restore it, warm it up if asked, serve it, destroy it. */
static int one_clone(const struct direct_args *a, struct sprout_base *base, long i,
                     struct direct_stats *st)
{
        struct sprout_err err = {0};
        struct sprout_clone *cl;
        struct sprout_clone_timing t;
        int r = sprout_clone_create(base, a->console ? STDERR_FILENO : -1, &cl, &t, &err);
        if (r < 0) {
                fprintf(stderr, "sprout clone: clone %ld: %s\n", i, err.msg);
                return r;
        }
        st->restore[i] = t.restore_ms;
        double warm_ms = 0;
        if (a->ready) {
                int64_t t0 = sprout_mono_ns();
                r = sprout_clone_warmup(cl, a->timeout_ms, &err);
                warm_ms = (double)(sprout_mono_ns() - t0) / 1e6;
                if (r < 0) {
                        fprintf(stderr, "sprout clone: warm-up of %s: %s\n", sprout_clone_id(cl),
                                err.msg);
                        sprout_clone_destroy(cl);
                        return r;
                }
        }
        r = serve(a, cl, &t, warm_ms, st);
        sprout_clone_destroy(cl);
        return r;
}

static void print_summaries(const struct direct_args *a, struct direct_stats *st)
{
        print_summary("restore", summarize(st->restore, (size_t)a->count), a->json);
        print_summary("restore+first-invoke", summarize(st->first, st->nok), a->json);
        if (a->ready) {
                print_summary("warm-up", summarize(st->warm, st->nok), a->json);
                print_summary("ready first invoke", summarize(st->invoke1, st->nok), a->json);
        }
        if (st->nlater)
                print_summary("warm invoke", summarize(st->later, st->nlater), a->json);
}

static int clone_direct(int argc, char **argv)
{
        struct direct_args a = {.req = "{}", .count = 1, .requests = 1, .timeout_ms = 10000};
        const struct cli_opt opts[] = {
            CLI_STRING("invoke", 0, &a.req),
            CLI_LONG("count", 'n', &a.count, 1, 100000),
            CLI_LONG("requests", 0, &a.requests, 1, 1000000),
            CLI_LONG("pool", 0, &a.pool, 0, 64),
            CLI_FLAG("ready", 0, &a.ready),
            CLI_LONG("timeout-ms", 0, &a.timeout_ms, 1, 3600000),
            CLI_FLAG("console", 0, &a.console),
            CLI_FLAG("quiet", 0, &a.quiet),
            CLI_JSON(&a.json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&direct_verb, opts, argc, argv, &status) < 0)
                return status;

        struct sprout_err err = {0};
        struct sprout_kvm *kvm = NULL;
        struct sprout_base *base = NULL;
        size_t n = (size_t)a.count;
        struct direct_stats st = {
            .restore = calloc(n, sizeof(double)),
            .first = calloc(n, sizeof(double)),
            .later = calloc((size_t)(a.count * (a.requests - 1) + 1), sizeof(double)),
            .warm = calloc(n, sizeof(double)),
            .invoke1 = calloc(n, sizeof(double)),
        };
        int rc = 1;

        if (!st.restore || !st.first || !st.later || !st.warm || !st.invoke1) {
                fprintf(stderr, "sprout clone: out of memory\n");
                goto out;
        }
        /* The file is checked before KVM is needed (headers and index only: cheap), so a bad file
         * is named as the problem even on a host without KVM. */
        struct snap_file *check = NULL;
        if (snap_open(argv[optind], &check, &err) < 0) {
                fprintf(stderr, "sprout clone: %s\n", err.msg);
                goto out;
        }
        snap_close(check);
        if (sprout_kvm_open(&kvm, &err) < 0 ||
            sprout_base_load(kvm, argv[optind], 0, &base, &err) < 0) {
                fprintf(stderr, "sprout clone: %s\n", err.msg);
                goto out;
        }
        const struct sprout_base_info *bi = sprout_base_info(base);
        if (!a.quiet && !a.json)
                printf("base loaded: %llu MiB RAM in %.1f ms (%.0f MiB/s, %u threads)\n",
                       (unsigned long long)(bi->ram_size >> 20), bi->load.seconds * 1e3,
                       bi->load.mb_per_s, bi->load.threads);
        rc = 0;
        for (long i = 0; i < a.count; i++) {
                if (a.pool && sprout_base_prepare(base, (unsigned)a.pool, &err) < 0) {
                        fprintf(stderr, "sprout clone: preparing the pool: %s\n", err.msg);
                        rc = 1;
                        break;
                }
                if (one_clone(&a, base, i, &st) < 0)
                        rc = 1;
        }
        if (st.nok > 1 || a.quiet || a.json)
                print_summaries(&a, &st);
out:
        sprout_base_free(base);
        sprout_kvm_close(kvm);
        free(st.restore);
        free(st.first);
        free(st.later);
        free(st.warm);
        free(st.invoke1);
        return rc;
}

static void daemon_usage(FILE *f)
{
        fprintf(
            f,
            "usage: sprout clone SNAPSHOT_ID [-n N] [--json] [--socket PATH]  (through sproutd)\n"
            "       sprout clone --direct SNAPSHOT_FILE [options]            (no daemon)\n\n"
            "Asks sproutd for N clones (default 1) of the snapshot and prints their ids, one\n"
            "per line. A SNAPSHOT that is not a snapshot id is a file: direct mode, as with\n"
            "--direct ('sprout clone --direct --help' shows its options).\n"
            "Exit status: 0 ok, 1 refused or failed, 2 usage error, 3 sproutd unreachable.\n");
}

static const struct cli_verb daemon_verb = {.name = "clone",
                                            .usage = daemon_usage,
                                            .operands = 1,
                                            .operands_msg = "expected one SNAPSHOT_ID"};

static int clone_daemon(int argc, char **argv)
{
        const char *socket = NULL;
        long n = 1;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_LONG_AS("count", 'n', &n, 1, 256, "-n"),
            CLI_SOCKET(&socket),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&daemon_verb, opts, argc, argv, &status) < 0)
                return status;
        json_t *req = json_pack("{s:s, s:i}", "snapshot", argv[optind], "count", (int)n);
        struct client cl;
        struct client_resp r;
        int rc = client_open(&cl, socket);
        if (rc) {
                json_decref(req);
                return rc;
        }
        int e = client_post_json(&cl, "/v1/clones", req, 120000, &r);
        json_decref(req);
        if (e < 0 || r.status != 201 || !r.json) {
                rc = client_fail("clone", &cl, e, &r);
        } else {
                json_t *arr = json_object_get(r.json, "clones"), *x;
                size_t i;
                if (json)
                        print_json(arr, JSON_INDENT(2));
                else
                        json_array_foreach(arr, i, x)
                            printf("%s\n", json_string_value(json_object_get(x, "id")));
        }
        client_resp_free(&r);
        client_close(&cl);
        return rc;
}

static bool is_snapshot_id(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

/* Direct mode when asked with --direct, or when the snapshot named is not a daemon snapshot id
 * (then it is a file: `sprout clone FILE` kept working when the daemon mode came). */
static bool wants_direct(int argc, char **argv)
{
        static const char *const with_value[] = {"-n",         "--count", "--socket",    "--invoke",
                                                 "--requests", "--pool",  "--timeout-ms"};
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--direct"))
                        return true;
                if (argv[i][0] == '-') {
                        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
                                if (!strcmp(argv[i], with_value[k]))
                                        i++;
                        continue;
                }
                return !is_snapshot_id(argv[i]);
        }
        return false;
}

int sprout_cmd_clone(int argc, char **argv)
{
        if (!wants_direct(argc, argv))
                return clone_daemon(argc, argv);
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--direct"))
                        continue;
                /* Drop the flag and run the direct mode with its own options, unchanged. */
                char **v = calloc((size_t)argc, sizeof(*v));
                if (!v)
                        return CLI_EXIT_FAIL;
                int n = 0;
                for (int k = 0; k < argc; k++)
                        if (k != i)
                                v[n++] = argv[k];
                int rc = clone_direct(n, v);
                free(v);
                return rc;
        }
        return clone_direct(argc, argv);
}
