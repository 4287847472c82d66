/* Strict readers for fields of hostile JSON objects: each failure names the file and the field.
 * Internal to the image library. */
#ifndef SPROUT_IMAGE_JFIELD_H
#define SPROUT_IMAGE_JFIELD_H

#include <jansson.h>
#include <stddef.h>

#include "sprout/err.h"

/* Where messages point: the file being read. */
struct jctx {
        const char *file;
        struct sprout_err *err;
};

/* Read a regular file of at most cap bytes and parse it as a JSON object (duplicate keys
 * rejected). Messages name the file and the line and column at fault, never its content. */
int jf_load_object(const char *path, size_t cap, json_t **out, struct sprout_err *err);
/* The same from an open fd; name is for messages. */
int jf_read_object(int fd, const char *name, size_t cap, json_t **out, struct sprout_err *err);
/* The same from a buffer. */
int jf_parse_object(const char *name, const char *buf, size_t len, json_t **out,
                    struct sprout_err *err);

/* Reject any key of obj not in keys (NULL-terminated); prefix ("handler.") is for messages. */
int jf_only_keys(const struct jctx *c, json_t *obj, const char *prefix, const char *const *keys);

/*
 * obj[key] as a string of at most maxlen bytes with no NUL; field is its full name for messages.
 * Absent: *out = NULL, and an error if required.
 */
int jf_string(const struct jctx *c, json_t *obj, const char *key, const char *field, int required,
              size_t maxlen, const char **out);

/* obj[key] as an integer in [min, max]; absent: def (or an error if required). */
int jf_int(const struct jctx *c, json_t *obj, const char *key, const char *field, int required,
           long long min, long long max, long long def, long long *out);

/*
 * A handler argv: a non-empty array of NUL-free strings, argv[0] absolute, at most
 * SPROUT_LIST_MAX_ENTRIES items and SPROUT_LIST_MAX_BYTES bytes with terminators. On success *argv
 * is a NULL-terminated array of copies (free with jf_strv_free).
 */
int jf_argv(const struct jctx *c, json_t *arr, const char *field, char ***argv, size_t *argc);
void jf_strv_free(char **v);

/*
 * The required "handler" object of root, with only the given keys, and its required "argv" parsed
 * as by jf_argv. *handler is the object (borrowed from root), for callers that read more of it.
 */
int jf_handler(const struct jctx *c, json_t *root, const char *const *keys, json_t **handler,
               char ***argv, size_t *argc);

/* Image names: 1..SPROUT_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. */
int jf_name_ok(const char *s);

/* No control characters (tabs and newlines included); UTF-8 is fine. */
int jf_printable(const char *s);

#endif
