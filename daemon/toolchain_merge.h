/* The tree a link job's sandbox sees: its base toolchain and its link part, merged.
 *
 * Both trees were verified when they were uploaded (toolchain_unpack.h). The merged tree,
 * toolchains/link-<base id>-<link id>/, holds a hard link to every file of both (same file
 * system, immutable files), so it costs directory entries only and is a function of the two
 * ids, which the key of a link job carries. A path in both trees must name the same bytes
 * (the link part repeats libraries of the base's closure): otherwise, or where one tree has a
 * directory and the other a file, the merge is refused and the job with it. Built under a
 * temporary name (.tmp-merge-<seq>, which toolchain_sweep removes after a crash) and renamed
 * into place; a concurrent identical merge simply wins.
 */
#ifndef CACHEPOT_DAEMON_TOOLCHAIN_MERGE_H
#define CACHEPOT_DAEMON_TOOLCHAIN_MERGE_H

#include <stddef.h>
#include <stdint.h>

/* The merged tree's name beneath toolchains/ (NAME gets TOOLCHAIN_MERGED_NAME_SIZE bytes). */
#define TOOLCHAIN_MERGED_NAME_SIZE (5 + 64 + 1 + 64 + 1)
void toolchain_merged_name(const char *base, const char *link, char name[TOOLCHAIN_MERGED_NAME_SIZE]);

/* Make sure the merged tree of BASE and LINK (both present beneath TOOLCHAINS_FD) exists.
 * Returns 0, -ENOENT when one of them is missing, -EEXIST when they disagree on a path, other
 * -errno; ERR gets a message on failure. */
int toolchain_merge(int toolchains_fd, const char *base, const char *link, uint64_t seq, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

#endif
