/* Strict readers for fields of hostile JSON objects (image.json, manifest.json): wrong types,
 * unknown keys, out-of-range numbers and embedded NULs are refused with the field named. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/fileio.h"
#include "sprout/image.h"
#include "sprout/initramfs.h"
#include "jfield.h"

/* jansson's message ends in "near '<token>'": the token is the file's own text, which a message
 * must never carry (the file may be one the reader could not otherwise see), so it is cut. */
static void json_reason(const json_error_t *je, char *out, size_t len)
{
        snprintf(out, len, "%s", je->text);
        char *near = strstr(out, " near ");
        if (near)
                *near = '\0';
}

int jf_parse_object(const char *name, const char *buf, size_t len, json_t **out,
                    struct sprout_err *err)
{
        json_error_t je;
        char why[JSON_ERROR_TEXT_LENGTH];

        *out = NULL;
        json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
                json_reason(&je, why, sizeof(why));
                return sprout_err_set(err, -EINVAL, "%s: invalid JSON at line %d, column %d: %s",
                                      name, je.line, je.column, why);
        }
        if (!json_is_object(root)) {
                json_decref(root);
                return sprout_err_set(err, -EINVAL, "%s: the top level must be a JSON object",
                                      name);
        }
        *out = root;
        return 0;
}

int jf_read_object(int fd, const char *name, size_t cap, json_t **out, struct sprout_err *err)
{
        char *buf = NULL;
        size_t len = 0;
        *out = NULL;
        int rc = sprout_read_capped(fd, cap, &buf, &len);
        if (rc == -EFBIG)
                return sprout_err_set(err, rc, "%s: larger than %zu bytes", name, cap);
        if (rc < 0)
                return sprout_err_errno(err, rc, "%s: read", name);
        rc = jf_parse_object(name, buf, len, out, err);
        free(buf);
        return rc;
}

int jf_load_object(const char *path, size_t cap, json_t **out, struct sprout_err *err)
{
        *out = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s: open", path);
        struct stat st;
        int rc = fstat(fd, &st) < 0 ? sprout_err_errno(err, -errno, "%s: stat", path) : 0;
        if (rc == 0 && !S_ISREG(st.st_mode))
                rc = sprout_err_set(err, -EINVAL, "%s: not a regular file", path);
        if (rc == 0)
                rc = jf_read_object(fd, path, cap, out, err);
        close(fd);
        return rc;
}

int jf_only_keys(const struct jctx *c, json_t *obj, const char *prefix, const char *const *keys)
{
        const char *key;
        json_t *v;

        json_object_foreach(obj, key, v)
        {
                size_t i = 0;
                while (keys[i] && strcmp(keys[i], key) != 0)
                        i++;
                if (!keys[i])
                        return sprout_err_set(c->err, -EINVAL, "%s: unknown field \"%s%.64s\"",
                                              c->file, prefix, key);
        }
        return 0;
}

int jf_string(const struct jctx *c, json_t *obj, const char *key, const char *field, int required,
              size_t maxlen, const char **out)
{
        json_t *v = json_object_get(obj, key);

        *out = NULL;
        if (!v)
                return required ? sprout_err_set(c->err, -EINVAL, "%s: \"%s\" is required", c->file,
                                                 field)
                                : 0;
        if (!json_is_string(v))
                return sprout_err_set(c->err, -EINVAL, "%s: \"%s\" must be a string", c->file,
                                      field);
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (strlen(s) != len)
                return sprout_err_set(c->err, -EINVAL, "%s: \"%s\" contains a NUL byte", c->file,
                                      field);
        if (len > maxlen)
                return sprout_err_set(c->err, -EINVAL, "%s: \"%s\" is longer than %zu bytes",
                                      c->file, field, maxlen);
        *out = s;
        return 0;
}

int jf_int(const struct jctx *c, json_t *obj, const char *key, const char *field, int required,
           long long min, long long max, long long def, long long *out)
{
        json_t *v = json_object_get(obj, key);

        *out = def;
        if (!v)
                return required ? sprout_err_set(c->err, -EINVAL, "%s: \"%s\" is required", c->file,
                                                 field)
                                : 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return sprout_err_set(c->err, -EINVAL,
                                      "%s: \"%s\" must be an integer between %lld and %lld",
                                      c->file, field, min, max);
        *out = json_integer_value(v);
        return 0;
}

void jf_strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

int jf_argv(const struct jctx *c, json_t *arr, const char *field, char ***argv, size_t *argc)
{
        size_t n = json_is_array(arr) ? json_array_size(arr) : 0, total = 0;

        *argv = NULL;
        *argc = 0;
        if (n == 0)
                return sprout_err_set(c->err, -EINVAL,
                                      "%s: \"%s\" must be a non-empty array of strings", c->file,
                                      field);
        if (n > SPROUT_LIST_MAX_ENTRIES)
                return sprout_err_set(c->err, -E2BIG, "%s: \"%s\" has more than %d entries",
                                      c->file, field, SPROUT_LIST_MAX_ENTRIES);
        char **v = calloc(n + 1, sizeof(*v));
        if (!v)
                return sprout_err_set(c->err, -ENOMEM, "%s: out of memory", c->file);
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(arr, i);
                if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
                        jf_strv_free(v);
                        return sprout_err_set(c->err, -EINVAL,
                                              "%s: \"%s[%zu]\" must be a string without NUL bytes",
                                              c->file, field, i);
                }
                total += json_string_length(s) + 1;
                v[i] = strdup(json_string_value(s));
                if (!v[i]) {
                        jf_strv_free(v);
                        return sprout_err_set(c->err, -ENOMEM, "%s: out of memory", c->file);
                }
        }
        int rc = 0;
        if (total > SPROUT_LIST_MAX_BYTES)
                rc = sprout_err_set(c->err, -E2BIG, "%s: \"%s\" takes more than %d bytes", c->file,
                                    field, SPROUT_LIST_MAX_BYTES);
        else if (v[0][0] != '/')
                rc = sprout_err_set(c->err, -EINVAL, "%s: \"%s[0]\" must be an absolute path",
                                    c->file, field);
        if (rc < 0) {
                jf_strv_free(v);
                return rc;
        }
        *argv = v;
        *argc = n;
        return 0;
}

int jf_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > SPROUT_NAME_MAX || s[0] == '.')
                return 0;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
                        return 0;
        }
        return 1;
}

int jf_printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return 0;
        return 1;
}

int jf_handler(const struct jctx *c, json_t *root, const char *const *keys, json_t **handler,
               char ***argv, size_t *argc)
{
        json_t *h = json_object_get(root, "handler");

        if (!h)
                return sprout_err_set(c->err, -EINVAL, "%s: \"handler\" is required", c->file);
        if (!json_is_object(h))
                return sprout_err_set(c->err, -EINVAL, "%s: \"handler\" must be an object",
                                      c->file);
        int rc = jf_only_keys(c, h, "handler.", keys);
        if (rc < 0)
                return rc;
        json_t *a = json_object_get(h, "argv");
        if (!a)
                return sprout_err_set(c->err, -EINVAL, "%s: \"handler.argv\" is required", c->file);
        *handler = h;
        return jf_argv(c, a, "handler.argv", argv, argc);
}
