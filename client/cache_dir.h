/* Whether the wrapper may use its cache directory.
 *
 * What is in it is believed: the toolchain list names the host files a miss uploads and the
 * toolchain id its keys carry, a direct-mode list names the inputs of a key. So only a directory
 * that no one else can write is used: created with mode 0700 when missing, and otherwise accepted
 * only when it is a directory owned by the effective uid and neither group- nor world-writable.
 * A symlink on the way is followed (a user may keep the cache on another disk); what it leads to
 * is what is checked. The directories above it are the user's to keep safe, as they are for
 * ~/.ssh: one someone else can write lets them swap the cache directory after the check.
 *
 * A wrapper whose directory is refused (or that has none, see client/settings.h) runs without
 * one: toolchain ids are computed on every invocation, direct mode is off, statistics are not
 * kept, and a toolchain upload is archived in an unnamed O_TMPFILE without the upload lock.
 * Hits and misses are served as usual.
 */
#ifndef CACHEPOT_CLIENT_CACHE_DIR_H
#define CACHEPOT_CLIENT_CACHE_DIR_H

#include <stddef.h>

/* Create DIR (an absolute path) and its missing parents with mode 0700, then check it as above.
 * Returns 0 when it may be used; otherwise -errno with a message naming DIR in ERR: -EINVAL for
 * a relative path, -ENOTDIR, -EPERM when another uid owns it or others may write it, another
 * -errno from mkdir or open. */
int cache_dir_prepare(const char *dir, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
