/* sprout kernel smoke test: user-mode port I/O after ioperm() (or iopl(3)
 * with "iopl" as 2nd argument), the path of sprout's doorbell.  Writes the
 * code to QEMU's isa-debug-exit port 0xf4; QEMU exits with (code << 1) | 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
        int code = argc > 1 ? atoi(argv[1]) : 0;

        if (argc > 2 && !strcmp(argv[2], "iopl")) {
                if (iopl(3)) {
                        perror("iopl");
                        return 1;
                }
        } else if (ioperm(0xf4, 4, 1)) {
                perror("ioperm");
                return 1;
        }
        printf("qexit: writing %d to port 0xf4\n", code);
        fflush(stdout);
        outb(code, 0xf4);
        return 0;
}
