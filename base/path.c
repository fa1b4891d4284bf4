/* Path components and the directory-fd walker; see path.h. */
#include "config.h"

#include "base/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int path_component_valid(const char *name, size_t len)
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

int path_relative_valid(const char *rel)
{
	for (;;) {
		size_t len = strcspn(rel, "/");
		if (!path_component_valid(rel, len))
			return 0;
		if (rel[len] == '\0')
			return 1;
		rel += len + 1;
	}
}

int path_absolute_valid(const char *p)
{
	return p && p[0] == '/' && (p[1] == '\0' || path_relative_valid(p + 1));
}

int path_walk(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
{
	char name[NAME_MAX + 1];
	const char *p = rel;
	unsigned depth = 0;
	int fd, ret;

	*dirfd = -1;
	if (!path_relative_valid(rel))
		return -EINVAL;
	fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		int next;

		if (++depth > PATH_DEPTH_MAX) {
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
	}
	*dirfd = fd;
	return 0;
fail:
	close(fd);
	return ret;
}
