/* The escaper every log line, terminal and JSON string of untrusted text goes through
 * (common/escape.c): what passes, what becomes \xNN, and truncation that never splits either. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sprout/escape.h"
#include "sprout/log.h"

static const char *esc(const char *in, size_t len, unsigned flags)
{
        static char out[256];
        sprout_escape(out, sizeof(out), in, len, flags);
        return out;
}

#define ESC(lit, flags) esc(lit, sizeof(lit) - 1, flags)

static void case_ascii(void)
{
        CHECK(strcmp(ESC("GET /v1/clones?x=1", 0), "GET /v1/clones?x=1") == 0, "plain ASCII");
        CHECK(strcmp(ESC("a\\b", 0), "a\\b") == 0, "a backslash is left alone: '%s'",
              ESC("a\\b", 0));
        CHECK(strcmp(ESC("line\nforged 2026 error", 0), "line\\x0aforged 2026 error") == 0,
              "newline: '%s'", ESC("line\nforged 2026 error", 0));
        CHECK(strcmp(ESC("\r\t\x1b[2J\x7f", 0), "\\x0d\\x09\\x1b[2J\\x7f") == 0,
              "CR, tab, ESC, DEL: '%s'", ESC("\r\t\x1b[2J\x7f", 0));
        CHECK(strcmp(ESC("a\0b", 0), "a\\x00b") == 0, "NUL inside: '%s'", ESC("a\0b", 0));
        CHECK(strcmp(ESC("one\ntwo\tx\r", SPROUT_ESC_KEEP_LINES), "one\ntwo\tx\\x0d") == 0,
              "KEEP_LINES keeps newline and tab only: '%s'",
              ESC("one\ntwo\tx\r", SPROUT_ESC_KEEP_LINES));
}

static void case_utf8(void)
{
        /* Well-formed printable characters of 2, 3 and 4 bytes pass. */
        CHECK(strcmp(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb1", 0),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb1") == 0,
              "valid UTF-8 changed: '%s'", ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb1", 0));
        static const struct {
                const char *in;
                size_t len;
                const char *out;
                const char *what;
        } bad[] = {
            {"\xff", 1, "\\xff", "0xff"},
            {"\x80x", 2, "\\x80x", "a lone continuation byte"},
            {"\xc3", 1, "\\xc3", "a truncated 2-byte sequence"},
            {"\xe2\x82", 2, "\\xe2\\x82", "a truncated 3-byte sequence"},
            {"\xc0\xaf", 2, "\\xc0\\xaf", "an overlong '/'"},
            {"\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf", "a 3-byte overlong"},
            {"\xed\xa0\x80", 3, "\\xed\\xa0\\x80", "a surrogate"},
            {"\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80", "above U+10FFFF"},
            {"\xc2\x9b"
             "31m",
             5,
             "\\xc2\\x9b"
             "31m",
             "C1 CSI"},
            {"\xe2\x80\xae", 3, "\\xe2\\x80\\xae", "a right-to-left override"},
            {"\xe2\x80\xa8", 3, "\\xe2\\x80\\xa8", "a line separator"},
            {"\xc3(", 2, "\\xc3(", "a lead byte before ASCII"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *got = esc(bad[i].in, bad[i].len, 0);
                CHECK(strcmp(got, bad[i].out) == 0, "%s: '%s', want '%s'", bad[i].what, got,
                      bad[i].out);
                CHECK(!sprout_text_is_clean(bad[i].in, bad[i].len, 0), "%s called clean",
                      bad[i].what);
                CHECK(sprout_text_is_clean(got, strlen(got), 0), "%s: escaped text not clean",
                      bad[i].what);
        }
        CHECK(sprout_text_is_clean("caf\xc3\xa9", 5, 0), "valid UTF-8 not clean");
        CHECK(!sprout_text_is_clean("a\nb", 3, 0) && sprout_text_is_clean("a\nb", 3, 1),
              "newline clean only with KEEP_LINES");
}

static void case_truncate(void)
{
        char out[8];
        size_t n = sprout_escape(out, sizeof(out), "abcdefghij", 10, 0);
        CHECK(n == 7 && strcmp(out, "abcdefg") == 0, "ASCII cut: %zu '%s'", n, out);
        n = sprout_escape(out, sizeof(out), "abcd\x1b", 5, 0);
        CHECK(n == 4 && strcmp(out, "abcd") == 0, "an escape that does not fit whole: %zu '%s'", n,
              out);
        n = sprout_escape(out, sizeof(out), "abcde\xe2\x82\xac", 8, 0);
        CHECK(n == 5 && strcmp(out, "abcde") == 0, "a character that does not fit whole: %zu '%s'",
              n, out);
        n = sprout_escape(out, 1, "abc", 3, 0);
        CHECK(n == 0 && out[0] == '\0', "cap 1: %zu", n);
        CHECK(sprout_escape(out, 0, "abc", 3, 0) == 0, "cap 0 writes nothing");
        char big[4 * 16 + 1];
        char all[16];
        memset(all, 0x1b, sizeof(all));
        n = sprout_escape(big, sizeof(big), all, sizeof(all), 0);
        CHECK(n == 64 && strlen(big) == 64, "4 bytes a byte fit exactly in 4n+1: %zu", n);
        CHECK(strcmp(sprout_escape_str(out, sizeof(out), NULL, 0), "") == 0, "NULL string");
}

/* The logger escapes every message: a URL with a newline and ESC stays on one line. */
static void case_logger(void)
{
        FILE *f = tmpfile();
        REQUIRE(f, "tmpfile");
        int saved = dup(2);
        fflush(stderr);
        dup2(fileno(f), 2);
        sp_warn("GET %s: not found", "/v1/clones/x\n2026-01-01T00:00:00Z error forged\x1b[31m\xff");
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        char line[512] = {0};
        rewind(f);
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        CHECK(n > 0 && strchr(line, '\n') == line + n - 1, "one line: '%s'", line);
        CHECK(strstr(line, "/v1/clones/x\\x0a2026-01-01T00:00:00Z error forged\\x1b[31m\\xff: not "
                           "found\n"),
              "escaped in the log: '%s'", line);
}

int main(void)
{
        case_ascii();
        case_utf8();
        case_truncate();
        case_logger();
        return check_finish();
}
