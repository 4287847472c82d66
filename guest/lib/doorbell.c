/* Doorbell access and ringing for the guest library: port permission, and the ring that works
 * whether or not the mailbox is mapped. */
#include <errno.h>
#include <sys/io.h>

#include "sprout/guest.h"
#include "doorbell.h"

int db_port_access(void)
{
        /* ioperm opens just our four ports; iopl(3) is the fallback for kernels built without the
         * per-port bitmap path, and needs the same capability. */
        if (ioperm(SPROUT_DOORBELL_PORT, 4, 1) == 0)
                return 0;
        int first = errno;
        if (iopl(3) == 0)
                return 0;
        return -first;
}

void sprout_guest_ring(struct sprout_guest *g, uint32_t cmd, uint32_t arg)
{
        uint32_t v = SPROUT_DB(cmd, arg);

        if (g->mmio)
                db_ring_mmio(g->mmio, v);
        else
                db_ring_port(v);
}

int sprout_guest_ring_port(uint32_t cmd, uint32_t arg)
{
        int rc = db_port_access();
        if (rc < 0)
                return rc;
        db_ring_port(SPROUT_DB(cmd, arg));
        return 0;
}
