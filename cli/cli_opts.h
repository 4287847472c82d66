/* The one getopt_long loop of the CLI: each verb states its options as a table and gets --help,
 * range-checked numbers and exit status 2 on a usage error the same way as every other verb. */
#ifndef SPROUT_CLI_OPTS_H
#define SPROUT_CLI_OPTS_H

#include <getopt.h> /* optind: the first operand after cli_parse_opts */
#include <stdbool.h>
#include <stdio.h>

enum cli_opt_kind {
        CLI_OPT_FLAG,   /* sets *(bool *)dest */
        CLI_OPT_STRING, /* points *(const char **)dest at the argument */
        CLI_OPT_LONG,   /* parses the argument into *(long *)dest, within [min, max] */
        CLI_OPT_FN,     /* calls fn(arg, dest); fn returns 0, or an exit code after saying why */
};

struct cli_opt {
        const char *name; /* the long name, without "--"; NULL ends a table */
        char short_name;  /* 0: long only */
        enum cli_opt_kind kind;
        void *dest;
        long min, max;     /* CLI_OPT_LONG */
        const char *label; /* CLI_OPT_LONG: how the range message names it; default "--name" */
        const char *unit;  /* CLI_OPT_LONG: said after the range, e.g. "seconds"; may be NULL */
        bool *seen;        /* set true when the option is given; may be NULL */
        int (*fn)(char *arg, void *dest); /* arg points into argv */
};

#define CLI_FLAG(n, s, p)                                                                          \
        {                                                                                          \
                .name = (n), .short_name = (s), .kind = CLI_OPT_FLAG, .dest = (p)                  \
        }
#define CLI_STRING(n, s, p)                                                                        \
        {                                                                                          \
                .name = (n), .short_name = (s), .kind = CLI_OPT_STRING, .dest = (p)                \
        }
#define CLI_LONG(n, s, p, lo, hi) CLI_LONG_UNIT(n, s, p, lo, hi, NULL)
#define CLI_LONG_UNIT(n, s, p, lo, hi, u)                                                          \
        {                                                                                          \
                .name = (n), .short_name = (s), .kind = CLI_OPT_LONG, .dest = (p), .min = (lo),    \
                .max = (hi), .unit = (u)                                                           \
        }
/* A number whose range message names it otherwise, e.g. "-n" for --count. */
#define CLI_LONG_AS(n, s, p, lo, hi, lbl)                                                          \
        {                                                                                          \
                .name = (n), .short_name = (s), .kind = CLI_OPT_LONG, .dest = (p), .min = (lo),    \
                .max = (hi), .label = (lbl)                                                        \
        }
/* The options most verbs share. */
#define CLI_JSON(p)   CLI_FLAG("json", 0, p)
#define CLI_SOCKET(p) CLI_STRING("socket", 0, p)
#define CLI_END                                                                                    \
        {                                                                                          \
                .name = NULL                                                                       \
        }

struct cli_verb {
        const char *name;         /* as messages name it: "sprout NAME: ..." */
        void (*usage)(FILE *f);   /* prints the usage text; or NULL and usage_text */
        const char *usage_text;   /* printed as is when usage is NULL */
        bool own_errors;          /* report unknown options in our words, not getopt's */
        int operands;             /* how many operands it takes, or CLI_OPERANDS_ANY */
        const char *operands_msg; /* said when their number is wrong; NULL: just the usage */
};

#define CLI_OPERANDS_ANY (-1) /* the verb counts its operands itself */

void cli_usage(const struct cli_verb *v, FILE *f);

/*
 * Parses argv's options (argv[0] is the verb) against opts plus -h/--help and checks the number of
 * operands; leaves optind at the first operand. Returns 0 to go on, or -ECANCELED when the verb is
 * done: *status is then its exit code (0 after --help, CLI_EXIT_USAGE after a usage error, said on
 * stderr).
 */
int cli_parse_opts(const struct cli_verb *v, const struct cli_opt *opts, int argc, char **argv,
                   int *status);

/* Prints "sprout NAME: MSG" (when fmt is not NULL) and the usage on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_verb *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
