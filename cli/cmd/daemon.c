/* sprout daemon: sproutd in the foreground, under the sprout binary. */
#include "commands.h"
#include "sprout/daemon.h"

int sprout_cmd_daemon(int argc, char **argv)
{
        char name[] = "sprout daemon"; /* for its usage and error messages */
        argv[0] = name;
        return sproutd_main(argc, argv);
}
