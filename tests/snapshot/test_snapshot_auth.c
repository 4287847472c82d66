/* The snapshot authenticator: keyed files round-trip; a forger who edits a chunk, a section, an
 * index field or a header field and re-seals every XXH3 is still refused by a keyed reader, at the
 * step that names what was edited, while the unkeyed reader opens the file; wrong keys, files
 * without an authenticator, imports and key files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "../common/check.h"
#include "snap_test.h"

#define PG       4096u
#define CHUNK    (64u << 10)
#define NCHUNK   8u
#define RAM_SIZE (NCHUNK * CHUNK)
#define RAND_CH  3u /* a chunk of random pages: zstd stores it raw, so edits keep its length */

static const char *dir;
static uint8_t *ram;
static struct snap_key key, other;
static const uint8_t sec_data[] = "vcpu registers, say";

/* Chunk 0 leaves page 1 zero (so its bitmap has a hole to move a page into), chunk RAND_CH is
 * random, the rest text-like, chunk 5 all zero (not stored). */
static void make_ram(void)
{
        ram = calloc(1, RAM_SIZE);
        for (uint32_t c = 0; c < NCHUNK; c++) {
                uint8_t *p = ram + (uint64_t)c * CHUNK;
                if (c == 5)
                        continue;
                if (c == RAND_CH)
                        t_fill_random(p, CHUNK, 77);
                else
                        t_fill_text(p, CHUNK, 100 + c);
        }
        memset(ram + PG, 0, PG);
        for (size_t i = 0; i < sizeof(key.k); i++) {
                key.k[i] = (uint8_t)(i * 7 + 1);
                other.k[i] = (uint8_t)(i * 7 + 2);
        }
}

static int write_file(const char *name, const struct snap_key *k, char *path, size_t len)
{
        snprintf(path, len, "%s/%s", dir, name);
        struct snap_section sec = {.tag = 1, .data = sec_data, .len = sizeof(sec_data)};
        struct snap_write_opts o = t_opts(path, ram, RAM_SIZE);
        o.chunk_size = CHUNK;
        o.sections = &sec;
        o.nsections = 1;
        o.key = k;
        struct sprout_err err = {0};
        int rc = snap_write(&o, NULL, &err);
        CHECK(rc == 0, "write %s: %s", name, err.msg);
        return rc;
}

/* Loads f's RAM and compares it with want (NULL: just load); returns the load's result. */
static int load(struct snap_file *f, const uint8_t *want, unsigned threads, struct sprout_err *err)
{
        int fd = -1;
        int rc = snap_load_ram(f, threads, &fd, NULL, err);
        if (rc < 0)
                return rc;
        uint8_t *m = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        bool same = m != MAP_FAILED && (!want || memcmp(m, want, RAM_SIZE) == 0);
        if (m != MAP_FAILED)
                munmap(m, RAM_SIZE);
        close(fd);
        return same ? 0 : 1;
}

static void roundtrip(void)
{
        char path[512];
        struct sprout_err err = {0};
        REQUIRE(write_file("keyed.snap", &key, path, sizeof(path)) == 0, "keyed write");
        struct snap_file *f;
        sprout_err_clear(&err);
        int rc = snap_open_keyed(path, &key, &f, &err);
        REQUIRE(rc == 0, "keyed open: %s", err.msg);
        const struct snap_info *si = snap_get_info(f);
        uint8_t id[8];
        snap_key_id(&key, id);
        CHECK(si->major == 1 && si->minor == 1, "a keyed file is format 1.1, got %u.%u", si->major,
              si->minor);
        CHECK(si->authenticated && si->key_checked && !memcmp(si->key_id, id, 8),
              "info says authenticated under this key");
        CHECK(load(f, ram, 1, &err) == 0, "keyed load, 1 thread: %s", err.msg);
        CHECK(load(f, ram, 0, &err) == 0, "keyed load, all threads: %s", err.msg);
        CHECK(snap_verify(f, &err) == 0, "keyed verify: %s", err.msg);
        snap_close(f);
        /* Without a key the same file is an ordinary one. */
        rc = snap_open(path, &f, &err);
        REQUIRE(rc == 0, "unkeyed open of a keyed file: %s", err.msg);
        CHECK(snap_get_info(f)->authenticated && !snap_get_info(f)->key_checked,
              "unkeyed: authenticated, not checked");
        CHECK(load(f, ram, 0, &err) == 0, "unkeyed load of a keyed file: %s", err.msg);
        snap_close(f);

        char plain[512];
        REQUIRE(write_file("plain.snap", NULL, plain, sizeof(plain)) == 0, "plain write");
        rc = snap_open(plain, &f, &err);
        REQUIRE(rc == 0, "plain open: %s", err.msg);
        CHECK(snap_get_info(f)->minor == 0 && !snap_get_info(f)->authenticated,
              "a file without a key stays format 1.0");
        snap_close(f);
        size_t a, b;
        uint8_t *ka = t_slurp(path, &a), *pa = t_slurp(plain, &b);
        uint64_t nch = t_hdr(pa)->nchunks;
        CHECK(a == b + 64 + 32 * nch, "the authenticator costs 64 + 32 bytes a chunk: %zu vs %zu",
              a, b);
        free(ka);
        free(pa);
}

