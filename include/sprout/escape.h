/* Escaping untrusted text (guest output, client URLs and paths) before it reaches a log line, a
 * terminal or a JSON string: what could move a cursor, end a line, or fail UTF-8 becomes \xNN. */
#ifndef SPROUT_ESCAPE_H
#define SPROUT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Keep '\n' and '\t' as they are: for multi-line text (a console tail) shown as lines. */
#define SPROUT_ESC_KEEP_LINES 0x1u

/* Writes in[0..len) to out (cap bytes, always NUL-terminated when cap > 0) with every byte that is
 * not printable ASCII or part of well-formed printable UTF-8 written as \xNN: C0 controls, DEL, the
 * C1 controls U+0080..U+009F, the bidirectional overrides and line separators of U+2028..U+202E and
 * U+2066..U+2069, and any byte of an invalid, overlong, surrogate or truncated sequence. A
 * backslash is left as it is, so text escaped once reads the same after a second pass. Output that
 * does not fit stops before the first escape or character that would not fit whole. Returns the
 * bytes written, without the NUL. */
size_t sprout_escape(char *out, size_t cap, const void *in, size_t len, unsigned flags);

/* sprout_escape of a NUL-terminated string; returns out, for use as a printf argument. */
const char *sprout_escape_str(char *out, size_t cap, const char *s, unsigned flags);

/* Whether sprout_escape would leave in[0..len) unchanged (nothing to escape). */
bool sprout_text_is_clean(const void *in, size_t len, unsigned flags);

#endif
