/* Positional reads, writes and fsyncs through io_uring, resumed after short transfers, so callers
 * can keep many in flight and treat each as all-or-error. */
#include <errno.h>

#include "snapshot_internal.h"

/* A single read or write moves at most about 2 GiB (MAX_RW_COUNT); ask for less and resume. */
#define IO_MAX_PIECE (1u << 30)

int snap_io_submit(struct io_uring *ring, struct snap_io *io)
{
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        if (!sqe) {
                /* The rings are sized for the requests their owners keep in flight, so a full
                 * submission queue only means earlier entries are not submitted yet. */
                int rc = io_uring_submit(ring);
                if (rc < 0)
                        return rc;
                sqe = io_uring_get_sqe(ring);
                if (!sqe)
                        return -EBUSY;
        }
        uint64_t left = io->len - io->done;
        unsigned piece = left > IO_MAX_PIECE ? IO_MAX_PIECE : (unsigned)left;
        switch (io->op) {
        case SNAP_IO_READ:
                io_uring_prep_read(sqe, io->fd, io->buf + io->done, piece, io->off + io->done);
                break;
        case SNAP_IO_WRITE:
                io_uring_prep_write(sqe, io->fd, io->buf + io->done, piece, io->off + io->done);
                break;
        case SNAP_IO_FSYNC:
                io_uring_prep_fsync(sqe, io->fd, 0);
                break;
        }
        io_uring_sqe_set_data(sqe, io);
        int rc = io_uring_submit(ring);
        return rc < 0 ? rc : 0;
}

int snap_io_reap(struct io_uring *ring, struct io_uring_cqe *cqe, struct snap_io **out)
{
        struct snap_io *io = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        *out = io;
        if (res == -EINTR || res == -EAGAIN)
                return SNAP_IO_PARTIAL;
        if (res < 0)
                return res;
        if (io->op == SNAP_IO_FSYNC)
                return SNAP_IO_DONE;
        if (res == 0 && io->done < io->len)
                return io->op == SNAP_IO_READ ? -ENODATA : -EIO;
        io->done += (unsigned)res;
        return io->done >= io->len ? SNAP_IO_DONE : SNAP_IO_PARTIAL;
}

int snap_io_run(struct io_uring *ring, struct snap_io *io)
{
        io->done = 0;
        if (io->len == 0 && io->op != SNAP_IO_FSYNC)
                return 0;
        for (;;) {
                int rc = snap_io_submit(ring, io);
                if (rc < 0)
                        return rc;
                struct io_uring_cqe *cqe;
                do
                        rc = io_uring_wait_cqe(ring, &cqe);
                while (rc == -EINTR);
                if (rc < 0)
                        return rc;
                struct snap_io *got;
                rc = snap_io_reap(ring, cqe, &got);
                if (rc != SNAP_IO_PARTIAL)
                        return rc < 0 ? rc : 0;
        }
}
