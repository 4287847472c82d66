/* Bad image.json and bad build options: each must fail with its own message naming the file and the
 * field, and must leave no image behind. Usage: test_spec AGENT BUSYBOX */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/image.h"
#include "../common/check.h"
#include "testutil.h"

static const char *agent, *busybox;
static char *root; /* scratch directory: SRC is root/src, OUT is root/out */

#define OK_HANDLER "\"handler\": {\"argv\": [\"/bin/sh\"]}"

/* Build root/src with the given image.json text; expect failure with expect in the message. */
static void expect_fail_opts(const char *what, const char *json, size_t len,
                             const struct sprout_build_opts *extra, const char *expect)
{
        char *src = tu_path(root, "src"), *out = tu_path(root, "out");
        char *manifest = tu_path(out, "manifest.json");
        struct sprout_err err = {0};
        struct sprout_build_opts o = {
            .src_dir = src, .out_dir = out, .agent_path = agent, .busybox_path = busybox};

        if (extra) {
                o.files = extra->files;
                o.n_files = extra->n_files;
                if (extra->agent_path)
                        o.agent_path = extra->agent_path;
                if (extra->busybox_path)
                        o.busybox_path = extra->busybox_path;
        }
        if (json)
                tu_write(src, "image.json", json, len);
        int rc = sprout_image_build(&o, &err);
        CHECK(rc < 0, "%s: build succeeded", what);
        CHECK(err.code == rc, "%s: err.code %d != rc %d", what, err.code, rc);
        CHECK(strstr(err.msg, expect) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg,
              expect);
        CHECK(!tu_exists(manifest), "%s: left %s behind", what, manifest);
        free(src);
        free(out);
        free(manifest);
}

static void expect_fail(const char *what, const char *json, const char *expect)
{
        expect_fail_opts(what, json, (size_t)-1, NULL, expect);
}

static void syntax_cases(void)
{
        expect_fail("bad JSON", "{name: \"x\"}", "image.json: invalid JSON at line 1, column 5");
        expect_fail("truncated", "{\"name\": \"x\", " OK_HANDLER,
                    "image.json: invalid JSON at line 1");
        expect_fail("empty", "", "image.json: invalid JSON at line 1");
        expect_fail("array", "[]", "image.json: the top level must be a JSON object");
        expect_fail("duplicate key", "{\"name\": \"a\", \"name\": \"b\", " OK_HANDLER "}",
                    "duplicate object key");
        expect_fail("unknown field", "{\"name\": \"x\", \"colour\": 1, " OK_HANDLER "}",
                    "image.json: unknown field \"colour\"");
        expect_fail("unknown handler field",
                    "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"], \"cwd\": \"/\"}}",
                    "unknown field \"handler.cwd\"");
        /* A NUL byte inside the file itself is refused by the parser. */
        expect_fail_opts("raw NUL", "{\"name\": \"x\"\0}", 14, NULL, "image.json: invalid JSON");

        char *big = malloc(SPROUT_JSON_MAX_BYTES + 16);
        memset(big, ' ', SPROUT_JSON_MAX_BYTES + 15);
        big[0] = '{';
        big[SPROUT_JSON_MAX_BYTES + 14] = '}';
        big[SPROUT_JSON_MAX_BYTES + 15] = '\0';
        expect_fail("oversized", big, "image.json: larger than 1048576 bytes");
        free(big);
}

