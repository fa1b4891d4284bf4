/* Fsyncing a set of files together: a job's blobs, the cas/ directories they were renamed
 * into. One fsync after the other costs a journal commit each on ext4 (about 3-5 ms here, so a
 * job of five blobs paid ten); fsyncs that are in flight at the same time are joined by the
 * file system into one commit. With liburing (configure found it) the set is submitted as one
 * batch of IORING_OP_FSYNC, which the kernel runs concurrently; without it, or when the kernel
 * refuses io_uring (kernel.io_uring_disabled, a seccomp filter), they run one after the other.
 * Either way every fd has had an fsync that returned before this returns 0: the durability is
 * fsync(2)'s, per file.
 */
#ifndef CACHEPOT_FS_FSYNC_SET_H
#define CACHEPOT_FS_FSYNC_SET_H

#include <stddef.h>

#define FSYNC_SET_PLAIN 1u   /* never io_uring: one fsync after the other (benchmarks, tests) */

/* Fsync the N fds of FDS as above (FLAGS: 0 or FSYNC_SET_PLAIN). Returns 0 when every fsync
 * succeeded, else the -errno of the first that failed (in FDS order); every fd is fsync'd
 * (attempted) even after a failure. */
int fsync_set(const int *fds, size_t n, unsigned flags) __attribute__((warn_unused_result));

/* 1 when this build submits through io_uring (it may still fall back at run time), else 0. */
int fsync_set_uses_io_uring(void);

#endif
