/* Writing a toolchain as a tar stream (libarchive); see toolchain.h. Kept apart from
 * toolchain.c so that programs that only compute ids do not link libarchive. */
#include "config.h"

#include "hash/toolchain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

static int write_dir_entry(struct archive *a, const char *rel)
{
	struct archive_entry *e = archive_entry_new();
	int ret;
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, rel);
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_mtime(e, 0, 0);
	ret = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -EIO;
	archive_entry_free(e);
	return ret;
}

/* Write the directories leading to REL that DONE (the previous file's rel) did not cover. */
static int write_parents(struct archive *a, const char *rel, const char *prev)
{
	char dir[PATH_MAX];
	for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
		size_t n = (size_t)(p - rel);
		if (n >= sizeof(dir))
			return -ENAMETOOLONG;
		if (prev && strncmp(prev, rel, n + 1) == 0)
			continue;
		memcpy(dir, rel, n);
		dir[n] = '\0';
		if (write_dir_entry(a, dir) < 0)
			return -EIO;
	}
	return 0;
}

int toolchain_write_archive(const struct toolchain *tc, int fd)
{
	struct archive *a = archive_write_new();
	char *buf = malloc(1 << 20);
	int ret = 0;

	if (!a || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK
	    || archive_write_add_filter_none(a) != ARCHIVE_OK
	    || archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK
	    || archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		ret = -EIO;
		goto out;
	}
	for (size_t i = 0; i < tc->n_files && ret == 0; i++) {
		const struct toolchain_file *f = &tc->files[i];
		struct archive_entry *e;
		uint64_t left = f->size;
		int in;

		ret = write_parents(a, f->rel, i ? tc->files[i - 1].rel : NULL);
		if (ret < 0)
			break;
		in = open(f->host_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (in < 0) {
			ret = -errno;
			break;
		}
		e = archive_entry_new();
		if (!e) {
			close(in);
			ret = -ENOMEM;
			break;
		}
		archive_entry_set_pathname(e, f->rel);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, f->mode);
		archive_entry_set_size(e, (la_int64_t)f->size);
		archive_entry_set_mtime(e, 0, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK)
			ret = -EIO;
		archive_entry_free(e);
		while (ret == 0 && left > 0) {
			ssize_t r = read(in, buf, left < (1 << 20) ? left : (1 << 20));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				ret = -EIO; /* the file shrank since it was hashed */
				break;
			}
			if (archive_write_data(a, buf, (size_t)r) != r)
				ret = -EIO;
			left -= (uint64_t)r;
		}
		close(in);
	}
	if (archive_write_close(a) != ARCHIVE_OK && ret == 0)
		ret = -EIO;
out:
	if (a)
		archive_write_free(a);
	free(buf);
	return ret;
}
