/* The initramfs as cpio newc through libarchive, the format the kernel unpacks. Uncompressed: under
 * PVM the guest kernel's decompressor would run emulated, far slower than reading more bytes. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpio.h"

#define COPY_CHUNK (256 * 1024)

static int copy_file(struct archive *a, const struct tnode *n, char *buf, const char *name,
                     struct sprout_err *err)
{
        int fd = open(n->src, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s", n->src);
        uint64_t left = n->size;
        int rc = 0;
        while (rc == 0 && left > 0) {
                size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
                ssize_t r = read(fd, buf, want);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        rc = sprout_err_errno(err, -errno, "%s: read", n->src);
                else if (r == 0)
                        rc = sprout_err_set(err, -EIO, "%s: shrank while the image was being built",
                                            n->src);
                else if (archive_write_data(a, buf, (size_t)r) != r)
                        rc = sprout_err_set(err, -EIO, "%s: %s", name, archive_error_string(a));
                else
                        left -= (uint64_t)r;
        }
        /* The header already promised n->size bytes: a file that grew would be cut silently. */
        if (rc == 0 && read(fd, buf, 1) != 0)
                rc = sprout_err_set(err, -EIO, "%s: grew while the image was being built", n->src);
        close(fd);
        return rc;
}

static void set_type(struct archive_entry *e, const struct tnode *n)
{
        static const unsigned types[] = {
            [TN_DIR] = AE_IFDIR,     [TN_FILE] = AE_IFREG, [TN_DATA] = AE_IFREG,
            [TN_SYMLINK] = AE_IFLNK, [TN_CHR] = AE_IFCHR,  [TN_BLK] = AE_IFBLK,
            [TN_FIFO] = AE_IFIFO,
        };
        archive_entry_set_filetype(e, types[n->type]);
        archive_entry_set_nlink(e, n->type == TN_DIR ? 2 : 1);
        /* Always set: the newc writer refuses an entry without a size, directories included. */
        archive_entry_set_size(e, (la_int64_t)n->size);
        if (n->type == TN_SYMLINK)
                archive_entry_set_symlink(e, n->data);
        if (n->type == TN_CHR || n->type == TN_BLK) {
                archive_entry_set_rdevmajor(e, n->rmajor);
                archive_entry_set_rdevminor(e, n->rminor);
        }
}

static int write_node(struct archive *a, struct archive_entry *e, const struct tnode *n, size_t ino,
                      char *buf, const char *name, struct sprout_err *err)
{
        archive_entry_clear(e);
        archive_entry_set_pathname(e, n->path);
        archive_entry_set_perm(e, n->type == TN_SYMLINK ? 0777 : n->mode);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, n->mtime, 0);
        /* Distinct inode numbers: the kernel treats equal ones with nlink > 1 as hard links. */
        archive_entry_set_ino64(e, (la_int64_t)ino);
        set_type(e, n);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                return sprout_err_set(err, -EIO, "%s: /%s: %s", name, n->path,
                                      archive_error_string(a));
        if (n->type == TN_FILE)
                return copy_file(a, n, buf, name, err);
        if (n->type == TN_DATA && n->size > 0 &&
            archive_write_data(a, n->data, n->size) != (la_ssize_t)n->size)
                return sprout_err_set(err, -EIO, "%s: /%s: %s", name, n->path,
                                      archive_error_string(a));
        return 0;
}

int cpio_write(const struct tree *t, int fd, const char *name, struct sprout_err *err)
{
        struct archive *a = archive_write_new();
        struct archive_entry *e = archive_entry_new();
        char *buf = malloc(COPY_CHUNK);
        int rc = 0;

        if (!a || !e || !buf) {
                rc = sprout_err_set(err, -ENOMEM, "out of memory");
                goto out;
        }
        /* No padding to a 10 KiB block: the kernel wants no more than the archive. */
        if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open_fd(a, fd) != ARCHIVE_OK) {
                rc = sprout_err_set(err, -EIO, "%s: %s", name, archive_error_string(a));
                goto out;
        }
        for (size_t i = 0; rc == 0 && i < t->n; i++)
                rc = write_node(a, e, t->nodes[i], i + 1, buf, name, err);
        if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
                rc = sprout_err_set(err, -EIO, "%s: %s", name, archive_error_string(a));
out:
        free(buf);
        archive_entry_free(e);
        if (a)
                archive_write_free(a);
        return rc;
}
