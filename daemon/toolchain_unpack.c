/* Unpacking toolchain archives; see toolchain_unpack.h. */
#include "config.h"

#include "daemon/toolchain_unpack.h"

#include "base/error.h"
#include "base/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <event2/buffer.h>

#include "fs/tree.h"
#include "hash/toolchain.h"

#define TMP_PREFIX ".tmp-"
#define RETIRED_PREFIX ".tmp-unused-"   /* a TMP_PREFIX name: swept at start too */
#define UNUSED_MARK_MAX 32

/* libarchive reads straight from the request's evbuffer, a chain segment at a time. */
struct evbuffer_source {
	struct evbuffer *buf;
	size_t last;     /* bytes handed out by the previous call, drained on the next */
};

static la_ssize_t source_read(struct archive *a, void *arg, const void **out)
{
	struct evbuffer_source *src = arg;
	struct evbuffer_iovec v;
	(void)a;

	if (src->last) {
		evbuffer_drain(src->buf, src->last);
		src->last = 0;
	}
	if (evbuffer_peek(src->buf, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	*out = v.iov_base;
	src->last = v.iov_len;
	return (la_ssize_t)v.iov_len;
}

/* Write the data of the current entry into FD; at most MAX bytes. */
static int write_entry_data(struct archive *a, int fd, uint64_t max, uint64_t *written,
			    char *err, size_t errlen)
{
	const void *buf;
	size_t size;
	la_int64_t offset;
	uint64_t end = 0;

	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return error_format(err, errlen, -EINVAL, "archive: %s",
					    archive_error_string(a));
		if (offset < 0 || __builtin_add_overflow((uint64_t)offset, size, &end) || end > max)
			return error_format(err, errlen, -EFBIG,
					    "archive: an entry is larger than it declared");
		for (size_t done = 0; done < size;) {
			ssize_t w = pwrite(fd, (const char *)buf + done, size - done, offset + (off_t)done);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return error_format(err, errlen, -errno, "writing: %s",
						    strerror(errno));
			}
			done += (size_t)w;
		}
		if (end > *written)
			*written = end;
	}
	if (ftruncate(fd, (off_t)*written) < 0)
		return error_format(err, errlen, -errno, "writing: %s", strerror(errno));
	return 0;
}

/* Turn an archive path (not absolute: the caller refused those) into a relative one: a leading
 * "./" is dropped, as is a trailing '/' of a directory. "" for the root itself; NULL when out of
 * memory. */
static char *relative_name(const char *path)
{
	size_t len;
	char *s;

	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (strcmp(path, ".") == 0)
		path = "";
	s = strdup(path);
	if (!s)
		return NULL;
	len = strlen(s);
	while (len > 0 && s[len - 1] == '/')
		s[--len] = '\0';
	return s;
}

static int extract(struct archive *a, int tmpfd, char *err, size_t errlen)
{
	struct archive_entry *entry;
	uint64_t files = 0, bytes = 0;

	for (;;) {
		const char *path;
		char *rel = NULL;
		const char *leaf;
		mode_t type;
		int r, dirfd = -1, fd, ret = 0;

		r = archive_read_next_header(a, &entry);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return error_format(err, errlen, -EINVAL, "archive: %s",
					    archive_error_string(a));
		path = archive_entry_pathname(entry);
		if (!path || path[0] == '/')
			return error_format(err, errlen, -EINVAL,
					    "archive entry %s: absolute names are refused",
					    path ? path : "(unnamed)");
		rel = relative_name(path);
		if (!rel)
			return error_format(err, errlen, -ENOMEM, "out of memory");
		type = archive_entry_filetype(entry);
		if (archive_entry_hardlink(entry) || archive_entry_symlink(entry)
		    || (type != AE_IFDIR && type != AE_IFREG)) {
			ret = error_format(err, errlen, -EINVAL,
					   "archive entry %s: only regular files and directories are accepted "
					   "(no symlinks, hard links, devices, FIFOs or sockets)", path);
			goto next;
		}
		if (rel[0] == '\0') {
			if (type != AE_IFDIR)
				ret = error_format(err, errlen, -EINVAL,
						   "archive entry %s: bad name", path);
			goto next;
		}
		if (type == AE_IFDIR) {
			ret = path_walk(tmpfd, rel, 1, &dirfd, NULL);
			if (ret < 0)
				ret = error_format(err, errlen, ret, "archive entry %s: %s", path,
						   ret == -EINVAL
						   ? "bad name (\"..\", \".\" or empty component)"
						   : strerror(-ret));
			goto next;
		}
		if (++files > TOOLCHAIN_FILES_MAX) {
			ret = error_format(err, errlen, -EFBIG, "archive: more than %d files",
					   TOOLCHAIN_FILES_MAX);
			goto next;
		}
		if (archive_entry_size_is_set(entry)
		    && (archive_entry_size(entry) < 0
			|| (uint64_t)archive_entry_size(entry) > TOOLCHAIN_BYTES_MAX - bytes)) {
			ret = error_format(err, errlen, -EFBIG, "archive: more than %llu bytes",
					   (unsigned long long)TOOLCHAIN_BYTES_MAX);
			goto next;
		}
		ret = path_walk(tmpfd, rel, 1, &dirfd, &leaf);
		if (ret < 0) {
			ret = error_format(err, errlen, ret, "archive entry %s: %s", path,
					   ret == -EINVAL ? "bad name (\"..\", \".\" or empty component)"
							  : strerror(-ret));
			goto next;
		}
		{
			mode_t mode = (archive_entry_perm(entry) & 0111) ? 0755 : 0644;
			uint64_t written = 0;

			fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
			if (fd < 0) {
				ret = error_format(err, errlen, -errno, "archive entry %s: %s", path,
						   errno == EEXIST ? "named twice" : strerror(errno));
				goto next;
			}
			ret = write_entry_data(a, fd, TOOLCHAIN_BYTES_MAX - bytes, &written, err, errlen);
			if (ret == 0 && fchmod(fd, mode) < 0)
				ret = error_format(err, errlen, -errno, "chmod: %s",
						   strerror(errno));
			close(fd);
			bytes += written;
		}
next:
		if (dirfd >= 0)
			close(dirfd);
		free(rel);
		if (ret < 0)
			return ret;
	}
}

