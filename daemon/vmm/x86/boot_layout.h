/* Where the x86 boot path puts things in low guest memory; the e820 map reserves what must survive.
 */
#ifndef SPROUT_BOOT_LAYOUT_H
#define SPROUT_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR       0x500ULL
#define BOOT_IDT_ADDR       0x520ULL
#define BOOT_ZERO_PAGE_ADDR 0x7000ULL
#define BOOT_PML4_ADDR      0x9000ULL
#define BOOT_PDPT_ADDR      0xa000ULL
#define BOOT_PD_ADDR        0xb000ULL /* four pages: identity map of the first 4 GiB in 2 MiB pages */
#define BOOT_CMDLINE_ADDR   0x20000ULL
#define BOOT_CMDLINE_MAX    4096ULL
#define BOOT_MPTABLE_ADDR                                                                          \
        0x9fc00ULL /* last KiB of base memory, where Linux looks for an MP table */
#define BOOT_EBDA_END 0xa0000ULL
#define BOOT_HIGH_MEM 0x100000ULL /* 1 MiB: the kernel and initrd live above this */

#define BOOT_GDT_CODE_SEL 0x10
#define BOOT_GDT_DATA_SEL 0x18
#define BOOT_GDT_TSS_SEL  0x20

#define IOAPIC_ADDR 0xfec00000ULL
#define LAPIC_ADDR  0xfee00000ULL

#endif
