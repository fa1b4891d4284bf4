/* The typed-field hasher: SHA-256 over a version tag and then a sequence of fields, each as
 *
 *	tag (1 byte) || length of the data (u64, little-endian) || the data
 *
 * The tag says what a field is and the length says where it ends, so no two different
 * sequences of fields hash the same bytes (a field cannot be read as the end of the one before
 * it, nor an argument as a path). The key (hash/job.c) and the toolchain id (hash/toolchain.c)
 * are both hashed this way; their recipes, the order and tags of their fields, stay with them.
 *
 * Lifetime: field_hasher_init, any number of field_hasher_add*, then field_hasher_finish,
 * and field_hasher_release in every case (also after a failed init). An add that fails is
 * remembered and reported by field_hasher_finish, so a recipe needs no check after each field.
 */
#ifndef CACHEPOT_BASE_FIELD_HASHER_H
#define CACHEPOT_BASE_FIELD_HASHER_H

#include <stddef.h>
#include <stdint.h>

#define FIELD_HASHER_SIZE 32   /* bytes of the SHA-256 it produces */

struct field_hasher {
	void *ctx;             /* the OpenSSL EVP_MD_CTX, owned */
	int failed;            /* an update failed: finish reports it */
};

/* Start a hash with the LEN bytes at TAG (the recipe's version, NUL included by convention so
 * that "v1" is not a prefix of "v10"). Returns 0 or -ENOMEM. */
int field_hasher_init(struct field_hasher *h, const void *tag, size_t len)
	__attribute__((warn_unused_result));

/* Add one field: TAG, the length of the LEN bytes at DATA, then the data. */
void field_hasher_add(struct field_hasher *h, char tag, const void *data, size_t len);

/* Add V as one field of 8 bytes, little-endian. */
void field_hasher_add_u64(struct field_hasher *h, char tag, uint64_t v);

/* Write the digest into OUT. Returns 0, or -ENOMEM when any step failed (OUT is then
 * undefined). */
int field_hasher_finish(struct field_hasher *h, uint8_t out[FIELD_HASHER_SIZE])
	__attribute__((warn_unused_result));

/* Free what H holds; H may be used again with field_hasher_init. */
void field_hasher_release(struct field_hasher *h);

#endif
