/* sproutd: the clone API daemon. All of it is sproutd_main(), which `sprout daemon` runs too. */
#include "sprout/daemon.h"

int main(int argc, char **argv)
{
        return sproutd_main(argc, argv);
}
