/* Paths from outside input, and the one way to walk them: by directory fd, one checked
 * component at a time.
 *
 * A component is never empty, ".", "..", longer than NAME_MAX, nor holds a '/' or a NUL. A
 * relative path is such components joined by single '/' (no leading or trailing '/', no empty
 * component). The walker opens each component with openat(O_DIRECTORY | O_NOFOLLOW |
 * O_CLOEXEC) relative to the directory before it, so a name from a client, an archive or a
 * manifest can never leave the directory it is resolved under, nor follow a symlink. Nothing
 * here builds a path string and opens it.
 */
#ifndef CACHEPOT_BASE_PATH_H
#define CACHEPOT_BASE_PATH_H

#include <stddef.h>

#define PATH_DEPTH_MAX 64      /* components the walker takes in one path */

/* True when the LEN bytes at NAME are one valid component (see above). */
int path_component_valid(const char *name, size_t len);

/* True when REL is a valid relative path (see above), of any depth. */
int path_relative_valid(const char *rel);

/* True when P is "/" or "/" followed by a valid relative path. */
int path_absolute_valid(const char *p);

/* Walk the directory components of REL (all of them when LEAF is NULL; all but the last
 * otherwise) beneath ROOTFD (which may be an O_PATH fd), creating missing ones with mode 0755
 * when CREATE. On success *DIRFD is an O_RDONLY | O_DIRECTORY fd the caller closes, and *LEAF
 * (when asked) points into REL at the last component, which has been checked too. -EINVAL when
 * REL is not a valid relative path or has more than PATH_DEPTH_MAX components, -ENOTDIR /
 * -ELOOP when a component is a file or a symlink, another -errno from openat or mkdirat. */
int path_walk(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
	__attribute__((warn_unused_result));

#endif