/* Every XXH3 a forger can recompute: the frame's, the index's, the header's. */
static void reseal_all(uint8_t *file, uint64_t chunk)
{
        struct snap_fmt_entry *e = t_entry(file, chunk);
        e->frame_hash = snapfmt_hash(file + e->file_off, e->clen);
        t_reseal(file);
}

struct verdict {
        int open_rc, keyed_rc, load_rc; /* load_rc: the keyed load, when the keyed open passed */
        struct sprout_err open_err, keyed_err;
        int unkeyed_load; /* 0 loaded, 1 loaded with RAM not the original's, <0 refused */
};

static void judge_as(const char *name, const uint8_t *img, size_t len, bool unkeyed,
                     struct verdict *v)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        memset(v, 0, sizeof(*v));
        t_spit(path, img, len);
        struct snap_file *f;
        v->open_rc = unkeyed ? snap_open(path, &f, &v->open_err) : -1;
        v->unkeyed_load = -1;
        if (v->open_rc == 0) {
                struct sprout_err e = {0};
                v->unkeyed_load = load(f, ram, 0, &e);
                snap_close(f);
        }
        v->keyed_rc = snap_open_keyed(path, &key, &f, &v->keyed_err);
        if (v->keyed_rc == 0) {
                v->keyed_rc = load(f, NULL, 0, &v->keyed_err);
                v->load_rc = v->keyed_rc;
                snap_close(f);
        }
        unlink(path);
}

static void judge(const char *name, const uint8_t *img, size_t len, struct verdict *v)
{
        judge_as(name, img, len, true, v);
}

/* t_reseal, when the flip left the offsets it follows inside the file. */
static void reseal_if_sane(uint8_t *c, size_t len)
{
        const struct snap_fmt_header *h = t_hdr(c);
        if (h->index_off <= len && h->index_len <= len - h->index_off && h->sections_off <= len &&
            h->sections_len <= len - h->sections_off)
                t_reseal(c);
}

/* A real forgery: chunk RAND_CH gets one byte of RAM changed, recompressed to a frame of the same
 * length (zstd's content checksum included), spliced in and every XXH3 re-sealed. The unkeyed
 * reader loads the changed RAM without complaint; the keyed one refuses the chunk's tag. */
static void forged_chunk(const uint8_t *base, size_t len)
{
        uint8_t *c = malloc(len);
        memcpy(c, base, len);
        uint64_t idx = RAND_CH; /* chunks 0..RAND_CH are stored, so it is also the index entry */
        struct snap_fmt_entry *e = t_entry(c, idx);
        REQUIRE(e->ram_off == (uint64_t)RAND_CH * CHUNK, "entry %llu is chunk %u",
                (unsigned long long)idx, RAND_CH);
        uint8_t *content = malloc(CHUNK), *frame = malloc(ZSTD_compressBound(CHUNK));
        memcpy(content, ram + e->ram_off, CHUNK);
        content[1234] ^= 0x55;
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        size_t n = ZSTD_compress2(cc, frame, ZSTD_compressBound(CHUNK), content, CHUNK);
        ZSTD_freeCCtx(cc);
        REQUIRE(!ZSTD_isError(n) && n == e->clen,
                "the forged frame has the same length (%zu vs %u)", n, e->clen);
        memcpy(c + e->file_off, frame, n);
        reseal_all(c, idx);
        struct verdict v;
        judge("forged-chunk.snap", c, len, &v);
        CHECK(v.open_rc == 0 && v.unkeyed_load == 1,
              "unkeyed: opens and loads the forged RAM (%d, %d: %s)", v.open_rc, v.unkeyed_load,
              v.open_err.msg);
        char want[64];
        snprintf(want, sizeof(want), "chunk %u (RAM offset 0x%x", RAND_CH, RAND_CH * CHUNK);
        CHECK(v.keyed_rc == -EBADMSG && t_contains(v.keyed_err.msg, want) &&
                  t_contains(v.keyed_err.msg, "chunk tag mismatch"),
              "keyed: refused at chunk %u's tag, got %d \"%s\"", RAND_CH, v.keyed_rc,
              v.keyed_err.msg);
        free(content);
        free(frame);
        free(c);
}

