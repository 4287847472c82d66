/* The one test shape every sprout test program uses: named checks that count, a distinct message
 * per failed check, and the closing line "N passed, N failed" that CI reads. */
#ifndef SPROUT_TEST_CHECK_H
#define SPROUT_TEST_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                if (cond) {                                                                        \
                        check_passed++;                                                            \
                } else {                                                                           \
                        check_failed++;                                                            \
                        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fputc('\n', stderr);                                                       \
                }                                                                                  \
        } while (0)

/* CHECK, and leave the current case (a void function) when it fails: for checks later ones depend
 * on. */
#define REQUIRE(cond, ...)                                                                         \
        do {                                                                                       \
                bool require_ok_ = (cond);                                                         \
                CHECK(require_ok_, __VA_ARGS__);                                                   \
                if (!require_ok_)                                                                  \
                        return;                                                                    \
        } while (0)

/* Prints the closing line and gives the exit status. */
static inline int check_finish(void)
{
        printf("%d passed, %d failed\n", check_passed, check_failed);
        return check_failed || check_passed == 0 ? 1 : 0;
}

#endif
