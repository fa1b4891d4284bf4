/* Small I/O helpers every room uses: whole writes, bounded whole-file reads, and running a
 * program with its standard output captured. Each returns 0 (or what it says) or a negative
 * errno; none exits. */
#ifndef CACHEPOT_BASE_IO_H
#define CACHEPOT_BASE_IO_H

#include <stddef.h>

/* Write all LEN bytes of DATA to FD, retrying on EINTR and short writes. */
int io_write_all(int fd, const void *data, size_t len) __attribute__((warn_unused_result));

/* Read the regular file NAME under DIRFD (AT_FDCWD for the cwd) whole into *DATA (malloc'd,
 * NUL-terminated, caller frees), its length in *LEN. FLAGS is added to the open (O_NOFOLLOW).
 * -EFBIG when it is larger than MAX, -EINVAL when it is not a regular file, -EIO when it
 * shrank while read. */
int io_read_file_at(int dirfd, const char *name, int flags, size_t max, char **data, size_t *len)
	__attribute__((warn_unused_result));

/* Replace the file PATH with the LEN bytes at DATA: they are written to PATH.<pid>.tmp, created
 * with O_EXCL | O_NOFOLLOW and MODE, which is then renamed over PATH. A concurrent reader sees
 * the old file or the new one, never half of one, and a symlink planted at either name is never
 * written through (rename replaces a symlink at PATH instead of following it). Returns 0 or
 * -errno; on failure the temporary file is gone and PATH is as it was. */
int io_replace_file(const char *path, const void *data, size_t len, unsigned mode)
	__attribute__((warn_unused_result));

/* Run ARGV (argv[0] a path, or a name looked up in PATH when SEARCH_PATH) with ENVP, standard
 * input and error on /dev/null, standard output captured into OUT (OUTLEN bytes, NUL-terminated;
 * *GOT, when not NULL, gets the length). Output past OUTLEN - 1 bytes is read and dropped, so the
 * child never blocks on a full pipe. Returns the exit status (0..255), -ECHILD when the child was
 * killed by a signal, or -errno when it could not be run. */
int io_run_capture(char *const *argv, char *const *envp, int search_path, char *out, size_t outlen,
		   size_t *got) __attribute__((warn_unused_result));

#endif
