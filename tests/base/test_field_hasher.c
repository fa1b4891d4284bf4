/* Unit tests for base/field_hasher: the bytes it hashes are exactly tag || fields, each field
 * tag || u64 LE length || data. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/field_hasher.h"

static void sha256(const void *data, size_t len, uint8_t out[FIELD_HASHER_SIZE])
{
	unsigned int n = 0;
	ck_assert_int_eq(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(n, FIELD_HASHER_SIZE);
}

START_TEST(test_layout)
{
	static const unsigned char expect_bytes[] = {
		't', '1', 0,
		'a', 3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c',
		'e', 0, 0, 0, 0, 0, 0, 0, 0,
		'n', 8, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0,
	};
	uint8_t expect[FIELD_HASHER_SIZE], got[FIELD_HASHER_SIZE];
	struct field_hasher h;

	sha256(expect_bytes, sizeof(expect_bytes), expect);
	ck_assert_int_eq(field_hasher_init(&h, "t1", 3), 0);
	field_hasher_add(&h, 'a', "abc", 3);
	field_hasher_add(&h, 'e', NULL, 0);
	field_hasher_add_u64(&h, 'n', 0x0102);
	ck_assert_int_eq(field_hasher_finish(&h, got), 0);
	field_hasher_release(&h);
	ck_assert_mem_eq(got, expect, FIELD_HASHER_SIZE);
}
END_TEST

/* Moving a byte across a field boundary changes the hash. */
START_TEST(test_boundaries)
{
	uint8_t a[FIELD_HASHER_SIZE], b[FIELD_HASHER_SIZE];
	struct field_hasher h;

	ck_assert_int_eq(field_hasher_init(&h, "t", 2), 0);
	field_hasher_add(&h, 'a', "ab", 2);
	field_hasher_add(&h, 'a', "c", 1);
	ck_assert_int_eq(field_hasher_finish(&h, a), 0);
	field_hasher_release(&h);
	ck_assert_int_eq(field_hasher_init(&h, "t", 2), 0);
	field_hasher_add(&h, 'a', "a", 1);
	field_hasher_add(&h, 'a', "bc", 2);
	ck_assert_int_eq(field_hasher_finish(&h, b), 0);
	field_hasher_release(&h);
	ck_assert(memcmp(a, b, FIELD_HASHER_SIZE) != 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("field_hasher");
	TCase *tc = tcase_create("field_hasher");
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_boundaries);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
