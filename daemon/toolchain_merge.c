/* Merging a base toolchain and a link part; see toolchain_merge.h. */
#include "config.h"

#include "daemon/toolchain_merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "fs/tree.h"
#include "hash/digest.h"

void toolchain_merged_name(const char *base, const char *link, char name[TOOLCHAIN_MERGED_NAME_SIZE])
{
	snprintf(name, TOOLCHAIN_MERGED_NAME_SIZE, "link-%.64s-%.64s", base, link);
}

/* Do NAME beneath A and beneath B hold the same bytes? 1, 0, or -errno. */
static int same_content(int a, int b, const char *name)
{
	unsigned char da[DIGEST_SIZE], db[DIGEST_SIZE];
	uint64_t sa, sb;
	int ret = digest_file_at(a, name, da, &sa);

	if (ret == 0)
		ret = digest_file_at(b, name, db, &sb);
	if (ret < 0)
		return ret;
	return sa == sb && memcmp(da, db, DIGEST_SIZE) == 0;
}

/* Link every entry of the tree SRC into DST, recursively. DEPTH bounds the recursion. */
static int link_into(int src, int dst, int depth, char *err, size_t errlen)
{
	int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (depth > 64) {
		close(fd);
		return -ELOOP;
	}
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (ret == 0 && (errno = 0, e = readdir(d))) {
		struct stat st, dst_st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub_src, sub_dst;
			if (mkdirat(dst, e->d_name, 0755) < 0 && errno != EEXIST) {
				ret = -errno;
				break;
			}
			sub_src = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			sub_dst = openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub_src < 0 || sub_dst < 0) {
				ret = errno == ENOTDIR ? -EEXIST : -errno;
				if (ret == -EEXIST)
					error_format(err, errlen, ret, "%s is a directory in one tree only", e->d_name);
			} else {
				ret = link_into(sub_src, sub_dst, depth + 1, err, errlen);
			}
			if (sub_src >= 0)
				close(sub_src);
			if (sub_dst >= 0)
				close(sub_dst);
		} else if (S_ISREG(st.st_mode)) {
			if (linkat(dirfd(d), e->d_name, dst, e->d_name, 0) == 0)
				continue;
			ret = -errno;
			if (ret != -EEXIST)
				break;
			if (fstatat(dst, e->d_name, &dst_st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(dst_st.st_mode)
			    || (dst_st.st_mode & 0111) != (st.st_mode & 0111)) {
				error_format(err, errlen, ret, "%s differs between the trees", e->d_name);
				break;
			}
			ret = same_content(dirfd(d), dst, e->d_name);
			if (ret == 1)
				ret = 0;
			else if (ret == 0)
				ret = error_format(err, errlen, -EEXIST, "%s differs between the trees", e->d_name);
		} else {
			ret = -EINVAL; /* an unpacked tree holds only directories and regular files */
		}
	}
	if (ret == 0 && errno)
		ret = -errno;
	closedir(d);
	return ret;
}

int toolchain_merge(int toolchains_fd, const char *base, const char *link, uint64_t seq, char *err,
		    size_t errlen)
{
	char name[TOOLCHAIN_MERGED_NAME_SIZE], tmp[64];
	const char *ids[2] = { base, link };
	struct stat st;
	int tmpfd = -1, ret = 0;

	if (err && errlen)
		err[0] = '\0';
	toolchain_merged_name(base, link, name);
	if (fstatat(toolchains_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return 0;
	snprintf(tmp, sizeof(tmp), ".tmp-merge-%llu", (unsigned long long)seq);
	if (mkdirat(toolchains_fd, tmp, 0755) < 0)
		return error_format(err, errlen, -errno, "creating toolchains/%s: %s", tmp, strerror(errno));
	tmpfd = openat(toolchains_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tmpfd < 0)
		ret = -errno;
	for (int i = 0; ret == 0 && i < 2; i++) {
		int src = openat(toolchains_fd, ids[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (src < 0) {
			ret = error_format(err, errlen, -errno, "toolchain %.64s: %s", ids[i], strerror(errno));
			break;
		}
		ret = link_into(src, tmpfd, 0, err, errlen);
		close(src);
	}
	if (tmpfd >= 0)
		close(tmpfd);
	if (ret == 0 && renameat2(toolchains_fd, tmp, toolchains_fd, name, RENAME_NOREPLACE) < 0)
		ret = errno == EEXIST ? 1 : -errno;
	if (ret != 0) {
		int r = tree_remove_at(toolchains_fd, tmp);
		if (r < 0 && r != -ENOENT)
			fprintf(stderr, "cachepotd: removing toolchains/%s: %s\n", tmp, strerror(-r));
	}
	if (ret == 1)
		return 0;
	if (ret < 0 && err && errlen && !err[0])
		error_format(err, errlen, ret, "merging %.16s with link part %.16s: %s", base, link, strerror(-ret));
	return ret;
}
