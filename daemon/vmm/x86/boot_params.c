/* The Linux x86 boot protocol's zero page (Documentation/x86/boot.rst, 64-bit protocol): e820 map,
 * command line and initrd location, written for a kernel entered directly at startup_64. */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/fileio.h"
#include "boot_layout.h"
#include "vmm_internal.h"

#define E820_RAM      1
#define E820_RESERVED 2

int boot_load_initrd(struct sprout_vm *vm, const char *path, int given_fd, uint64_t kernel_end,
                     uint64_t *addr, uint64_t *size, struct sprout_err *err)
{
        struct stat st;
        int r;
        /* An fd the caller opened (with a client's rights) is read as it is, never reopened. */
        int fd = given_fd >= 0 ? fcntl(given_fd, F_DUPFD_CLOEXEC, 0)
                               : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

        if (fd < 0)
                return sprout_err_errno(err, -errno, "initrd %s", path);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = sprout_err_set(err, -EINVAL, "initrd %s is not a regular file", path);
                goto out;
        }
        uint64_t len = (uint64_t)st.st_size;
        uint64_t top = vm->ram_size;
        /* Page aligned at the top of RAM, clear of the kernel image. */
        uint64_t start = (top - len) & ~0xfffULL;
        if (len == 0 || len >= top || start < kernel_end) {
                r = sprout_err_set(
                    err, -E2BIG,
                    "initrd %s (%llu bytes) does not fit in %llu MiB of guest RAM beside "
                    "the kernel: give the image more memory",
                    path, (unsigned long long)len, (unsigned long long)(top >> 20));
                goto out;
        }
        void *dst = guest_ptr(vm, start, len);
        if (!dst) {
                r = sprout_err_set(err, -EFAULT, "initrd placement outside RAM");
                goto out;
        }
        r = sprout_pread_exact(fd, dst, len, 0);
        if (r < 0) {
                sprout_err_errno(err, r, "reading initrd %s", path);
                goto out;
        }
        *addr = start;
        *size = len;
        r = 0;
out:
        close(fd);
        return r;
}

static void e820_add(struct boot_params *bp, uint64_t addr, uint64_t size, uint32_t type)
{
        struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];
        e->addr = addr;
        e->size = size;
        e->type = type;
}

int boot_write_params(struct sprout_vm *vm, uint64_t initrd_addr, uint64_t initrd_size,
                      uint64_t *zero_page, struct sprout_err *err)
{
        struct boot_params *bp = guest_ptr(vm, BOOT_ZERO_PAGE_ADDR, sizeof(*bp));
        size_t cmdlen = strlen(vm->cmdline);
        char *cmd = guest_ptr(vm, BOOT_CMDLINE_ADDR, BOOT_CMDLINE_MAX);

        if (!bp || !cmd)
                return sprout_err_set(err, -EFAULT, "guest RAM too small for the zero page");
        if (cmdlen >= BOOT_CMDLINE_MAX)
                return sprout_err_set(err, -E2BIG,
                                      "kernel command line is %zu bytes, the limit is %llu", cmdlen,
                                      BOOT_CMDLINE_MAX - 1);
        memcpy(cmd, vm->cmdline, cmdlen + 1);
        memset(bp, 0, sizeof(*bp));

        bp->hdr.boot_flag = 0xaa55;
        bp->hdr.header = 0x53726448; /* "HdrS" */
        bp->hdr.version = 0x020f;
        bp->hdr.type_of_loader = 0xff; /* undefined loader */
        bp->hdr.loadflags = LOADED_HIGH;
        bp->hdr.kernel_alignment = 0x200000;
        bp->hdr.cmd_line_ptr = (uint32_t)BOOT_CMDLINE_ADDR;
        bp->hdr.cmdline_size = (uint32_t)BOOT_CMDLINE_MAX;
        if (initrd_size) {
                bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
                bp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
                bp->hdr.ramdisk_size = (uint32_t)initrd_size;
                bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
        }
        /* Base memory up to the MP table, the MP table and BIOS area reserved, then RAM from 1 MiB.
         */
        e820_add(bp, 0, BOOT_MPTABLE_ADDR, E820_RAM);
        e820_add(bp, BOOT_MPTABLE_ADDR, BOOT_EBDA_END - BOOT_MPTABLE_ADDR, E820_RESERVED);
        e820_add(bp, 0xf0000, 0x10000, E820_RESERVED);
        e820_add(bp, BOOT_HIGH_MEM, vm->ram_size - BOOT_HIGH_MEM, E820_RAM);
        *zero_page = BOOT_ZERO_PAGE_ADDR;
        return 0;
}