static void scalar_cases(void)
{
        expect_fail("name missing", "{" OK_HANDLER "}", "image.json: \"name\" is required");
        expect_fail("name type", "{\"name\": 5, " OK_HANDLER "}", "\"name\" must be a string");
        expect_fail("name chars", "{\"name\": \"../x\", " OK_HANDLER "}",
                    "\"name\" must be 1 to 64 characters of [A-Za-z0-9._-]");
        expect_fail("name empty", "{\"name\": \"\", " OK_HANDLER "}", "\"name\" must be 1 to 64");
        expect_fail("memory low", "{\"name\": \"x\", \"memory_mib\": 16, " OK_HANDLER "}",
                    "image.json: \"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("memory high", "{\"name\": \"x\", \"memory_mib\": 3073, " OK_HANDLER "}",
                    "\"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("memory string", "{\"name\": \"x\", \"memory_mib\": \"256\", " OK_HANDLER "}",
                    "\"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("memory real", "{\"name\": \"x\", \"memory_mib\": 256.0, " OK_HANDLER "}",
                    "\"memory_mib\" must be an integer between 32 and 3072");
        expect_fail("busybox type", "{\"name\": \"x\", \"busybox\": \"no\", " OK_HANDLER "}",
                    "image.json: \"busybox\" must be true or false");
        expect_fail("vcpus 2", "{\"name\": \"x\", \"vcpus\": 2, " OK_HANDLER "}",
                    "\"vcpus\" must be 1 (only one vCPU is supported for now)");
        expect_fail("vcpus type", "{\"name\": \"x\", \"vcpus\": true, " OK_HANDLER "}",
                    "\"vcpus\" must be 1");
        expect_fail("cmdline type", "{\"name\": \"x\", \"cmdline\": [], " OK_HANDLER "}",
                    "\"cmdline\" must be a string");
        expect_fail("cmdline newline", "{\"name\": \"x\", \"cmdline\": \"a\\nb\", " OK_HANDLER "}",
                    "\"cmdline\" contains a control character");
        /* jansson refuses \u0000 while parsing; the NUL checks behind it are a second line. */
        expect_fail("cmdline NUL", "{\"name\": \"x\", \"cmdline\": \"a\\u0000b\", " OK_HANDLER "}",
                    "\\u0000 is not allowed");
        char long_cmd[1200 + 100];
        snprintf(long_cmd, sizeof(long_cmd), "{\"name\": \"x\", \"cmdline\": \"%01200d\", %s}", 0,
                 OK_HANDLER);
        expect_fail("cmdline long", long_cmd, "\"cmdline\" is longer than 1024 bytes");
        expect_fail("kernel type", "{\"name\": \"x\", \"kernel\": 1, " OK_HANDLER "}",
                    "\"kernel\" must be a string");
        expect_fail("kernel empty", "{\"name\": \"x\", \"kernel\": \"\", " OK_HANDLER "}",
                    "\"kernel\" must be \"default\" or a path");
        expect_fail("kernel missing",
                    "{\"name\": \"x\", \"kernel\": \"no-vmlinux\", " OK_HANDLER "}",
                    "/src/no-vmlinux\": No such file or directory");
}

static void handler_cases(void)
{
        expect_fail("handler missing", "{\"name\": \"x\"}", "image.json: \"handler\" is required");
        expect_fail("handler type", "{\"name\": \"x\", \"handler\": []}",
                    "\"handler\" must be an object");
        expect_fail("argv missing", "{\"name\": \"x\", \"handler\": {}}",
                    "\"handler.argv\" is required");
        expect_fail("argv empty", "{\"name\": \"x\", \"handler\": {\"argv\": []}}",
                    "\"handler.argv\" must be a non-empty array of strings");
        expect_fail("argv type", "{\"name\": \"x\", \"handler\": {\"argv\": \"/bin/sh\"}}",
                    "\"handler.argv\" must be a non-empty array of strings");
        expect_fail("argv item type", "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\", 3]}}",
                    "\"handler.argv[1]\" must be a string without NUL bytes");
        expect_fail("argv NUL", "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\\u0000b\"]}}",
                    "\\u0000 is not allowed");
        expect_fail("argv relative", "{\"name\": \"x\", \"handler\": {\"argv\": [\"hello\"]}}",
                    "\"handler.argv[0]\" must be an absolute path");
        expect_fail("env type", "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"], \"env\": []}}",
                    "\"handler.env\" must be an object");
        expect_fail(
            "env key",
            "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"], \"env\": {\"1X\": \"v\"}}}",
            "\"handler.env\" key \"1X\" is not a valid variable name");
        expect_fail(
            "env key =",
            "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"], \"env\": {\"A=B\": \"v\"}}}",
            "is not a valid variable name");
        expect_fail("env value",
                    "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"], \"env\": {\"X\": 1}}}",
                    "\"handler.env.X\" must be a string without NUL bytes");

        /* 300 arguments: over the agent's limit of 256. */
        char *many = malloc(300 * 6 + 200);
        size_t n = (size_t)sprintf(many, "{\"name\": \"x\", \"handler\": {\"argv\": [\"/a\"");
        for (int i = 1; i < 300; i++)
                n += (size_t)sprintf(many + n, ",\"a\"");
        strcpy(many + n, "]}}");
        expect_fail("argv count", many, "\"handler.argv\" has more than 256 entries");
        free(many);
}

