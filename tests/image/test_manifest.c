/* manifest.json as hostile input to sprout_manifest_load: a valid one loads with the right values;
 * every missing, mistyped, unknown or out-of-range field, bad JSON and a truncated file are refused
 * with a message naming the field. Also the "default" kernel resolution. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sprout/abi.h"
#include "sprout/image.h"
#include "../common/check.h"
#include "testutil.h"

static char *dir, *kernel;

static json_t *valid(void)
{
        return json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:i, s:{s:[s,s]}, s:i, s:s, s:s}",
                         "format", 1, "name", "hello", "kernel", kernel, "initrd", "initrd.cpio",
                         "cmdline", "quiet", "memory_mib", 64, "vcpus", 1, "handler", "argv",
                         "/app/hello", "-v", "abi_version", SPROUT_ABI_VERSION, "created",
                         "2026-01-01T00:00:00Z", "sprout_version", "0.1.0");
}

static void write_manifest(json_t *m)
{
        char *text = json_dumps(m, 0);
        tu_write(dir, "manifest.json", text, (size_t)-1);
        free(text);
        json_decref(m);
}

static void expect_fail_text(const char *what, const char *text, size_t len, const char *expect)
{
        struct sprout_manifest *m = (void *)1;
        struct sprout_err err = {0};

        tu_write(dir, "manifest.json", text, len);
        int rc = sprout_manifest_load(dir, &m, &err);
        CHECK(rc < 0 && m == NULL, "%s: loaded", what);
        CHECK(strstr(err.msg, expect) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg,
              expect);
        if (rc == 0)
                sprout_manifest_free(m);
}

/* Write the valid manifest with one change (value NULL: the key removed) and expect a failure. */
static void expect_fail(const char *what, const char *key, json_t *value, const char *expect)
{
        json_t *m = valid();
        if (value)
                json_object_set_new(m, key, value);
        else
                json_object_del(m, key);
        char *text = json_dumps(m, 0);
        json_decref(m);
        expect_fail_text(what, text, (size_t)-1, expect);
        free(text);
}

static void good_cases(void)
{
        struct sprout_manifest *m = NULL;
        struct sprout_err err = {0};
        char *initrd = tu_path(dir, "initrd.cpio"), *file = tu_path(dir, "manifest.json");

        write_manifest(valid());
        int rc = sprout_manifest_load(dir, &m, &err);
        CHECK(rc == 0, "valid manifest refused: %s", err.msg);
        if (rc == 0) {
                CHECK(strcmp(m->name, "hello") == 0, "name %s", m->name);
                CHECK(strcmp(m->kernel_path, kernel) == 0, "kernel %s", m->kernel_path);
                CHECK(strcmp(m->initrd_path, initrd) == 0, "initrd %s != %s", m->initrd_path,
                      initrd);
                CHECK(strcmp(m->cmdline, "quiet") == 0, "cmdline %s", m->cmdline);
                CHECK(m->mem_size == 64ull << 20, "mem_size %llu", (unsigned long long)m->mem_size);
                CHECK(m->vcpus == 1, "vcpus %u", m->vcpus);
                CHECK(m->abi_version == SPROUT_ABI_VERSION, "abi %u", m->abi_version);
                CHECK(m->argc == 2 && strcmp(m->argv[0], "/app/hello") == 0 &&
                          strcmp(m->argv[1], "-v") == 0 && m->argv[2] == NULL,
                      "argv wrong");
                sprout_manifest_free(m);
        }
        /* The manifest path itself works as well as its directory. */
        rc = sprout_manifest_load(file, &m, &err);
        CHECK(rc == 0, "load by file path: %s", err.msg);
        if (rc == 0)
                sprout_manifest_free(m);

        /* "default": $SPROUT_KERNEL wins; else <cache>/kernel/default, which must exist. */
        json_t *j = valid();
        json_object_set_new(j, "kernel", json_string("default"));
        write_manifest(j);
        setenv("SPROUT_KERNEL", kernel, 1);
        rc = sprout_manifest_load(dir, &m, &err);
        CHECK(rc == 0 && strcmp(m->kernel_path, kernel) == 0, "SPROUT_KERNEL not used: %s",
              err.msg);
        if (rc == 0)
                sprout_manifest_free(m);
        unsetenv("SPROUT_KERNEL");
        char *cache = tu_path(dir, "cache");
        setenv("SPROUT_CACHE_DIR", cache, 1);
        sprout_err_clear(&err);
        rc = sprout_manifest_load(dir, &m, &err);
        CHECK(rc < 0 && strstr(err.msg, "guest/kernel/build.sh") &&
                  strstr(err.msg, "/cache/kernel/default"),
              "missing default kernel: \"%s\"", err.msg);
        char *kdir = tu_path(cache, "kernel");
        mkdir(cache, 0755);
        mkdir(kdir, 0755);
        tu_write(kdir, "default", "ELF", (size_t)-1);
        sprout_err_clear(&err);
        rc = sprout_manifest_load(dir, &m, &err);
        CHECK(rc == 0 && strstr(m->kernel_path, "/cache/kernel/default"), "cached kernel: %s",
              err.msg);
        if (rc == 0)
                sprout_manifest_free(m);
        unsetenv("SPROUT_CACHE_DIR");
        free(kdir);
        free(cache);
        free(initrd);
        free(file);
}

