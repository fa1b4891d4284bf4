/* Removing the trees the daemon builds in the store (job scratch directories, half-unpacked
 * toolchains) by directory fd, without following symlinks. Walking into them is base/path's
 * path_walk. Returns -errno.
 */
#ifndef CACHEPOT_FS_TREE_H
#define CACHEPOT_FS_TREE_H

#include <stddef.h>

/* Remove NAME beneath DIRFD and everything below it, without following symlinks. A directory
 * that is a mount point (a sandbox's output tmpfs left behind by a killed daemon) is detached
 * first. -ENOENT when NAME does not exist. */
int tree_remove_at(int dirfd, const char *name) __attribute__((warn_unused_result));

#endif
