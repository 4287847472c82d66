/* sprout import: the explicit step that lets sproutd use a snapshot it did not write. Every byte of
 * the file is checked, then an authenticated copy is written into the state directory under the
 * daemon's key (docs/snapshot-format.md, "Import"). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <uuid/uuid.h>

#include "cli_opts.h"
#include "cli_util.h"
#include "commands.h"
#include "sprout/abi.h"
#include "sprout/daemon.h"
#include "sprout/snapshot.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: sprout import FILE [--state-dir DIR] [--json]\n\n"
                "Checks every byte of a snapshot file sproutd did not write (a copy from another\n"
                "host, an old file, `sprout prewarm -o`): the header, sections and chunk index,\n"
                "and every RAM chunk decompressed and checksummed. Then writes an authenticated\n"
                "copy to DIR/snapshots/ID.snap under the daemon's key (DIR/snapshot.key, made\n"
                "when sproutd first starts). Run it as sproutd's user; sproutd lists the copy\n"
                "when it next starts. FILE itself is not changed, unless it is the state\n"
                "directory's own copy that sproutd cannot use (DIR/snapshots/ID.snap of an\n"
                "older sproutd, say): the authenticated copy replaces it.\n"
                "DIR defaults to sproutd's default state directory.\n");
}

static const struct cli_verb import_verb = {.name = "import", .usage = usage, .operands = 1};

/* What sproutd would refuse at load anyway: better said now than after a restart. */
static int check_loadable(const char *path, const struct snap_info *si, struct sprout_err *err)
{
        if (si->vcpus != 1)
                return sprout_err_set(err, -ENOTSUP,
                                      "%s: the snapshot has %u vCPUs; sprout restores 1", path,
                                      si->vcpus);
        if (si->ram_size > SPROUT_RAM_MAX || si->ram_size % (2ULL << 20))
                return sprout_err_set(err, -EINVAL,
                                      "%s: the snapshot has %llu bytes of RAM; sprout allows "
                                      "multiples of 2 MiB up to %llu MiB",
                                      path, (unsigned long long)si->ram_size, SPROUT_RAM_MAX >> 20);
        return 0;
}

static int import(const char *file, const char *state_dir, char *id, char *out, size_t out_len,
                  bool *replaced, struct snap_write_stats *st, struct sprout_err *err)
{
        char snaps[4200], keyp[4200];
        struct stat sb;
        if (snprintf(snaps, sizeof(snaps), "%s/snapshots", state_dir) >= (int)sizeof(snaps) ||
            snprintf(keyp, sizeof(keyp), "%s/snapshot.key", state_dir) >= (int)sizeof(keyp))
                return sprout_err_set(err, -ENAMETOOLONG, "%s: path too long", state_dir);
        /* sproutd makes both at its first start, with the checks on owner and mode that go with
         * them: an import does not guess them. */
        if (stat(snaps, &sb) < 0 || !S_ISDIR(sb.st_mode))
                return sprout_err_set(err, -ENOENT,
                                      "%s is not a sproutd state directory (no snapshots/): start "
                                      "sproutd once with --state-dir %s",
                                      state_dir, state_dir);
        struct snap_key key;
        int r = snap_key_file_load(keyp, false, &key, NULL, err);
        if (r == -ENOENT) {
                sprout_err_clear(err);
                return sprout_err_set(err, r,
                                      "%s: no snapshot key: start sproutd once with --state-dir %s",
                                      keyp, state_dir);
        }
        if (r < 0)
                return r;
        struct snap_file *f;
        r = snap_open(file, &f, err);
        if (r == 0) {
                const struct snap_info *si = snap_get_info(f);
                uuid_unparse_lower(si->uuid, id);
                r = check_loadable(file, si, err);
        }
        if (r == 0 && snprintf(out, out_len, "%s/%s.snap", snaps, id) >= (int)out_len)
                r = sprout_err_set(err, -ENAMETOOLONG, "%s: path too long", snaps);
        /* Replacing a file sproutd lists (and may have loaded) is `sprout rm` and a new import.
         * One it cannot use (no or bad tags: a file of an older sproutd, say) is replaced, so
         * `sprout import DIR/snapshots/ID.snap` upgrades it in place. */
        if (r == 0 && lstat(out, &sb) == 0) {
                struct snap_file *old;
                struct sprout_err why = {0};
                if (snap_open_keyed(out, &key, &old, &why) == 0) {
                        snap_close(old);
                        r = sprout_err_set(err, -EEXIST,
                                           "snapshot %s is already in %s (%s); delete it first "
                                           "(sprout rm %s) to import it again",
                                           id, state_dir, out, id);
                } else {
                        *replaced = true;
                }
        }
        if (r == 0)
                r = snap_import(f, &key, out, st, err);
        if (r == 0)
                st->ram_size = snap_get_info(f)->ram_size;
        snap_close(f); /* NULL after a failed open: a no-op */
        snap_key_wipe(&key);
        return r;
}

int sprout_cmd_import(int argc, char **argv)
{
        const char *state_dir = NULL;
        bool json = false;
        const struct cli_opt opts[] = {
            CLI_STRING("state-dir", 0, &state_dir),
            CLI_JSON(&json),
            CLI_END,
        };
        int status;
        if (cli_parse_opts(&import_verb, opts, argc, argv, &status) < 0)
                return status;
        struct sprout_err err = {0};
        char dir[4096], id[37] = "", out[4400];
        if (!state_dir) {
                if (sprout_default_state_dir(dir, sizeof(dir), &err) < 0) {
                        fprintf(stderr, "sprout import: %s\n", err.msg);
                        return CLI_EXIT_FAIL;
                }
                state_dir = dir;
        }
        struct snap_write_stats st = {0};
        bool replaced = false;
        if (import(argv[optind], state_dir, id, out, sizeof(out), &replaced, &st, &err) < 0) {
                fprintf(stderr, "sprout import: %s\n", err.msg);
                return CLI_EXIT_FAIL;
        }
        if (json) {
                /* jansson, not printf: the path is the caller's and may hold any byte. */
                json_t *o = json_pack("{s:s, s:s, s:I, s:f}", "id", id, "path", out, "file_bytes",
                                      (json_int_t)st.file_size, "seconds", st.seconds);
                if (o) {
                        json_dumpf(o, stdout, JSON_COMPACT);
                        fputc('\n', stdout);
                }
                json_decref(o);
        } else
                printf("imported snapshot %s (%llu MiB RAM, every chunk checked) as %s%s in %.2f "
                       "s; sproutd lists it when it next starts\n",
                       id, (unsigned long long)(st.ram_size >> 20), out,
                       replaced ? " (replacing a file sproutd could not use)" : "", st.seconds);
        return 0;
}
