/* Allocation-free JSON checking and string quoting for the hello handler, bounded by the input
 * length and a nesting limit (the request comes from outside the guest). */
#include <stdint.h>
#include <string.h>

#include "jsonish.h"

#define MAX_DEPTH 64

struct cur {
        const unsigned char *p, *end;
        int depth;
};

/* Length of the well-formed UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
        size_t n;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0)
                n = 2, cp = p[0] & 0x1f;
        else if ((p[0] & 0xf0) == 0xe0)
                n = 3, cp = p[0] & 0x0f;
        else if ((p[0] & 0xf8) == 0xf0)
                n = 4, cp = p[0] & 0x07;
        else
                return 0;
        if ((size_t)(end - p) < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* No overlong forms, no surrogates, nothing past U+10FFFF. */
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return n;
}

static void ws(struct cur *c)
{
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
                c->p++;
}

static int is_hex(unsigned char ch)
{
        return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int string(struct cur *c)
{
        c->p++; /* the opening quote */
        while (c->p < c->end) {
                unsigned char ch = *c->p;
                if (ch == '"') {
                        c->p++;
                        return 1;
                }
                if (ch < 0x20)
                        return 0;
                if (ch == '\\') {
                        if (c->end - c->p < 2)
                                return 0;
                        unsigned char e = c->p[1];
                        if (e == 'u') {
                                if (c->end - c->p < 6 || !is_hex(c->p[2]) || !is_hex(c->p[3]) ||
                                    !is_hex(c->p[4]) || !is_hex(c->p[5]))
                                        return 0;
                                c->p += 6;
                        } else if (strchr("\"\\/bfnrt", e) && e) {
                                c->p += 2;
                        } else {
                                return 0;
                        }
                        continue;
                }
                size_t n = utf8_len(c->p, c->end);
                if (!n)
                        return 0;
                c->p += n;
        }
        return 0;
}

static int digits(struct cur *c)
{
        const unsigned char *start = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
                c->p++;
        return c->p > start;
}

static int number(struct cur *c)
{
        if (*c->p == '-')
                c->p++;
        if (c->p < c->end && *c->p == '0')
                c->p++;
        else if (!digits(c))
                return 0;
        if (c->p < c->end && *c->p == '.') {
                c->p++;
                if (!digits(c))
                        return 0;
        }
        if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
                c->p++;
                if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
                        c->p++;
                if (!digits(c))
                        return 0;
        }
        return 1;
}

static int literal(struct cur *c, const char *word)
{
        size_t n = strlen(word);
        if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
                return 0;
        c->p += n;
        return 1;
}

static int value(struct cur *c);

/* An object or array: open/close brackets, members separated by commas. */
static int container(struct cur *c, unsigned char close, int is_object)
{
        if (++c->depth > MAX_DEPTH)
                return 0;
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
                c->p++;
                c->depth--;
                return 1;
        }
        for (;;) {
                if (is_object) {
                        if (c->p >= c->end || *c->p != '"' || !string(c))
                                return 0;
                        ws(c);
                        if (c->p >= c->end || *c->p++ != ':')
                                return 0;
                }
                if (!value(c))
                        return 0;
                ws(c);
                if (c->p >= c->end)
                        return 0;
                if (*c->p == close) {
                        c->p++;
                        c->depth--;
                        return 1;
                }
                if (*c->p++ != ',')
                        return 0;
                ws(c);
        }
}

static int value(struct cur *c)
{
        ws(c);
        if (c->p >= c->end)
                return 0;
        switch (*c->p) {
        case '{':
                return container(c, '}', 1);
        case '[':
                return container(c, ']', 0);
        case '"':
                return string(c);
        case 't':
                return literal(c, "true");
        case 'f':
                return literal(c, "false");
        case 'n':
                return literal(c, "null");
        default:
                return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) && number(c);
        }
}

int jsonish_valid(const char *buf, size_t len)
{
        struct cur c = {(const unsigned char *)buf, (const unsigned char *)buf + len, 0};

        if (!value(&c))
                return 0;
        ws(&c);
        return c.p == c.end;
}

size_t jsonish_quote(const char *buf, size_t len, char *out, size_t cap)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)buf, *end = p + len;
        size_t o = 0;

        /* Any byte that does not fit fails the whole quote: a cut string would not be JSON. */
#define PUT(ch)                                                                                    \
        do {                                                                                       \
                if (o == cap)                                                                      \
                        return 0;                                                                  \
                out[o++] = (char)(ch);                                                             \
        } while (0)
        PUT('"');
        while (p < end) {
                unsigned char ch = *p;
                if (ch == '"' || ch == '\\') {
                        PUT('\\');
                        PUT(ch);
                        p++;
                } else if (ch < 0x20 || ch == 0x7f) {
                        PUT('\\');
                        PUT('u');
                        PUT('0');
                        PUT('0');
                        PUT(hex[ch >> 4]);
                        PUT(hex[ch & 15]);
                        p++;
                } else {
                        size_t n = utf8_len(p, end);
                        if (n == 0) {
                                PUT(0xef); /* U+FFFD */
                                PUT(0xbf);
                                PUT(0xbd);
                                p++;
                        } else {
                                for (size_t i = 0; i < n; i++)
                                        PUT(p[i]);
                                p += n;
                        }
                }
        }
        PUT('"');
#undef PUT
        return o;
}
