/* The two ways to ring the sprout doorbell from guest user mode: a port write or an MMIO store.
 * Internal to the guest library. */
#ifndef SPROUT_GUEST_DOORBELL_H
#define SPROUT_GUEST_DOORBELL_H

#include <stdint.h>

#include "sprout/abi.h"

#if !defined(__x86_64__)
#error "the sprout doorbell is x86-64 port I/O or MMIO"
#endif

/* The memory clobber orders every mailbox store before the exit and every load after the resume. */
static inline void db_ring_port(uint32_t value)
{
        __asm__ volatile("outl %0, %w1"
                         :
                         : "a"(value), "Nd"((uint16_t)SPROUT_DOORBELL_PORT)
                         : "memory");
}

/* One plain 32-bit mov: the simplest instruction for the host to decode on the exit. */
static inline void db_ring_mmio(volatile uint32_t *reg, uint32_t value)
{
        __asm__ volatile("movl %1, %0" : "=m"(*reg) : "r"(value) : "memory");
}

/* Ask the kernel to let this process use the doorbell port: 0 or a negative errno. */
int db_port_access(void);

#endif
