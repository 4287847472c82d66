/* sprout inspect: what a snapshot file holds, and whether every byte of it checks out. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "cli_opts.h"
#include "commands.h"
#include "sprout/snapshot.h"
#include "sprout/vmm.h"
#include "sprout/vmstate.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: sprout inspect FILE [--no-verify] [--json]\n\n"
                   "Prints a snapshot's header, state sections and RAM chunk statistics, then\n"
                   "decompresses every chunk to verify its checksum (skip with --no-verify).\n"
                   "Exit status 1 if the file is malformed or a checksum fails.\n");
}

static const struct cli_verb inspect_verb = {.name = "inspect", .usage = usage, .operands = 1};

static const char *tag_name(uint32_t tag)
{
        switch (tag) {
        case SPROUT_SEC_VCPU:
                return "vcpu";
        case SPROUT_SEC_VM:
                return "vm";
        case SPROUT_SEC_DEVICES:
                return "devices";
        case SPROUT_SEC_MANIFEST:
                return "manifest";
        default:
                return "unknown";
        }
}

/* The facts as one JSON object; verified is null when not checked. */
static void print_json_info(const struct snap_info *si, const char *id, const char *when,
                            double ratio, bool verify, int vr)
{
        printf("{\"id\":\"%s\",\"format\":\"%u.%u\",\"created\":\"%s\",\"host_kind\":\"%s\","
               "\"cpu\":\"%s family %u model %u stepping %u\",\"ram_bytes\":%llu,\"vcpus\":%u,"
               "\"chunk_bytes\":%u,\"chunks\":%llu,\"nonzero_pages\":%llu,"
               "\"compressed_bytes\":%llu,\"file_bytes\":%llu,\"ratio\":%.2f,\"sections\":%u,"
               "\"verified\":%s}\n",
               id, si->major, si->minor, when, sprout_host_kind_name(si->host.host_kind),
               si->host.cpu_vendor, si->host.family, si->host.model, si->host.stepping,
               (unsigned long long)si->ram_size, si->vcpus, si->chunk_size,
               (unsigned long long)si->nchunks, (unsigned long long)si->nonzero_pages,
               (unsigned long long)si->compressed_bytes, (unsigned long long)si->file_size, ratio,
               si->nsections,
               !verify   ? "null"
               : vr == 0 ? "true"
                         : "false");
}

static void print_text_info(struct snap_file *f, const struct snap_info *si, const char *id,
                            const char *when, double ratio, bool verify, int vr,
                            const struct sprout_err *err)
{
        printf("snapshot  %s\nformat    %u.%u\ncreated   %s\nhost      %s, %s family %u "
               "model %u stepping %u, KVM API %u\nRAM       %llu MiB, %u vCPU\n",
               id, si->major, si->minor, when, sprout_host_kind_name(si->host.host_kind),
               si->host.cpu_vendor, si->host.family, si->host.model, si->host.stepping,
               si->host.kvm_api, (unsigned long long)(si->ram_size >> 20), si->vcpus);
        printf("chunks    %llu of %u KiB stored, %llu non-zero pages (%.1f MiB)\n",
               (unsigned long long)si->nchunks, si->chunk_size >> 10,
               (unsigned long long)si->nonzero_pages, (double)si->nonzero_pages * 4096 / 1048576.0);
        printf("file      %.2f MiB (chunks %.2f MiB), %.1fx smaller than RAM\n",
               (double)si->file_size / 1048576.0, (double)si->compressed_bytes / 1048576.0, ratio);
        /* inspect holds no key: it says whose tags the file has; only sproutd can check them. */
        if (si->authenticated)
                printf("auth      tags under key id %02x%02x%02x%02x%02x%02x%02x%02x (checked "
                       "by sproutd, not here)\n",
                       si->key_id[0], si->key_id[1], si->key_id[2], si->key_id[3], si->key_id[4],
                       si->key_id[5], si->key_id[6], si->key_id[7]);
        else
                printf("auth      none (sproutd uses it only after sprout import)\n");
        printf("sections  %u\n", si->nsections);
        for (unsigned i = 0; i < si->nsections; i++) {
                struct snap_section s;
                if (snap_section_at(f, i, &s) == 0)
                        printf("  %-9s tag %u, %llu bytes\n", tag_name(s.tag), s.tag,
                               (unsigned long long)s.len);
        }
        struct snap_section ms;
        if (snap_section(f, SPROUT_SEC_MANIFEST, 0, &ms) == 0)
                printf("manifest  %.*s\n", (int)(ms.len > 400 ? 400 : ms.len),
                       (const char *)ms.data);
        if (verify)
                printf("verify    %s\n", vr == 0 ? "ok: every chunk checksum matches" : err->msg);
}

int sprout_cmd_inspect(int argc, char **argv)
{
        bool no_verify = false, json = false;
        const struct cli_opt opts[] = {
            CLI_FLAG("no-verify", 0, &no_verify),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&inspect_verb, opts, argc, argv, &status) < 0)
                return status;
        bool verify = !no_verify;
        struct sprout_err err = {0};
        struct snap_file *f;
        if (snap_open(argv[optind], &f, &err) < 0) {
                fprintf(stderr, "sprout inspect: %s\n", err.msg);
                return 1;
        }
        const struct snap_info *si = snap_get_info(f);
        char id[37], when[64];
        uuid_unparse_lower(si->uuid, id);
        time_t secs = (time_t)(si->created_ns / 1000000000ULL);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        int vr = verify ? snap_verify(f, &err) : 0;
        double ratio = si->file_size ? (double)si->ram_size / (double)si->file_size : 0;

        if (json)
                print_json_info(si, id, when, ratio, verify, vr);
        else
                print_text_info(f, si, id, when, ratio, verify, vr, &err);
        snap_close(f);
        if (vr < 0) {
                fprintf(stderr, "sprout inspect: %s\n", err.msg);
                return 1;
        }
        return 0;
}
