/* The cache directory's checks; see cache_dir.h. */
#include "config.h"

#include "client/cache_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "hash/pathmap.h"

int cache_dir_prepare(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret;

	if (dir[0] != '/')
		return error_format(err, errlen, -EINVAL, "cache directory %s: not an absolute path", dir);
	ret = path_mkdir_parents(dir, 0700);
	if (ret < 0)
		return error_format(err, errlen, ret, "cache directory %s: cannot create it: %s", dir,
				    strerror(-ret));
	/* Checked through the fd of what the path leads to now, not by a second lookup. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_format(err, errlen, -errno, "cache directory %s: %s", dir, strerror(errno));
	if (fstat(fd, &st) < 0)
		ret = error_format(err, errlen, -errno, "cache directory %s: %s", dir, strerror(errno));
	else if (st.st_uid != geteuid())
		ret = error_format(err, errlen, -EPERM,
				   "cache directory %s belongs to uid %u, not to uid %u: refused (remove it, "
				   "or set CACHEPOT_CACHE_DIR)", dir, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		ret = error_format(err, errlen, -EPERM,
				   "cache directory %s is writable by others (mode %04o): refused "
				   "(remove it, or chmod go-w it if no one else wrote there)", dir, (unsigned)(st.st_mode & 07777));
	close(fd);
	return ret;
}
