/* Loads an uncompressed x86-64 vmlinux: the PT_LOAD segments go to their physical addresses, and
 * the entry point is startup_64, entered directly in 64-bit mode (no real-mode or 32-bit stage). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/fileio.h"
#include "boot_layout.h"
#include "vmm_internal.h"

#define ELF_MAX_PHDRS 64

int boot_load_elf(struct sprout_vm *vm, const char *path, int given_fd, uint64_t *entry,
                  uint64_t *kernel_end, struct sprout_err *err)
{
        Elf64_Ehdr eh;
        Elf64_Phdr ph[ELF_MAX_PHDRS];
        struct stat st;
        uint64_t end = 0;
        bool entry_found = false;
        int r;

        /* An fd the caller opened (with a client's rights) is read as it is, never reopened. */
        int fd = given_fd >= 0 ? fcntl(given_fd, F_DUPFD_CLOEXEC, 0)
                               : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "kernel %s", path);
        if (fstat(fd, &st) < 0) {
                r = sprout_err_errno(err, -errno, "kernel %s", path);
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = sprout_err_set(err, -EINVAL, "kernel %s is not a regular file", path);
                goto out;
        }
        r = sprout_pread_exact(fd, &eh, sizeof(eh), 0);
        if (r < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
                r = sprout_err_set(
                    err, -ENOEXEC,
                    "kernel %s is not an ELF file: sprout boots an uncompressed vmlinux "
                    "(not a bzImage)",
                    path);
                goto out;
        }
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
            eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
                r = sprout_err_set(err, -ENOEXEC, "kernel %s is not an x86-64 executable vmlinux",
                                   path);
                goto out;
        }
        if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHDRS ||
            eh.e_phoff > (uint64_t)st.st_size ||
            (uint64_t)st.st_size - eh.e_phoff < (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)) {
                r = sprout_err_set(err, -ENOEXEC, "kernel %s has a malformed program header table",
                                   path);
                goto out;
        }
        r = sprout_pread_exact(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff);
        if (r < 0) {
                sprout_err_errno(err, r, "kernel %s: reading program headers", path);
                goto out;
        }
        *entry = eh.e_entry;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                const Elf64_Phdr *p = &ph[i];
                if (p->p_type != PT_LOAD || p->p_memsz == 0)
                        continue;
                uint64_t seg_end;
                if (p->p_filesz > p->p_memsz || p->p_offset > (uint64_t)st.st_size ||
                    (uint64_t)st.st_size - p->p_offset < p->p_filesz ||
                    __builtin_add_overflow(p->p_paddr, p->p_memsz, &seg_end)) {
                        r = sprout_err_set(err, -ENOEXEC,
                                           "kernel %s: segment %u lies outside the file", path, i);
                        goto out;
                }
                if (p->p_paddr < BOOT_HIGH_MEM || seg_end > vm->ram_size) {
                        r = sprout_err_set(
                            err, -E2BIG,
                            "kernel %s: segment %u (0x%llx-0x%llx) does not fit in %llu MiB "
                            "of guest RAM: give the image more memory",
                            path, i, (unsigned long long)p->p_paddr, (unsigned long long)seg_end,
                            (unsigned long long)(vm->ram_size >> 20));
                        goto out;
                }
                void *dst = guest_ptr(vm, p->p_paddr, p->p_filesz);
                if (!dst) {
                        r = sprout_err_set(err, -EFAULT, "kernel %s: segment %u outside RAM", path,
                                           i);
                        goto out;
                }
                r = sprout_pread_exact(fd, dst, p->p_filesz, (off_t)p->p_offset);
                if (r < 0) {
                        sprout_err_errno(err, r, "kernel %s: reading segment %u", path, i);
                        goto out;
                }
                /* The tail (bss) is already zero: guest RAM is fresh anonymous memory. */
                if (seg_end > end)
                        end = seg_end;
                /* vmlinux names startup_64 by its physical address; accept a virtual one too. */
                if (eh.e_entry >= p->p_paddr && eh.e_entry < seg_end) {
                        entry_found = true;
                } else if (eh.e_entry >= p->p_vaddr && eh.e_entry - p->p_vaddr < p->p_memsz) {
                        *entry = p->p_paddr + (eh.e_entry - p->p_vaddr);
                        entry_found = true;
                }
        }
        if (end == 0 || !entry_found) {
                r = sprout_err_set(err, -ENOEXEC,
                                   "kernel %s: no loadable segment holds the entry point 0x%llx",
                                   path, (unsigned long long)eh.e_entry);
                goto out;
        }
        *kernel_end = end;
        r = 0;
out:
        close(fd);
        return r;
}
