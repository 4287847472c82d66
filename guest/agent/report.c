/* How sprout-agent ends the guest: PANIC or POWEROFF to the host through the sprout device, with a
 * reboot(2) fallback so a VMM that ignores the doorbell still sees the guest stop. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "agent.h"

/* Opened only now: a healthy guest never needs the agent's own mapping of the mailbox. */
static void open_device(struct agent *a)
{
        if (a->dev_open)
                return;
        if (sprout_guest_open(&a->g) == 0)
                a->dev_open = 1;
        else
                fprintf(stderr, "sprout-agent: sprout device: %s\n", a->g.err.msg);
}

/* Stop every other process and flush, so nothing is half-written when the machine goes. */
static void quiesce(void)
{
        kill(-1, SIGKILL);
        sync();
}

__attribute__((noreturn)) static void power(int how)
{
        reboot(how);
        /* PID 1 must not exit (the kernel would panic); wait to be torn down. */
        for (;;)
                pause();
}

void agent_fail(struct agent *a, unsigned code, const char *fmt, ...)
{
        char msg[SPROUT_MB_LOG_SIZE];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "sprout-agent: %s\n", msg);
        open_device(a);
        sprout_guest_panic(&a->g, code, msg); /* falls back to the bare port when not open */
        quiesce();
        power(RB_POWER_OFF);
}

void agent_poweroff(struct agent *a)
{
        quiesce();
        open_device(a);
        if (a->dev_open)
                sprout_guest_ring(&a->g, SPROUT_CMD_POWEROFF, 0);
        else
                (void)sprout_guest_ring_port(SPROUT_CMD_POWEROFF, 0);
        power(RB_POWER_OFF);
}

void agent_reboot(void)
{
        quiesce();
        power(RB_AUTOBOOT);
}
