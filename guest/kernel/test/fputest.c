/* sprout kernel smoke test: two processes keep their x87 and SSE state across
 * context switches (FXSAVE path, task exit through fpu__drop()). */
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int work(double seed)
{
        volatile double d = seed;
        volatile long double x = seed;
        int i, bad = 0;

        for (i = 0; i < 200; i++) {
                double e = d * 3.0;
                long double y = x * 3.0L;

                sched_yield();
                if (e != seed * 3.0 || y != (long double)seed * 3.0L)
                        bad++;
        }
        return bad;
}

int main(void)
{
        int st = 0, bad;
        pid_t p = fork();

        if (p == 0)
                _exit(work(2.5) ? 1 : 0);
        bad = work(7.25);
        waitpid(p, &st, 0);
        bad |= !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        printf("fputest: %s\n", bad ? "FAIL" : "OK");
        return bad;
}
