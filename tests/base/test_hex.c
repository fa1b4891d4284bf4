/* Unit tests for base/hex: round trips, lowercase only, never read past a short string. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"

START_TEST(test_encode)
{
	static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char hex[2 * sizeof(bytes) + 1];
	memset(hex, 'x', sizeof(hex));
	hex_encode(bytes, sizeof(bytes), hex);
	ck_assert_str_eq(hex, "00017f80abff");
	hex_encode(bytes, 0, hex);
	ck_assert_str_eq(hex, "");
}
END_TEST

START_TEST(test_decode)
{
	uint8_t out[4];
	ck_assert_int_eq(hex_decode("deadbeef", out, 4), 0);
	ck_assert_mem_eq(out, "\xde\xad\xbe\xef", 4);
	/* Only the 2 * N digits asked for are read: what follows them does not matter. */
	ck_assert_int_eq(hex_decode("0102zz", out, 1), 0);
	ck_assert_uint_eq(out[0], 1);
	ck_assert_int_eq(hex_decode("DEADBEEF", out, 4), -EINVAL);
	ck_assert_int_eq(hex_decode("dead be", out, 4), -EINVAL);
	ck_assert_int_eq(hex_decode("0g", out, 1), -EINVAL);
	ck_assert_int_eq(hex_decode("g0", out, 1), -EINVAL);
}
END_TEST

/* A string shorter than asked for is refused at its NUL: the buffer here ends right after it,
 * so ASan would see any read past it. */
START_TEST(test_decode_short_string)
{
	char *s = malloc(4);
	uint8_t out[8];
	ck_assert_ptr_nonnull(s);
	memcpy(s, "abc", 4);
	ck_assert_int_eq(hex_decode(s, out, 8), -EINVAL);
	ck_assert(!hex_valid(s, 8));
	memcpy(s, "ab", 3);
	ck_assert_int_eq(hex_decode(s, out, 8), -EINVAL);
	free(s);
}
END_TEST

START_TEST(test_valid)
{
	ck_assert(hex_valid("00ff", 2));
	ck_assert(hex_valid("", 0));
	ck_assert(!hex_valid("00ff", 1));   /* longer than asked */
	ck_assert(!hex_valid("00f", 2));    /* shorter */
	ck_assert(!hex_valid("00FF", 2));   /* upper case */
	ck_assert(!hex_valid("0 ff", 2));
}
END_TEST

START_TEST(test_round_trip)
{
	uint8_t bytes[256], back[256];
	char hex[2 * sizeof(bytes) + 1];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	hex_encode(bytes, sizeof(bytes), hex);
	ck_assert(hex_valid(hex, sizeof(bytes)));
	ck_assert_int_eq(hex_decode(hex, back, sizeof(back)), 0);
	ck_assert_mem_eq(bytes, back, sizeof(bytes));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hex");
	TCase *tc = tcase_create("hex");
	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_decode_short_string);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_round_trip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
