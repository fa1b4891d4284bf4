/* Fsync a set of fds together (fs/fsync_set.h). */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "fs/fsync_set.h"

/* Fds submitted in one io_uring batch: a ring of this many entries is set up per call (a few
 * microseconds, against milliseconds of fsync), larger sets go in several batches. */
#define FSYNC_SET_BATCH 32u

static int fsync_plain(const int *fds, size_t n)
{
	int first = 0;
	for (size_t i = 0; i < n; i++)
		if (fsync(fds[i]) < 0 && first == 0)
			first = -errno;
	return first;
}

#ifdef HAVE_LIBURING
/* One batch of at most FSYNC_SET_BATCH fds on RING. 0, the first fd's -errno, or 1 when the
 * ring could not take the batch (the caller then fsyncs these fds plainly). */
static int fsync_batch(struct io_uring *ring, const int *fds, size_t n, int *errs)
{
	for (size_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe)
			return 1;
		io_uring_prep_fsync(sqe, fds[i], 0);
		io_uring_sqe_set_data64(sqe, i);
		errs[i] = 1;   /* not completed yet */
	}
	int submitted = io_uring_submit(ring);
	if (submitted < 0 || (size_t)submitted != n) {
		/* Nothing or part submitted: wait for what was, then redo the rest plainly. */
		for (int k = 0; k < (submitted > 0 ? submitted : 0); k++) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(ring, &cqe) == 0) {
				errs[io_uring_cqe_get_data64(cqe)] = cqe->res;
				io_uring_cqe_seen(ring, cqe);
			}
		}
		for (size_t i = 0; i < n; i++)
			if (errs[i] == 1)
				errs[i] = fsync(fds[i]) < 0 ? -errno : 0;
		return 0;
	}
	for (size_t k = 0; k < n; k++) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(ring, &cqe);
		if (ret < 0) {
			/* Cannot reap (EINTR is retried by liburing): fsync the rest ourselves. The
			 * ring is torn down by the caller, which waits for what is in flight. */
			for (size_t i = 0; i < n; i++)
				if (errs[i] == 1)
					errs[i] = fsync(fds[i]) < 0 ? -errno : 0;
			return 0;
		}
		errs[io_uring_cqe_get_data64(cqe)] = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
	return 0;
}
#endif

int fsync_set(const int *fds, size_t n, unsigned flags)
{
	if (n == 0)
		return 0;
#ifdef HAVE_LIBURING
	/* A single fd gains nothing from a ring. */
	if (!(flags & FSYNC_SET_PLAIN) && n > 1) {
		struct io_uring ring;
		unsigned entries = n < FSYNC_SET_BATCH ? (unsigned)n : FSYNC_SET_BATCH;
		if (io_uring_queue_init(entries, &ring, 0) == 0) {
			int first = 0, errs[FSYNC_SET_BATCH];
			for (size_t at = 0; at < n; at += entries) {
				size_t k = n - at < entries ? n - at : entries;
				if (fsync_batch(&ring, fds + at, k, errs) != 0)
					for (size_t i = 0; i < k; i++)
						errs[i] = fsync(fds[at + i]) < 0 ? -errno : 0;
				for (size_t i = 0; i < k; i++)
					if (errs[i] < 0 && first == 0)
						first = errs[i];
			}
			io_uring_queue_exit(&ring);
			return first;
		}
	}
#else
	(void)flags;
#endif
	return fsync_plain(fds, n);
}

int fsync_set_uses_io_uring(void)
{
#ifdef HAVE_LIBURING
	return 1;
#else
	return 0;
#endif
}
