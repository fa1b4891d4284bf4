/* SHA-256 through OpenSSL's EVP interface; see digest.h. */
#include "config.h"

#include "hash/digest.h"

#include "base/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* Bytes read per read(2) when hashing a file: large enough to amortise syscalls. */
#define DIGEST_READ_CHUNK (256 * 1024)

int digest_buffer(const void *data, size_t len, uint8_t out[DIGEST_SIZE])
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != DIGEST_SIZE)
		return -EIO;
	return 0;
}

int digest_fd(int fd, uint8_t out[DIGEST_SIZE], uint64_t *size)
{
	static __thread unsigned char buf[DIGEST_READ_CHUNK];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t total = 0;
	unsigned int n = 0;
	int ret = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (got == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)got))
			goto out;
		total += (uint64_t)got;
	}
	if (!EVP_DigestFinal_ex(ctx, out, &n) || n != DIGEST_SIZE)
		goto out;
	if (size)
		*size = total;
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

int digest_file_at(int dirfd, const char *name, uint8_t out[DIGEST_SIZE], uint64_t *size)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	int ret;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
	} else {
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		ret = digest_fd(fd, out, size);
	}
	close(fd);
	return ret;
}

void digest_to_hex(const uint8_t digest[DIGEST_SIZE], char hex[DIGEST_HEX_SIZE])
{
	hex_encode(digest, DIGEST_SIZE, hex);
}

int digest_from_hex(const char *hex, uint8_t digest[DIGEST_SIZE])
{
	return hex_decode(hex, digest, DIGEST_SIZE);
}

int digest_hex_valid(const char *s)
{
	return hex_valid(s, DIGEST_SIZE);
}