/* Two chunks edited, both re-sealed: every thread count names the lower one, in load and verify. */
static void two_bad_chunks(const uint8_t *base, size_t len)
{
        char path[512];
        struct sprout_err err = {0};
        uint8_t *c = malloc(len);
        memcpy(c, base, len);
        for (uint64_t i = 1; i <= 4; i += 3) {
                struct snap_fmt_entry *e = t_entry(c, i);
                c[e->file_off + e->clen - 9] ^= 4; /* inside the frame, before zstd's checksum */
                e->frame_hash = snapfmt_hash(c + e->file_off, e->clen);
        }
        t_reseal(c);
        snprintf(path, sizeof(path), "%s/two-bad.snap", dir);
        t_spit(path, c, len);
        free(c);
        struct snap_file *f;
        REQUIRE(snap_open_keyed(path, &key, &f, &err) == 0, "keyed open: %s", err.msg);
        for (unsigned threads = 1; threads <= 3; threads++) {
                sprout_err_clear(&err);
                int rc = load(f, NULL, threads, &err);
                CHECK(rc == -EBADMSG && t_contains(err.msg, "chunk 1 (RAM offset 0x10000") &&
                          t_contains(err.msg, "chunk tag mismatch"),
                      "%u threads: load names chunk 1: %d %s", threads, rc, err.msg);
        }
        sprout_err_clear(&err);
        int rc = snap_verify(f, &err);
        CHECK(rc == -EBADMSG && t_contains(err.msg, "chunk 1 ") &&
                  t_contains(err.msg, "chunk tag mismatch"),
              "verify names chunk 1: %d %s", rc, err.msg);
        snap_close(f);
        unlink(path);
}

/* One edit of the file, all XXH3s re-sealed; want names the keyed refusal. */
#define FORGE(name, want, ...)                                                                     \
        do {                                                                                       \
                memcpy(c, base, len);                                                              \
                struct snap_fmt_header *h = t_hdr(c);                                              \
                (void)h;                                                                           \
                __VA_ARGS__;                                                                       \
                t_reseal(c);                                                                       \
                struct verdict v;                                                                  \
                judge("forged.snap", c, len, &v);                                                  \
                CHECK(v.open_rc == 0, "%s: the unkeyed open accepts it: %s", name,                 \
                      v.open_err.msg);                                                             \
                CHECK(v.keyed_rc < 0 && t_contains(v.keyed_err.msg, want),                         \
                      "%s: keyed: want \"%s\", got %d \"%s\"", name, want, v.keyed_rc,             \
                      v.keyed_err.msg);                                                            \
        } while (0)

static void forged_parts(const uint8_t *base, size_t len)
{
        uint8_t *c = malloc(len);
        const struct snap_fmt_header *bh = (const struct snap_fmt_header *)base;
        /* A byte of the section's data. */
        FORGE("section byte", "sections tag mismatch", c[bh->sections_off + 16 + 3] ^= 1);
        /* Chunk 0's first page moved into the zero page after it: npages and the totals stay
         * right, so only the tag can tell. */
        FORGE("index bitmap", "chunk index tag mismatch", {
                uint8_t *bm = (uint8_t *)t_entry(c, 0) + SNAP_ENTRY_FIXED;
                bm[0] = (uint8_t)((bm[0] & ~1u) | 2u);
        });
        FORGE("header created_ns", "header tag mismatch", h->created_ns += 1);
        FORGE("header cpu", "header tag mismatch", h->cpu_model = 86);
        /* The authenticator area itself. */
        uint64_t auth = bh->index_off + bh->index_len;
        FORGE("sections tag", "header tag mismatch", c[auth] ^= 1);
        FORGE("index tag", "header tag mismatch", c[auth + 32] ^= 1);
        FORGE("chunk tag", "chunk index tag mismatch", c[auth + 64 + 32 * 2 + 5] ^= 1);
        FORGE("header tag", "header tag mismatch", h->auth_tag[7] ^= 1);
        free(c);
}

