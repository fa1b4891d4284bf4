/* Unit tests for hash/digest: SHA-256 known answers and hex round trips. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash/digest.h"

/* FIPS 180-2 test vector for "abc". */
static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

START_TEST(test_buffer_known_answer)
{
	uint8_t d[DIGEST_SIZE];
	char hex[DIGEST_HEX_SIZE];
	ck_assert_int_eq(digest_buffer("abc", 3, d), 0);
	digest_to_hex(d, hex);
	ck_assert_str_eq(hex, abc_hex);
}
END_TEST

START_TEST(test_fd_matches_buffer)
{
	char path[] = "/tmp/cachepot-digest-XXXXXX";
	int fd = mkstemp(path);
	uint8_t d[DIGEST_SIZE], e[DIGEST_SIZE];
	uint64_t size = 0;
	char *big = malloc(1 << 20);
	ck_assert_ptr_nonnull(big);
	for (int i = 0; i < (1 << 20); i++)
		big[i] = (char)(i * 7);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, big, 1 << 20), 1 << 20);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(digest_fd(fd, d, &size), 0);
	ck_assert_uint_eq(size, 1 << 20);
	ck_assert_int_eq(digest_buffer(big, 1 << 20, e), 0);
	ck_assert_mem_eq(d, e, DIGEST_SIZE);
	ck_assert_int_eq(digest_file_at(AT_FDCWD, path, e, NULL), 0);
	ck_assert_mem_eq(d, e, DIGEST_SIZE);
	ck_assert_int_eq(digest_file_at(AT_FDCWD, "/tmp", e, NULL), -EINVAL);
	unlink(path);
	close(fd);
	free(big);
}
END_TEST

START_TEST(test_hex_parse)
{
	uint8_t d[DIGEST_SIZE];
	char hex[DIGEST_HEX_SIZE];
	ck_assert_int_eq(digest_from_hex(abc_hex, d), 0);
	digest_to_hex(d, hex);
	ck_assert_str_eq(hex, abc_hex);
	ck_assert(digest_hex_valid(abc_hex));
	ck_assert(!digest_hex_valid("ba78"));
	ck_assert(!digest_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
	ck_assert_int_eq(digest_from_hex("zz", d), -EINVAL);
	ck_assert_int_eq(digest_from_hex("", d), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("digest");
	tcase_add_test(tc, test_buffer_known_answer);
	tcase_add_test(tc, test_fd_matches_buffer);
	tcase_add_test(tc, test_hex_parse);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
