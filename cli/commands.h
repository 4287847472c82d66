/* The `sprout` verbs, one file each in cmd/: each takes its own argv (argv[0] is the verb) and
 * returns the process exit code (CLI_EXIT_* in cli_util.h). */
#ifndef SPROUT_CLI_COMMANDS_H
#define SPROUT_CLI_COMMANDS_H

int sprout_cmd_build(int argc, char **argv);
int sprout_cmd_boot(int argc, char **argv);
int sprout_cmd_prewarm(int argc, char **argv); /* -o FILE: direct, else through sproutd */
int sprout_cmd_deploy(int argc, char **argv);  /* build a function directory + prewarm */
int sprout_cmd_inspect(int argc, char **argv);
int sprout_cmd_logs(int argc, char **argv);   /* a clone's log, through sproutd */
int sprout_cmd_import(int argc, char **argv); /* a foreign snapshot into a state directory */
int sprout_cmd_clone(int argc, char **argv);  /* --direct or a snapshot file: in this process */
int sprout_cmd_bench(int argc, char **argv);

/* Through sproutd (client.c). */
int sprout_cmd_snapshots(int argc, char **argv);
int sprout_cmd_clones(int argc, char **argv);
int sprout_cmd_invoke(int argc, char **argv);
int sprout_cmd_rm(int argc, char **argv);
int sprout_cmd_daemon(int argc, char **argv);

#endif
