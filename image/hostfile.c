/* Single host files into the initramfs tree, and the check that a binary meant to run in the guest
 * (which has no dynamic loader) is statically linked. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fill.h"

int fill_file(struct tree *t, const char *guest_path, const char *host, enum tnode_prio prio,
              struct sprout_err *err)
{
        struct stat st;

        if (stat(host, &st) < 0)
                return sprout_err_errno(err, -errno, "%s", host);
        if (!S_ISREG(st.st_mode))
                return sprout_err_set(err, -EINVAL, "%s: not a regular file", host);
        struct tnode_spec s = {.path = guest_path,
                               .type = TN_FILE,
                               .prio = prio,
                               .mode = st.st_mode & 0777,
                               .mtime = st.st_mtime,
                               .src = host,
                               .size = (uint64_t)st.st_size};
        return tree_add(t, &s, err);
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
        ssize_t r = pread(fd, buf, len, off);
        return r == (ssize_t)len ? 0 : -1;
}

int fill_check_static_elf(const char *path, const char *what, struct sprout_err *err)
{
        Elf64_Ehdr eh;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s %s", what, path);
        int rc = 0;
        if (pread_full(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
            (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
                rc = sprout_err_set(err, -ENOEXEC, "%s %s: not an x86-64 ELF executable", what,
                                    path);
        /* Bound the header table by what the format allows, not by what the file claims. */
        if (rc == 0 && (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256))
                rc = sprout_err_set(err, -ENOEXEC, "%s %s: bad ELF program header table", what,
                                    path);
        for (unsigned i = 0; rc == 0 && i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread_full(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) < 0)
                        rc = sprout_err_set(err, -ENOEXEC, "%s %s: truncated ELF program headers",
                                            what, path);
                else if (ph.p_type == PT_INTERP)
                        rc = sprout_err_set(err, -ENOEXEC,
                                            "%s %s: dynamically linked; the guest needs a static "
                                            "binary",
                                            what, path);
        }
        close(fd);
        return rc;
}
