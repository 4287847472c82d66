/* The `sprout` subcommands: each takes its own argv (argv[0] is the subcommand's name) and returns
 * the process exit code (0 ok, 1 failure, 2 usage error). */
#ifndef SPROUT_CLI_COMMANDS_H
#define SPROUT_CLI_COMMANDS_H

int sprout_cmd_build(int argc, char **argv);
int sprout_cmd_boot(int argc, char **argv);
int sprout_cmd_prewarm(int argc, char **argv);
int sprout_cmd_inspect(int argc, char **argv);
int sprout_cmd_clone(int argc, char **argv);
int sprout_cmd_bench(int argc, char **argv);

#endif