static void file_cases(void)
{
        expect_fail("files type", "{\"name\": \"x\", \"files\": [], " OK_HANDLER "}",
                    "\"files\" must be an object");
        expect_fail("files relative key",
                    "{\"name\": \"x\", \"files\": {\"a\": \"f\"}, " OK_HANDLER "}",
                    "\"files\" key \"a\" must be an absolute guest path");
        expect_fail("files dotdot key",
                    "{\"name\": \"x\", \"files\": {\"/a/../b\": \"f\"}, " OK_HANDLER "}",
                    "\"files\" key \"/a/../b\" must be an absolute guest path");
        expect_fail("files init",
                    "{\"name\": \"x\", \"files\": {\"/init\": \"f\"}, " OK_HANDLER "}",
                    "\"files\" key \"/init\" is reserved for sprout");
        expect_fail("files sprout",
                    "{\"name\": \"x\", \"files\": {\"/sprout/argv\": \"f\"}, " OK_HANDLER "}",
                    "\"files\" key \"/sprout/argv\" is reserved for sprout");
        expect_fail("files value", "{\"name\": \"x\", \"files\": {\"/a\": 5}, " OK_HANDLER "}",
                    "\"files\" entry \"/a\" must be a non-empty host path");
        expect_fail("files missing",
                    "{\"name\": \"x\", \"files\": {\"/a\": \"nope\"}, " OK_HANDLER "}",
                    "\"files\" entry \"/a\": host file \"");
        expect_fail("files missing errno",
                    "{\"name\": \"x\", \"files\": {\"/a\": \"nope\"}, " OK_HANDLER "}",
                    "/src/nope\": No such file or directory");
        expect_fail("files dir", "{\"name\": \"x\", \"files\": {\"/a\": \".\"}, " OK_HANDLER "}",
                    "is not a regular file");
        expect_fail("rootfs missing", "{\"name\": \"x\", \"rootfs\": \"nodir\", " OK_HANDLER "}",
                    "\"rootfs\": \"");
        expect_fail("rootfs file", "{\"name\": \"x\", \"rootfs\": \"image.json\", " OK_HANDLER "}",
                    "is not a directory");

        /* --file options and tool paths, with a valid image.json. */
        const char *good = "{\"name\": \"x\", " OK_HANDLER "}";
        struct sprout_build_file bad_guest = {"app/x", "/bin/busybox"};
        struct sprout_build_opts o = {.files = &bad_guest, .n_files = 1};
        expect_fail_opts("--file relative", good, (size_t)-1, &o,
                         "--file app/x: the guest path must be absolute");
        struct sprout_build_file reserved = {"/init", "/bin/busybox"};
        o.files = &reserved;
        expect_fail_opts("--file reserved", good, (size_t)-1, &o,
                         "--file /init: reserved for sprout");
        struct sprout_build_file missing = {"/app/x", "/nonexistent/x"};
        o.files = &missing;
        expect_fail_opts("--file missing", good, (size_t)-1, &o,
                         "--file /app/x: host file \"/nonexistent/x\": No such file or directory");
        struct sprout_build_opts dyn = {.agent_path = "/bin/true"};
        expect_fail_opts("dynamic agent", good, (size_t)-1, &dyn,
                         "agent /bin/true: dynamically linked");
        struct sprout_build_opts noagent = {.agent_path = "/nonexistent/agent"};
        expect_fail_opts("missing agent", good, (size_t)-1, &noagent,
                         "agent /nonexistent/agent: No such file or directory");
        char *hn = tu_path(root, "src/image.json"); /* any file that is not ELF */
        struct sprout_build_opts notelf = {.busybox_path = hn};
        expect_fail_opts("busybox not ELF", good, (size_t)-1, &notelf,
                         "not an x86-64 ELF executable");
        free(hn);
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: %s AGENT BUSYBOX\n", argv[0]);
                return 2;
        }
        agent = argv[1];
        busybox = argv[2];
        root = tu_mkdtemp("spec");
        char *src = tu_path(root, "src");
        mkdir(src, 0755);

        char *json = tu_path(src, "image.json");
        expect_fail_opts("no image.json", NULL, 0, NULL,
                         "image.json: open: No such file or directory");
        free(json);

        syntax_cases();
        scalar_cases();
        handler_cases();
        file_cases();

        tu_rmtree(root);
        free(src);
        free(root);
        return check_finish();
}