/* Every byte of a keyed file, flipped alone: the keyed open or load refuses each one. */
static void flips(const uint8_t *base, size_t len)
{
        uint8_t *c = malloc(len);
        memcpy(c, base, len);
        int missed = 0;
        const struct snap_fmt_header *bh = (const struct snap_fmt_header *)base;
        for (size_t off = 0; off < len; off++) {
                bool frames = off >= bh->sections_off + bh->sections_len && off < bh->index_off;
                if (frames && off % 97)
                        continue; /* a sample of the frames is enough; all of the rest */
                c[off] ^= 0x20;
                /* The forger's best: the XXH3s still match. (Except where the flip is in an XXH3:
                 * re-sealing that would only undo it.) */
                bool sum = off >= offsetof(struct snap_fmt_header, index_checksum) &&
                           off < offsetof(struct snap_fmt_header, key_id);
                if (!frames && !sum)
                        reseal_if_sane(c, len);
                struct verdict v;
                judge_as("flip.snap", c, len, false, &v);
                if (v.keyed_rc == 0 && missed++ < 5)
                        CHECK(0, "flip at %zu accepted by the keyed reader", off);
                memcpy(c, base, len);
        }
        CHECK(missed == 0, "%d flips accepted by the keyed reader", missed);
        free(c);
}

static void keys_and_plain_files(void)
{
        char path[512], plain[512];
        struct sprout_err err = {0};
        struct snap_file *f = NULL;
        REQUIRE(write_file("k.snap", &key, path, sizeof(path)) == 0, "write");
        sprout_err_clear(&err);
        int rc = snap_open_keyed(path, &other, &f, &err);
        CHECK(rc == -EKEYREJECTED && t_contains(err.msg, "authenticated under another key"),
              "wrong key: got %d \"%s\"", rc, err.msg);
        CHECK(f == NULL, "no file after a refusal");
        /* The message names key ids, never key bytes. */
        char kb[8];
        snprintf(kb, sizeof(kb), "%02x%02x%02x", other.k[0], other.k[1], other.k[2]);
        CHECK(!t_contains(err.msg, kb), "the message does not quote the key");
        REQUIRE(write_file("p.snap", NULL, plain, sizeof(plain)) == 0, "write");
        sprout_err_clear(&err);
        rc = snap_open_keyed(plain, &key, &f, &err);
        CHECK(rc == -ENOKEY &&
                  t_contains(err.msg, "not written by this daemon (no authenticator); import it "
                                      "first"),
              "no authenticator: got %d \"%s\"", rc, err.msg);
}

