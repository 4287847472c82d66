/* The sprout CLI's subcommands: each takes argv starting at its own name and returns the exit status
 * (0 success, 1 the operation failed, 2 usage error). */
#ifndef SPROUT_CLI_COMMANDS_H
#define SPROUT_CLI_COMMANDS_H

int sprout_cmd_build(int argc, char **argv);
int sprout_cmd_boot(int argc, char **argv);

#endif
