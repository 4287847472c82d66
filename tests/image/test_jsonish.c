/* The hello handler's JSON check and quoting (examples/hello/jsonish.c): what counts as JSON to
 * echo verbatim, and that quoting always yields a valid JSON string or reports it does not fit. */
#include <string.h>

#include "../common/check.h"
#include "jsonish.h"

static void valid(const char *s, int expect)
{
        CHECK(jsonish_valid(s, strlen(s)) == expect, "jsonish_valid(%s) != %d", s, expect);
}

int main(void)
{
        static const char *const good[] = {
            "{}",
            "[]",
            " {\"a\": [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"]} ",
            "0",
            "\"s\"",
            "{\"nested\":{\"deep\":[[[]]]}}",
            "\"\xc3\xa9\"",
        };
        static const char *const bad[] = {
            "",      " ",          "{",        "{\"a\"}",      "{\"a\":1,}",       "[1,]",
            "01",    "1.",         "-",        "tru",          "\"\\x\"",          "\"a\x01\"",
            "{} {}", "plain text", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{'a':1}",
            "[1 2]",
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                valid(good[i], 1);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                valid(bad[i], 0);

        char deep[200];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        CHECK(!jsonish_valid(deep, sizeof(deep)), "nesting past the limit accepted");
        CHECK(jsonish_valid(deep + 40, 120), "nesting of 60 refused");

        char out[64];
        const char in[] = "say \"hi\"\\\n\x01\xff\xc3\xa9";
        size_t n = jsonish_quote(in, sizeof(in) - 1, out, sizeof(out));
        const char want[] = "\"say \\\"hi\\\"\\\\\\u000a\\u0001\xef\xbf\xbd\xc3\xa9\"";
        CHECK(n == sizeof(want) - 1 && memcmp(out, want, n) == 0, "quote: %.*s", (int)n, out);
        CHECK(jsonish_valid(out, n), "quoted output is not JSON");
        CHECK(jsonish_quote(in, sizeof(in) - 1, out, 10) == 0, "quote into too small a buffer");
        CHECK(jsonish_quote("", 0, out, 2) == 2 && memcmp(out, "\"\"", 2) == 0, "quote empty");
        return check_finish();
}
