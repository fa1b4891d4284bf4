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
 */
#ifndef CACHEPOT_DAEMON_TOOLCHAIN_UNPACK_H
#define CACHEPOT_DAEMON_TOOLCHAIN_UNPACK_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Unpack BODY (drained as it is read) as toolchain ID beneath TOOLCHAINS_FD, with temporary
 * names made unique by SEQ. Returns 0 when the toolchain was added, 1 when it was already
 * present, -EBADMSG when the unpacked tree's id differs, -EINVAL for a refused archive or entry,
 * -EFBIG past the bounds, other -errno; ERR gets a message on failure. */
int toolchain_unpack(int toolchains_fd, struct evbuffer *body, const char *id, uint64_t seq,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Remove the temporary trees a killed daemon left in TOOLCHAINS_FD. */
void toolchain_sweep(int toolchains_fd);

#endif
