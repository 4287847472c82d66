/* The minimum a kernel entered in 64-bit mode needs: a flat GDT and identity-mapped page tables
 * covering the first 4 GiB (the kernel replaces both early in startup_64). */
#include <string.h>

#include "boot_layout.h"
#include "vmm_internal.h"

#define PTE_PRESENT 0x1ULL
#define PTE_RW      0x2ULL
#define PTE_PS      0x80ULL

void boot_write_tables(struct sprout_vm *vm)
{
        /* Null, null, 64-bit code (0x10), flat data (0x18), then a 16-byte busy TSS (0x20): VMX
         * requires a usable TR even though Linux never uses this one. */
        static const uint64_t gdt[] = {
            0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00008b0000000067ULL, 0,
        };
        memcpy(guest_ptr(vm, BOOT_GDT_ADDR, sizeof(gdt)), gdt, sizeof(gdt));
        memset(guest_ptr(vm, BOOT_IDT_ADDR, 8), 0, 8);

        uint64_t *pml4 = guest_ptr(vm, BOOT_PML4_ADDR, 4096);
        uint64_t *pdpt = guest_ptr(vm, BOOT_PDPT_ADDR, 4096);
        uint64_t *pd = guest_ptr(vm, BOOT_PD_ADDR, 4 * 4096);
        memset(pml4, 0, 4096);
        memset(pdpt, 0, 4096);
        pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_RW;
        for (uint64_t i = 0; i < 4; i++)
                pdpt[i] = (BOOT_PD_ADDR + i * 4096) | PTE_PRESENT | PTE_RW;
        for (uint64_t i = 0; i < 4 * 512; i++)
                pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
}
