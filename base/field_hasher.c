/* The typed-field hasher over OpenSSL's EVP SHA-256; see field_hasher.h. */
#include "config.h"

#include "base/field_hasher.h"

#include <errno.h>

#include <openssl/evp.h>

static void put_u64_le(unsigned char out[8], uint64_t v)
{
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(v >> (8 * i));
}

int field_hasher_init(struct field_hasher *h, const void *tag, size_t len)
{
	h->failed = 0;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		return -ENOMEM;
	if (EVP_DigestUpdate(h->ctx, tag, len) != 1)
		h->failed = 1;
	return 0;
}

void field_hasher_add(struct field_hasher *h, char tag, const void *data, size_t len)
{
	unsigned char header[9];
	header[0] = (unsigned char)tag;
	put_u64_le(header + 1, len);
	if (EVP_DigestUpdate(h->ctx, header, sizeof(header)) != 1
	    || (len && EVP_DigestUpdate(h->ctx, data, len) != 1))
		h->failed = 1;
}

void field_hasher_add_u64(struct field_hasher *h, char tag, uint64_t v)
{
	unsigned char buf[8];
	put_u64_le(buf, v);
	field_hasher_add(h, tag, buf, sizeof(buf));
}

int field_hasher_finish(struct field_hasher *h, uint8_t out[FIELD_HASHER_SIZE])
{
	unsigned int len = 0;
	if (h->failed || EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != FIELD_HASHER_SIZE)
		return -ENOMEM;
	return 0;
}

void field_hasher_release(struct field_hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	h->failed = 0;
}
