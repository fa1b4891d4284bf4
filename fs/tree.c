/* Removing trees by directory fd; see tree.h. */
#include "config.h"

#include "fs/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_at(int dirfd, const char *name, unsigned depth);

/* Remove everything inside the directory FD (which this closes). */
static int remove_contents(int fd, unsigned depth)
{
	DIR *dir;
	struct dirent *e;
	int ret = 0;

	if (depth > 256) {
		close(fd);
		return -ELOOP;
	}
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((errno = 0, e = readdir(dir))) {
		int r;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = remove_at(dirfd(dir), e->d_name, depth);
		if (r < 0 && r != -ENOENT && ret == 0)
			ret = r;
	}
	if (errno && ret == 0)
		ret = -errno;
	closedir(dir);
	return ret;
}

static int remove_at(int dirfd, const char *name, unsigned depth)
{
	struct stat st;
	int fd, ret;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	{
		/* A path names a mount's root, so NAME's st_dev differs from its parent's exactly
		 * when something is mounted on it. */
		struct stat parent;
		if (fstat(dirfd, &parent) == 0 && parent.st_dev != st.st_dev) {
			/* A mount on NAME: the path lies behind our own fd, not outside input. */
			char full[PATH_MAX];
			close(fd);
			if (depth > 256)
				return -ELOOP;
			if (snprintf(full, sizeof(full), "/proc/self/fd/%d/%s", dirfd, name)
			    >= (int)sizeof(full))
				return -ENAMETOOLONG;
			if (umount2(full, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
				return -errno;
			return remove_at(dirfd, name, depth + 1);
		}
	}
	ret = remove_contents(fd, depth + 1);
	if (ret < 0)
		return ret;
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int tree_remove_at(int dirfd, const char *name)
{
	return remove_at(dirfd, name, 0);
}
