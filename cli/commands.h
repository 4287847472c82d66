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

/* Through sproutd (client.c); exit codes add 3: the daemon is unreachable. */
int sprout_cmd_prewarm_any(int argc, char **argv); /* -o: sprout_cmd_prewarm, else the daemon */
int sprout_cmd_clone_any(int argc, char **argv);   /* --direct: sprout_cmd_clone */
int sprout_cmd_bench_any(int argc, char **argv);   /* "api": the API benchmark */
int sprout_cmd_snapshots(int argc, char **argv);
int sprout_cmd_clones(int argc, char **argv);
int sprout_cmd_invoke(int argc, char **argv);
int sprout_cmd_rm(int argc, char **argv);
int sprout_cmd_daemon(int argc, char **argv);

#endif
