/* Unpacking an uploaded toolchain archive into the store's toolchains/ directory.
 *
 * The archive (an uncompressed tar: ustar, pax or GNU; a compressed one is refused) is hostile
 * until its id is recomputed: entries are extracted by directory fd into toolchains/.tmp-<n>/,
 * refusing absolute names, "..", ".", empty components, symlinks, hard links, devices, FIFOs and
 * sockets, more than TOOLCHAIN_FILES_MAX files or TOOLCHAIN_BYTES_MAX bytes (counted as written,
 * not as the headers claim). Modes become 0755 (any execute bit) or 0644. Then hash/toolchain.h's
 * toolchain_id_of_tree hashes what was written, refusing a directory with no file beneath it (the
 * id covers files only, so an empty directory entry would reach every sandbox unnamed); only when
 * the id equals the one the client named is the tree renamed (RENAME_NOREPLACE) to
 * toolchains/<id>. On any failure the temporary tree is removed: no trace remains.
 *
 * Unused toolchains. An upload costs the worker up to TOOLCHAIN_BYTES_MAX of disk, so an
 * uploaded toolchain that no job ever names is removed after a while. Its root directory carries
 * the extended attribute TOOLCHAIN_UNUSED_XATTR, the upload time in decimal unix seconds, set
 * on the temporary tree before the rename (so a toolchain never appears without it); the first
 * job that names the toolchain removes it (toolchain_mark_used), and from then on the toolchain
 * is kept. toolchain_retire_unused moves aside, by one rename, every toolchain whose mark is
 * older than a bound; the rename and the marking both happen on the loop thread, so a job that
 * was accepted never loses its toolchain to the sweep, and one that comes later finds it missing
 * (424) and has it uploaded again. A tree without the attribute (uploaded before this existed,
 * placed by hand, or on a file system without user xattrs) is kept, as it always was.
 */
#ifndef CACHEPOT_DAEMON_TOOLCHAIN_UNPACK_H
#define CACHEPOT_DAEMON_TOOLCHAIN_UNPACK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;

/* Unpack BODY (drained as it is read) as toolchain ID beneath TOOLCHAINS_FD, with temporary
 * names made unique by SEQ. Returns 0 when the toolchain was added, 1 when it was already
 * present, -EBADMSG when the unpacked tree's id differs, -EINVAL for a refused archive or entry,
 * -EFBIG past the bounds, other -errno; ERR gets a message on failure. */
int toolchain_unpack(int toolchains_fd, struct evbuffer *body, const char *id, uint64_t seq,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* The same, the archive read from ARCHIVE_FD (from its offset; not closed). */
int toolchain_unpack_fd(int toolchains_fd, int archive_fd, const char *id, uint64_t seq,
			char *err, size_t errlen) __attribute__((warn_unused_result));

#define TOOLCHAIN_UNUSED_XATTR "user.cachepot.unused"

/* Remove the temporary trees a killed daemon left in TOOLCHAINS_FD, and the trees moved aside
 * by toolchain_retire_unused. */
void toolchain_sweep(int toolchains_fd);

/* A job names toolchain ID (checked hex): remove its unused mark. 0 (also when it had none),
 * or -errno (-ENOENT: no such toolchain). Cheap: one open and one removexattr. */
int toolchain_mark_used(int toolchains_fd, const char *id);

/* Move aside every toolchain whose unused mark is at least MAX_AGE seconds older than NOW (to a
 * name toolchain_remove_retired and toolchain_sweep remove). Returns how many were moved, or
 * -errno when TOOLCHAINS_FD cannot be read. */
int toolchain_retire_unused(int toolchains_fd, time_t now, unsigned max_age);

/* Remove the trees toolchain_retire_unused moved aside (slow: run it on a worker). */
void toolchain_remove_retired(int toolchains_fd);

#endif