/* The archive from BODY, or from ARCHIVE_FD when BODY is NULL. */
static int unpack(int toolchains_fd, struct evbuffer *body, int archive_fd, const char *id,
		  uint64_t seq, char *err, size_t errlen)
{
	struct evbuffer_source src = { body, 0 };
	struct archive *a = NULL;
	char tmp[64], actual[DIGEST_HEX_SIZE];
	int tmpfd = -1, ret;
	struct stat st;

	if (!digest_hex_valid(id))
		return error_format(err, errlen, -EINVAL,
				    "a toolchain id is 64 lowercase hex digits");
	if (fstatat(toolchains_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%llu-%d", (unsigned long long)seq, (int)getpid());
	if (mkdirat(toolchains_fd, tmp, 0755) < 0)
		return error_format(err, errlen, -errno, "mkdir: %s", strerror(errno));
	tmpfd = openat(toolchains_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tmpfd < 0) {
		ret = error_format(err, errlen, -errno, "open: %s", strerror(errno));
		goto out;
	}
	a = archive_read_new();
	if (!a) {
		ret = error_format(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	/* Uncompressed tar only. A filter would be a decompression bomb's way in (the bounds below
	 * count what is written, but a gzip of zeros costs the worker its CPU for every byte), and
	 * libarchive runs external programs for some filters (lzop, grzip, lrzip, a "program"
	 * filter): no filter is registered, so a compressed stream is refused as not tar. The
	 * client writes pax, which this reads. */
	if (archive_read_support_format_tar(a) != ARCHIVE_OK) {
		ret = error_format(err, errlen, -ENOMEM, "archive: %s", archive_error_string(a));
		goto out;
	}
	if ((body ? archive_read_open(a, &src, NULL, source_read, NULL)
		  : archive_read_open_fd(a, archive_fd, 64 * 1024)) != ARCHIVE_OK) {
		ret = error_format(err, errlen, -EINVAL, "archive: %s", archive_error_string(a));
		goto out;
	}
	ret = extract(a, tmpfd, err, errlen);
	if (ret < 0)
		goto out;
	if (syncfs(tmpfd) < 0) {
		ret = error_format(err, errlen, -errno, "syncfs: %s", strerror(errno));
		goto out;
	}
	ret = toolchain_id_of_tree(tmpfd, actual);
	if (ret < 0) {
		ret = error_format(err, errlen, ret,
				   "the unpacked tree is not a toolchain tree (regular files only, and "
				   "no directory without one): %s", strerror(-ret));
		goto out;
	}
	if (strcmp(actual, id) != 0) {
		ret = error_format(err, errlen, -EBADMSG,
				   "toolchain id mismatch: the archive's tree is %s", actual);
		goto out;
	}
	/* Unused until a job names it (see the header). Without user xattrs the toolchain is
	 * kept for good, as before. */
	{
		char mark[UNUSED_MARK_MAX];
		int len = snprintf(mark, sizeof(mark), "%lld", (long long)time(NULL));
		if (fsetxattr(tmpfd, TOOLCHAIN_UNUSED_XATTR, mark, (size_t)len, 0) < 0)
			fprintf(stderr, "cachepotd: toolchain %s: cannot mark it unused (%s): it is kept "
				"even if no job uses it\n", id, strerror(errno));
	}
	if (renameat2(toolchains_fd, tmp, toolchains_fd, id, RENAME_NOREPLACE) < 0) {
		ret = errno == EEXIST ? 1 : error_format(err, errlen, -errno, "rename: %s",
							 strerror(errno));
		goto out;
	}
	ret = 0;
	fsync(toolchains_fd);
out:
	if (a)
		archive_read_free(a);
	if (tmpfd >= 0)
		close(tmpfd);
	if (ret != 0) {
		int r = tree_remove_at(toolchains_fd, tmp);
		if (r < 0 && r != -ENOENT)
			fprintf(stderr, "cachepotd: removing toolchains/%s: %s\n", tmp, strerror(-r));
	}
	return ret;
}

int toolchain_unpack(int toolchains_fd, struct evbuffer *body, const char *id, uint64_t seq,
		     char *err, size_t errlen)
{
	return unpack(toolchains_fd, body, -1, id, seq, err, errlen);
}

int toolchain_unpack_fd(int toolchains_fd, int archive_fd, const char *id, uint64_t seq,
			char *err, size_t errlen)
{
	return unpack(toolchains_fd, NULL, archive_fd, id, seq, err, errlen);
}

/* Call FN(dirfd, name) for every entry of TOOLCHAINS_FD whose name starts with PREFIX (NULL:
 * every toolchain id). */
static int foreach_entry(int toolchains_fd, const char *prefix,
			 void (*fn)(int dirfd, const char *name, void *arg), void *arg)
{
	int fd = openat(toolchains_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *dir;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	while ((e = readdir(dir)))
		if (prefix ? strncmp(e->d_name, prefix, strlen(prefix)) == 0
			   : digest_hex_valid(e->d_name))
			fn(dirfd(dir), e->d_name, arg);
	closedir(dir);
	return 0;
}

static void remove_entry(int dirfd, const char *name, void *arg)
{
	int r = tree_remove_at(dirfd, name);
	(void)arg;

	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "cachepotd: removing toolchains/%s: %s\n", name, strerror(-r));
}

void toolchain_sweep(int toolchains_fd)
{
	(void)foreach_entry(toolchains_fd, TMP_PREFIX, remove_entry, NULL);
}

void toolchain_remove_retired(int toolchains_fd)
{
	(void)foreach_entry(toolchains_fd, RETIRED_PREFIX, remove_entry, NULL);
}

int toolchain_mark_used(int toolchains_fd, const char *id)
{
	int fd = openat(toolchains_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fremovexattr(fd, TOOLCHAIN_UNUSED_XATTR) < 0 && errno != ENODATA && errno != ENOTSUP)
		ret = -errno;
	close(fd);
	return ret;
}

struct retire_walk {
	time_t now;
	unsigned max_age;
	int moved;
};

/* The upload time of toolchain NAME's unused mark: 0 and *T, or -errno (-ENODATA: used). */
static int unused_since(int dirfd, const char *name, time_t *t)
{
	char mark[UNUSED_MARK_MAX];
	long long v = 0;
	ssize_t len;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	len = fgetxattr(fd, TOOLCHAIN_UNUSED_XATTR, mark, sizeof(mark) - 1);
	close(fd);
	if (len < 0)
		return -errno;
	if (len == 0)
		return -EINVAL;
	for (ssize_t i = 0; i < len; i++) {
		if (mark[i] < '0' || mark[i] > '9' || v > (long long)(INT64_MAX / 10) - 1)
			return -EINVAL;
		v = v * 10 + (mark[i] - '0');
	}
	*t = (time_t)v;
	return 0;
}

static void retire_entry(int dirfd, const char *name, void *arg)
{
	struct retire_walk *w = arg;
	char aside[sizeof(RETIRED_PREFIX) + DIGEST_HEX_SIZE + 32];
	time_t since = 0;   /* set by unused_since when it returns 0; -O2 cannot tell */

	if (unused_since(dirfd, name, &since) < 0 || w->now < since
	    || (uint64_t)(w->now - since) < w->max_age)
		return;
	snprintf(aside, sizeof(aside), RETIRED_PREFIX "%s-%d", name, (int)getpid());
	if (renameat2(dirfd, name, dirfd, aside, RENAME_NOREPLACE) < 0) {
		fprintf(stderr, "cachepotd: moving aside unused toolchain %s: %s\n", name,
			strerror(errno));
		return;
	}
	fprintf(stderr, "cachepotd: toolchain %s removed: uploaded %lld s ago, no job named it\n",
		name, (long long)(w->now - since));
	w->moved++;
}

int toolchain_retire_unused(int toolchains_fd, time_t now, unsigned max_age)
{
	struct retire_walk w = { now, max_age, 0 };
	int ret = foreach_entry(toolchains_fd, NULL, retire_entry, &w);

	return ret < 0 ? ret : w.moved;
}