static void import(void)
{
        char plain[512], out[512], bad[512];
        struct sprout_err err = {0};
        struct snap_file *f, *g;
        REQUIRE(write_file("foreign.snap", NULL, plain, sizeof(plain)) == 0, "write");
        snprintf(out, sizeof(out), "%s/imported.snap", dir);
        REQUIRE(snap_open(plain, &f, &err) == 0, "open: %s", err.msg);
        struct snap_write_stats st;
        sprout_err_clear(&err);
        int rc = snap_import(f, &key, out, &st, &err);
        CHECK(rc == 0, "import: %s", err.msg);
        uint8_t uuid[16];
        uint64_t created = snap_get_info(f)->created_ns;
        memcpy(uuid, snap_get_info(f)->uuid, 16);
        snap_close(f);
        REQUIRE(rc == 0, "imported");
        sprout_err_clear(&err);
        rc = snap_open_keyed(out, &key, &g, &err);
        REQUIRE(rc == 0, "keyed open of the import: %s", err.msg);
        CHECK(!memcmp(snap_get_info(g)->uuid, uuid, 16) && snap_get_info(g)->created_ns == created,
              "the import keeps the UUID and the creation time");
        CHECK(st.file_size == snap_get_info(g)->file_size, "import stats: file size");
        struct snap_section s;
        CHECK(snap_section(g, 1, 0, &s) == 0 && s.len == sizeof(sec_data) &&
                  !memcmp(s.data, sec_data, s.len),
              "the import keeps the sections");
        CHECK(load(g, ram, 0, &err) == 0, "keyed load of the import: %s", err.msg);
        snap_close(g);

        /* Re-keying a file of another daemon: import works from a keyed file too. */
        REQUIRE(snap_open(out, &f, &err) == 0, "open: %s", err.msg);
        snprintf(bad, sizeof(bad), "%s/rekeyed.snap", dir);
        CHECK(snap_import(f, &other, bad, NULL, &err) == 0, "re-key: %s", err.msg);
        snap_close(f);
        CHECK(snap_open_keyed(bad, &other, &g, &err) == 0, "open under the new key: %s", err.msg);
        snap_close(g);
        unlink(bad);

        /* A corrupt chunk fails the import, naming it, and leaves nothing behind. */
        size_t len;
        uint8_t *c = t_slurp(plain, &len);
        struct snap_fmt_entry *e = t_entry(c, 2);
        c[e->file_off + e->clen / 2] ^= 1;
        snprintf(bad, sizeof(bad), "%s/corrupt.snap", dir);
        t_spit(bad, c, len);
        free(c);
        int before = t_count_entries(dir);
        REQUIRE(snap_open(bad, &f, &err) == 0, "open: %s", err.msg);
        snprintf(out, sizeof(out), "%s/corrupt-imported.snap", dir);
        sprout_err_clear(&err);
        rc = snap_import(f, &key, out, NULL, &err);
        snap_close(f);
        CHECK(rc < 0 && t_contains(err.msg, "chunk 2 "), "corrupt import refused at chunk 2: %s",
              err.msg);
        CHECK(t_count_entries(dir) == before && access(out, F_OK) < 0,
              "a failed import leaves no file");
        unlink(bad);
}

static void key_files(void)
{
        char path[512], link_path[512];
        struct snap_key a, b;
        struct sprout_err err = {0};
        bool created = false;
        snprintf(path, sizeof(path), "%s/snapshot.key", dir);
        sprout_err_clear(&err);
        int rc = snap_key_file_load(path, false, &a, &created, &err);
        CHECK(rc == -ENOENT, "no key file, no create: %d %s", rc, err.msg);
        sprout_err_clear(&err);
        rc = snap_key_file_load(path, true, &a, &created, &err);
        CHECK(rc == 0 && created, "created: %s", err.msg);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 32,
              "the key file is 0600 and 32 bytes");
        sprout_err_clear(&err);
        rc = snap_key_file_load(path, true, &b, &created, &err);
        CHECK(rc == 0 && !created && !memcmp(a.k, b.k, 32), "loaded again, the same key: %s",
              err.msg);
        chmod(path, 0640);
        sprout_err_clear(&err);
        rc = snap_key_file_load(path, true, &b, NULL, &err);
        CHECK(rc == -EPERM && t_contains(err.msg, "mode 0640"), "group-readable refused: %s",
              err.msg);
        chmod(path, 0600);
        snprintf(link_path, sizeof(link_path), "%s/link.key", dir);
        CHECK(symlink(path, link_path) == 0, "symlink");
        sprout_err_clear(&err);
        rc = snap_key_file_load(link_path, true, &b, NULL, &err);
        CHECK(rc == -ELOOP, "a symlinked key refused: %d %s", rc, err.msg);
        unlink(link_path);
        CHECK(truncate(path, 31) == 0, "truncate");
        sprout_err_clear(&err);
        rc = snap_key_file_load(path, true, &b, NULL, &err);
        CHECK(rc == -EINVAL && t_contains(err.msg, "31 bytes, expected 32"), "short key: %s",
              err.msg);
        unlink(path);
        snap_key_wipe(&a);
        CHECK(a.k[0] == 0 && a.k[31] == 0, "wiped");
}

int main(void)
{
        dir = t_tmpdir("snap-auth");
        make_ram();
        roundtrip();
        char path[512];
        if (write_file("base.snap", &key, path, sizeof(path)) == 0) {
                size_t len;
                uint8_t *base = t_slurp(path, &len);
                forged_chunk(base, len);
                two_bad_chunks(base, len);
                forged_parts(base, len);
                flips(base, len);
                free(base);
        }
        keys_and_plain_files();
        import();
        key_files();
        free(ram);
        t_rmdir(dir);
        return check_finish();
}
