/* Directory-fd walks; see tree.h. */
#include "config.h"

#include "daemon/tree.h"

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

int tree_component_valid(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == '\0')
			return 0;
	return 1;
}

int tree_walk(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
{
	char name[NAME_MAX + 1];
	const char *p = rel;
	unsigned depth = 0;
	int fd, ret;

	*dirfd = -1;
	if (*rel == '/' || *rel == '\0')
		return -EINVAL;
	fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		int next;

		if (!tree_component_valid(p, len) || ++depth > TREE_DEPTH_MAX) {
			ret = -EINVAL;
			goto fail;
		}
		if (!slash && leaf) {
			*leaf = p;
			break;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST) {
				ret = -errno;
				goto fail;
			}
			next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			ret = -errno;
			goto fail;
		}
		close(fd);
		fd = next;
		if (!slash)
			break;
		p = slash + 1;
		if (*p == '\0') {     /* "a/b/": a directory named with a trailing slash */
			if (leaf) {
				ret = -EINVAL;
				goto fail;
			}
			break;
		}
	}
	*dirfd = fd;
	return 0;
fail:
	close(fd);
	return ret;
}

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
