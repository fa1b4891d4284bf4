/* read-bench: reading a set of files to hash them, plain read(2) against io_uring
 * (bench/publish-bench.sh runs it; figures in bench/README.md).
 *
 *   read-bench DIR [--files F] [--bytes B] [--rounds R]
 *
 * The bulk reads the daemon does are of this shape: materialise hashes every input blob of a
 * job before it links it into the job's tree, collect hashes every output as it copies it into
 * the store. F files of B bytes are written (and fsync'd) under DIR, then read and hashed, R
 * rounds alternating the two ways, warm (in the page cache) and cold (dropped from it first
 * with POSIX_FADV_DONTNEED):
 *   plain    open, digest_fd (read(2) in 64 KiB steps), close, one file after the other
 *   uring    open every file, one IORING_OP_READ of each whole file submitted at once (up to
 *            64 in flight), then the digests; built only with liburing
 * Prints the median milliseconds a set took per way and temperature.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "hash/digest.h"

#define MAX_FILES 4096
#define MAX_ROUNDS 64
#define IN_FLIGHT 64

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void drop_cache(int dirfd, unsigned files)
{
	for (unsigned i = 0; i < files; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%u", i);
		int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
}

static int read_plain(int dirfd, unsigned files, unsigned char (*sha)[32])
{
	for (unsigned i = 0; i < files; i++) {
		char name[32];
		uint64_t size;
		snprintf(name, sizeof(name), "f%u", i);
		int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		int ret = digest_fd(fd, sha[i], &size);
		close(fd);
		if (ret < 0)
			return ret;
	}
	return 0;
}

#ifdef HAVE_LIBURING
static int read_uring(int dirfd, unsigned files, size_t bytes, unsigned char *bufs,
                      unsigned char (*sha)[32])
{
	struct io_uring ring;
	int fds[IN_FLIGHT], ret = io_uring_queue_init(IN_FLIGHT, &ring, 0);
	if (ret < 0)
		return ret;
	for (unsigned at = 0; at < files && ret == 0; at += IN_FLIGHT) {
		unsigned k = files - at < IN_FLIGHT ? files - at : IN_FLIGHT;
		for (unsigned i = 0; i < k; i++) {
			char name[32];
			snprintf(name, sizeof(name), "f%u", at + i);
			fds[i] = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fds[i], bufs + (size_t)i * bytes, (unsigned)bytes, 0);
			io_uring_sqe_set_data64(sqe, i);
		}
		io_uring_submit(&ring);
		for (unsigned i = 0; i < k; i++) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&ring, &cqe) < 0) {
				ret = -EIO;
				break;
			}
			if (cqe->res != (int)bytes)
				ret = cqe->res < 0 ? cqe->res : -EIO;
			io_uring_cqe_seen(&ring, cqe);
		}
		for (unsigned i = 0; i < k; i++) {
			if (ret == 0)
				ret = digest_buffer(bufs + (size_t)i * bytes, bytes, sha[at + i]);
			close(fds[i]);
		}
	}
	io_uring_queue_exit(&ring);
	return ret;
}
#endif

static int usage(void)
{
	fprintf(stderr, "usage: read-bench DIR [--files F] [--bytes B] [--rounds R]\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned files = 200, rounds = 7;
	size_t bytes = 16384;
	if (argc < 2)
		return usage();
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--files") == 0)
			files = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--bytes") == 0)
			bytes = (size_t)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			return usage();
	}
	if (argc % 2 != 0 || files < 1 || files > MAX_FILES || bytes < 1 || bytes > (64u << 20)
	    || rounds < 1 || rounds > MAX_ROUNDS)
		return usage();
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unsigned char *bufs = malloc((size_t)IN_FLIGHT * bytes);
	unsigned char (*a)[32] = calloc(files, 32), (*b)[32] = calloc(files, 32);
	if (dirfd < 0 || !bufs || !a || !b) {
		perror("read-bench");
		return 1;
	}
	for (unsigned i = 0; i < files; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%u", i);
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		memset(bufs, 'a' + (int)(i % 26), bytes);
		memcpy(bufs, &i, sizeof(i));
		if (fd < 0 || write(fd, bufs, bytes) != (ssize_t)bytes || fsync(fd) < 0) {
			perror("read-bench: writing the files");
			return 1;
		}
		close(fd);
	}
	printf("read-bench: %u files of %zu bytes, io_uring %s\n", files, bytes,
#ifdef HAVE_LIBURING
	       "built in"
#else
	       "not built"
#endif
	);
	/* [way][cold] */
	double t[2][2][MAX_ROUNDS];
	int status = 0;
	for (unsigned r = 0; r < rounds; r++)
		for (int cold = 0; cold < 2; cold++)
			for (int k = 0; k < 2; k++) {
				int way = (k + (int)r) % 2, ret;
				if (cold)
					drop_cache(dirfd, files);
				double t0 = now_ms();
#ifdef HAVE_LIBURING
				ret = way == 0 ? read_plain(dirfd, files, a)
				               : read_uring(dirfd, files, bytes, bufs, b);
#else
				ret = way == 0 ? read_plain(dirfd, files, a) : 0;
#endif
				t[way][cold][r] = now_ms() - t0;
				if (ret < 0) {
					fprintf(stderr, "read-bench: %s\n", strerror(-ret));
					status = 1;
				}
			}
#ifdef HAVE_LIBURING
	if (memcmp(a, b, (size_t)files * 32) != 0) {
		fprintf(stderr, "read-bench: the two ways hashed different bytes\n");
		status = 1;
	}
	int ways = 2;
#else
	int ways = 1;
#endif
	for (int cold = 0; cold < 2; cold++)
		for (int way = 0; way < ways; way++)
			printf("median %-5s %-5s %8.2f ms a set\n", way ? "uring" : "plain",
			       cold ? "cold" : "warm", median(t[way][cold], rounds));
	for (unsigned i = 0; i < files; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%u", i);
		unlinkat(dirfd, name, 0);
	}
	close(dirfd);
	rmdir(argv[1]);
	free(bufs);
	free(a);
	free(b);
	return status;
}