static void bad_cases(void)
{
        static const char *const required[] = {
            "format", "name",    "kernel",      "initrd",  "cmdline",       "memory_mib",
            "vcpus",  "handler", "abi_version", "created", "sprout_version"};
        char expect[64];

        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
                snprintf(expect, sizeof(expect), "\"%s\" is required", required[i]);
                expect_fail(required[i], required[i], NULL, expect);
        }
        expect_fail("unknown", "extra", json_true(), "manifest.json: unknown field \"extra\"");
        expect_fail("format 2", "format", json_integer(2),
                    "\"format\" 2 is not supported (this sprout reads format 1)");
        expect_fail("name type", "name", json_integer(5), "\"name\" must be a string");
        expect_fail("name bad", "name", json_string("a/b"), "\"name\" is not a valid image name");
        expect_fail("memory high", "memory_mib", json_integer(4096),
                    "\"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("memory string", "memory_mib", json_string("64"),
                    "\"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("vcpus", "vcpus", json_integer(2),
                    "\"vcpus\" must be an integer between 1 and 1");
        expect_fail("abi major", "abi_version", json_integer((SPROUT_ABI_MAJOR + 1) << 16),
                    "rebuild the image");
        expect_fail("abi type", "abi_version", json_string("1.0"),
                    "\"abi_version\" must be an integer");
        expect_fail("cmdline control", "cmdline", json_string("a\tb"),
                    "\"cmdline\" contains a control character");
        expect_fail("created type", "created", json_null(), "\"created\" must be a string");
        expect_fail("handler type", "handler", json_string("/app/hello"),
                    "\"handler\" must be an object");
        expect_fail("handler unknown", "handler", json_pack("{s:[s], s:{}}", "argv", "/a", "env"),
                    "unknown field \"handler.env\"");
        expect_fail("handler argv missing", "handler", json_object(),
                    "\"handler.argv\" is required");
        expect_fail("handler argv empty", "handler", json_pack("{s:[]}", "argv"),
                    "\"handler.argv\" must be a non-empty array of strings");
        expect_fail("handler argv relative", "handler", json_pack("{s:[s]}", "argv", "hello"),
                    "\"handler.argv[0]\" must be an absolute path");
        expect_fail("initrd escape", "initrd", json_string("../initrd.cpio"),
                    "\"initrd\" must be a file name in the image directory");
        expect_fail("initrd dotdot", "initrd", json_string(".."), "\"initrd\" must be a file name");
        expect_fail("initrd missing", "initrd", json_string("nope.cpio"), "\"initrd\": ");
        expect_fail("initrd missing errno", "initrd", json_string("nope.cpio"),
                    "nope.cpio: No such file or directory");
        expect_fail("kernel relative", "kernel", json_string("vmlinux"),
                    "\"kernel\" must be \"default\" or an absolute path");
        expect_fail("kernel missing", "kernel", json_string("/nonexistent/vmlinux"),
                    "\"kernel\": /nonexistent/vmlinux: No such file or directory");
        expect_fail("kernel dir", "kernel", json_string("/"), "is not a regular file");

        /* Syntax and size. */
        json_t *m = valid();
        char *text = json_dumps(m, 0);
        json_decref(m);
        expect_fail_text("truncated", text, strlen(text) / 2,
                         "manifest.json: invalid JSON at line 1");
        free(text);
        expect_fail_text("bad JSON", "not json", (size_t)-1, "manifest.json: invalid JSON");
        expect_fail_text("empty", "", 0, "manifest.json: invalid JSON");
        expect_fail_text("array", "[1]", (size_t)-1, "the top level must be a JSON object");
        char *big = malloc(SPROUT_JSON_MAX_BYTES + 2);
        memset(big, ' ', SPROUT_JSON_MAX_BYTES + 1);
        big[SPROUT_JSON_MAX_BYTES + 1] = '\0';
        expect_fail_text("oversized", big, (size_t)-1, "larger than 1048576 bytes");
        free(big);

        struct sprout_manifest *mm = NULL;
        struct sprout_err err = {0};
        int rc = sprout_manifest_load("/nonexistent/image", &mm, &err);
        CHECK(rc < 0 && strstr(err.msg, "image /nonexistent/image: No such file or directory"),
              "missing image dir: \"%s\"", err.msg);
}

int main(void)
{
        dir = tu_mkdtemp("manifest");
        kernel = tu_path(dir, "vmlinux");
        tu_write(dir, "vmlinux", "ELF", (size_t)-1);
        tu_write(dir, "initrd.cpio", "070701", (size_t)-1);
        unsetenv("SPROUT_KERNEL");

        good_cases();
        bad_cases();

        tu_rmtree(dir);
        free(kernel);
        free(dir);
        return check_finish();
}
