/* Directory-fd walks for the trees the daemon builds from outside input (job inputs, toolchain
 * archives) and removes (job scratch directories).
 *
 * Every step is an openat(O_DIRECTORY | O_NOFOLLOW) relative to the previous directory, with each
 * component checked first: never empty, ".", "..", longer than NAME_MAX; so a name from a client
 * can never leave the root it is resolved under, nor follow a symlink. Paths here are RELATIVE
 * ("a/b/c"); callers strip their canonical prefix first. All functions return -errno.
 */
#ifndef CACHEPOT_DAEMON_TREE_H
#define CACHEPOT_DAEMON_TREE_H

#include <stddef.h>

#define TREE_DEPTH_MAX 64      /* components in one path */

/* True when the LEN bytes at NAME are a valid single component (see above). */
int tree_component_valid(const char *name, size_t len);

/* Walk the directory components of REL (all of them when LEAF is NULL; all but the last
 * otherwise) beneath ROOTFD, creating missing ones with mode 0755 when CREATE. On success *DIRFD
 * is an O_RDONLY|O_DIRECTORY fd the caller closes, and *LEAF (when asked) points into REL at the
 * last component, which has been checked too. -EINVAL for a bad component, -ENOTDIR / -ELOOP
 * when a component is a file or a symlink. */
int tree_walk(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
	__attribute__((warn_unused_result));

/* Remove NAME beneath DIRFD and everything below it, without following symlinks. A directory
 * that is a mount point (a sandbox's output tmpfs left behind by a killed daemon) is detached
 * first. -ENOENT when NAME does not exist. */
int tree_remove_at(int dirfd, const char *name) __attribute__((warn_unused_result));

#endif
