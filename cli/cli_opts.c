/* The option parser behind cli_opts.h: one table-driven getopt_long loop for every verb. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

#include "cli_opts.h"
#include "cli_util.h"

#define MAX_OPTS   32
#define HELP_VAL   'h'
#define LONG_FIRST 256 /* getopt vals of long-only options: LONG_FIRST + table index */

void cli_usage(const struct cli_verb *v, FILE *f)
{
        if (v->usage)
                v->usage(f);
        else
                fputs(v->usage_text, f);
}

int cli_usage_error(const struct cli_verb *v, const char *fmt, ...)
{
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                fprintf(stderr, "sprout %s: ", v->name);
                vfprintf(stderr, fmt, ap);
                fputc('\n', stderr);
                va_end(ap);
        }
        cli_usage(v, stderr);
        return CLI_EXIT_USAGE;
}

static const struct cli_opt *opt_of(const struct cli_opt *opts, int c)
{
        if (c >= LONG_FIRST)
                return &opts[c - LONG_FIRST];
        for (const struct cli_opt *o = opts; o->name; o++)
                if (o->short_name == c)
                        return o;
        return NULL;
}

/* Stores one option's argument; returns 0, or the exit code of a bad value after saying why. */
static int apply(const struct cli_verb *v, const struct cli_opt *o, char *arg)
{
        if (o->seen)
                *o->seen = true;
        switch (o->kind) {
        case CLI_OPT_FLAG:
                *(bool *)o->dest = true;
                return 0;
        case CLI_OPT_STRING:
                *(const char **)o->dest = arg;
                return 0;
        case CLI_OPT_LONG:
                if (cli_parse_long(arg, o->min, o->max, o->dest) == 0)
                        return 0;
                if (o->label)
                        fprintf(stderr, "sprout %s: %s takes %ld..%ld", v->name, o->label, o->min,
                                o->max);
                else
                        fprintf(stderr, "sprout %s: --%s takes %ld..%ld", v->name, o->name, o->min,
                                o->max);
                fprintf(stderr, "%s%s\n", o->unit ? " " : "", o->unit ? o->unit : "");
                return CLI_EXIT_USAGE;
        case CLI_OPT_FN:
                return o->fn(arg, o->dest);
        }
        return CLI_EXIT_USAGE;
}

int cli_parse_opts(const struct cli_verb *v, const struct cli_opt *opts, int argc, char **argv,
                   int *status)
{
        struct option lo[MAX_OPTS + 2];
        char shorts[2 * MAX_OPTS + 2];
        size_t n = 0, ns = 0;

        for (; opts[n].name; n++) {
                if (n == MAX_OPTS) {
                        *status = CLI_EXIT_FAIL; /* a table this big is a bug */
                        return -ECANCELED;
                }
                const struct cli_opt *o = &opts[n];
                bool arg = o->kind != CLI_OPT_FLAG;
                lo[n] = (struct option){o->name, arg ? required_argument : no_argument, NULL,
                                        o->short_name ? o->short_name : LONG_FIRST + (int)n};
                if (o->short_name) {
                        shorts[ns++] = o->short_name;
                        if (arg)
                                shorts[ns++] = ':';
                }
        }
        lo[n++] = (struct option){"help", no_argument, NULL, HELP_VAL};
        lo[n] = (struct option){NULL, 0, NULL, 0};
        shorts[ns++] = HELP_VAL;
        shorts[ns] = '\0';

        int c;
        optind = 0; /* glibc: restart scanning whatever an earlier getopt left behind */
        opterr = !v->own_errors;
        while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
                const struct cli_opt *o = c == '?' || c == ':' ? NULL : opt_of(opts, c);
                if (c == HELP_VAL && !o) {
                        cli_usage(v, stdout);
                        *status = 0;
                        return -ECANCELED;
                }
                if (!o) {
                        if (v->own_errors)
                                *status = cli_usage_error(
                                    v, "unknown option or missing argument: %s", argv[optind - 1]);
                        else
                                *status = cli_usage_error(v, NULL);
                        return -ECANCELED;
                }
                int r = apply(v, o, optarg);
                if (r) {
                        *status = r;
                        return -ECANCELED;
                }
        }
        if (v->operands != CLI_OPERANDS_ANY && argc - optind != v->operands) {
                *status = v->operands_msg ? cli_usage_error(v, "%s", v->operands_msg)
                                          : cli_usage_error(v, NULL);
                return -ECANCELED;
        }
        *status = 0;
        return 0;
}
