/* libFuzzer target: the toolchain archive reader, toolchain_unpack (daemon/toolchain_unpack.h),
 * which unpacks the tar a client uploads to PUT /v1/toolchains/<id> (the writer's side is
 * hash/toolchain_archive.c). The input is that body.
 *
 * The reader writes to disk, so each input is unpacked into toolchains/ of a scratch directory
 * made once per process under $TMPDIR, else /dev/shm (a tmpfs: the reader's syncfs is cheap
 * there, some 1500 inputs a second against 90 on a disk), else /tmp. The id
 * asked for is that of the seed in fuzz/corpus/toolchain/, so mutations of the seed reach the
 * path that accepts a tree. What must hold for every input:
 *   - the answer is never 1 ("already present": the accepted tree is removed after every
 *     input), and a failure comes with its message;
 *   - nothing is left beside toolchains/ in the scratch directory (no entry escaped it), and
 *     toolchains/ holds nothing but the accepted tree (no temporary tree survives a failure);
 *   - an accepted tree is one toolchain_id_of_tree names with the id asked for.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon/toolchain_unpack.h"
#include "fs/tree.h"
#include "hash/toolchain.h"

/* The id of the seeds' tree (fuzz/corpus/toolchain/{pax,gnu,ustar}.tar: one tree in three tar
 * formats, one name longer than ustar's 100 bytes; fuzz/local.mk says how they were made). */
#define SEED_ID "a6be8714cced6f96a5577dc40b127dd49a1ea2d697df98f40fd1055235601b52"

static char scratch_path[4096];
static int scratch_fd = -1, toolchains_fd = -1;
static uint64_t seq;

/* At a clean exit the scratch directory is empty but for toolchains/: remove both. After a
 * crash (abort, no atexit) it stays for a post-mortem. */
static void scratch_remove(void)
{
	if (unlinkat(scratch_fd, "toolchains", AT_REMOVEDIR) == 0)
		rmdir(scratch_path);
}

static void scratch_open(void)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (!tmp || !*tmp)
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(scratch_path, sizeof(scratch_path), "%s/cachepot-fuzz-toolchain.XXXXXX", tmp);
	if (!mkdtemp(scratch_path))
		abort();
	scratch_fd = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (scratch_fd < 0 || mkdirat(scratch_fd, "toolchains", 0755) < 0)
		abort();
	toolchains_fd = openat(scratch_fd, "toolchains", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (toolchains_fd < 0)
		abort();
	atexit(scratch_remove);
	fprintf(stderr, "fuzz_toolchain: unpacking into %s/toolchains\n", scratch_path);
}

/* The names in DIRFD other than "." and "..": how many, and whether one is ONLY (NULL: none
 * may be there). */
static size_t entries_other_than(int dirfd, const char *only)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t others = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd)))
		abort();
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!only || strcmp(e->d_name, only) != 0)
			others++;
	}
	closedir(d);
	return others;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *body = evbuffer_new();
	char err[512] = "", id[DIGEST_HEX_SIZE];
	int ret;

	if (scratch_fd < 0)
		scratch_open();
	if (!body || evbuffer_add(body, data, size) < 0)
		abort();
	ret = toolchain_unpack(toolchains_fd, body, SEED_ID, ++seq, err, sizeof(err));
	evbuffer_free(body);

	if (ret == 1)
		abort();                        /* nothing was there before */
	if (ret < 0 && !err[0])
		abort();                        /* a failure says why */
	if (entries_other_than(scratch_fd, "toolchains") != 0)
		abort();                        /* an entry escaped toolchains/ */
	if (entries_other_than(toolchains_fd, ret == 0 ? SEED_ID : NULL) != 0)
		abort();                        /* a temporary tree survived */
	if (ret == 0) {
		int fd = openat(toolchains_fd, SEED_ID, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || toolchain_id_of_tree(fd, id) != 0 || strcmp(id, SEED_ID) != 0)
			abort();                /* accepted, yet not the tree asked for */
		close(fd);
		if (tree_remove_at(toolchains_fd, SEED_ID) != 0)
			abort();
	}
	return 0;
}
