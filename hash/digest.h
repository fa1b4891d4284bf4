/* SHA-256 digests of buffers, file descriptors and files (OpenSSL EVP).
 *
 * A digest is 32 raw bytes; its text form is 64 lowercase hex characters plus a NUL
 * (DIGEST_HEX_SIZE), base/hex's codec. Every function returns 0 on success or a negative errno.
 */
#ifndef CACHEPOT_HASH_DIGEST_H
#define CACHEPOT_HASH_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DIGEST_SIZE 32
#define DIGEST_HEX_SIZE (2 * DIGEST_SIZE + 1)

/* Hash LEN bytes at DATA into OUT. */
int digest_buffer(const void *data, size_t len, uint8_t out[DIGEST_SIZE])
    __attribute__((warn_unused_result));

/* Hash everything readable from FD (from its current offset to EOF) into OUT; if SIZE is not
 * NULL, store the number of bytes read there. FD is not closed. */
int digest_fd(int fd, uint8_t out[DIGEST_SIZE], uint64_t *size)
    __attribute__((warn_unused_result));

/* Hash the regular file NAME relative to directory DIRFD (AT_FDCWD for the cwd), without
 * following a final symlink. */
int digest_file_at(int dirfd, const char *name, uint8_t out[DIGEST_SIZE], uint64_t *size)
    __attribute__((warn_unused_result));

/* Write the hex form of DIGEST into HEX (DIGEST_HEX_SIZE bytes, NUL-terminated). */
void digest_to_hex(const uint8_t digest[DIGEST_SIZE], char hex[DIGEST_HEX_SIZE]);

/* Parse 64 lowercase hex characters (exactly; HEX need not be NUL-terminated after them) into
 * DIGEST. Returns -EINVAL on anything else. */
int digest_from_hex(const char *hex, uint8_t digest[DIGEST_SIZE])
    __attribute__((warn_unused_result));

/* True when S is exactly 64 lowercase hex characters followed by NUL. */
int digest_hex_valid(const char *s);

#endif
