/* The one escaper for untrusted text on its way to a log line, a terminal or a JSON string
 * (include/sprout/escape.h): a UTF-8 decoder that passes well-formed printable characters and
 * spells everything else as \xNN. */
#include <stdint.h>
#include <string.h>

#include "sprout/escape.h"

/* The length of the well-formed, printable UTF-8 character at p (1..4), or 0 if p[0] must be
 * escaped. RFC 3629 ranges: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t char_len(const uint8_t *p, size_t n, unsigned flags)
{
        uint8_t c = p[0];
        if (c < 0x80) {
                if (c >= 0x20 && c < 0x7f)
                        return 1;
                if ((flags & SPROUT_ESC_KEEP_LINES) && (c == '\n' || c == '\t'))
                        return 1;
                return 0;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
                need = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
                need = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
                need = 4, cp = c & 0x07, min = 0x10000;
        } else {
                return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
        }
        if (n < need)
                return 0;
        for (size_t i = 1; i < need; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        /* C1 controls act as terminal escapes (0x9b is CSI); the others reorder or split what a
         * reader sees of a line. */
        if (cp <= 0x9f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
                return 0;
        return need;
}

size_t sprout_escape(char *out, size_t cap, const void *in, size_t len, unsigned flags)
{
        static const char hex[] = "0123456789abcdef";
        const uint8_t *p = in;
        size_t o = 0;
        if (cap == 0)
                return 0;
        for (size_t i = 0; i < len;) {
                size_t k = char_len(p + i, len - i, flags);
                if (k) {
                        if (o + k >= cap)
                                break;
                        memcpy(out + o, p + i, k);
                        o += k;
                        i += k;
                        continue;
                }
                if (o + 4 >= cap)
                        break;
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[p[i] >> 4];
                out[o++] = hex[p[i] & 0xf];
                i++;
        }
        out[o] = '\0';
        return o;
}

const char *sprout_escape_str(char *out, size_t cap, const char *s, unsigned flags)
{
        sprout_escape(out, cap, s, s ? strlen(s) : 0, flags);
        return out;
}

bool sprout_text_is_clean(const void *in, size_t len, unsigned flags)
{
        const uint8_t *p = in;
        for (size_t i = 0; i < len;) {
                size_t k = char_len(p + i, len - i, flags);
                if (!k)
                        return false;
                i += k;
        }
        return true;
}
