/* Unit tests for base/error: the value comes back unchanged, the message is bounded. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

START_TEST(test_formats_and_returns)
{
	char err[64];
	ck_assert_int_eq(error_format(err, sizeof(err), -EINVAL, "argv[%zu]: %s", (size_t)3, "bad"),
			 -EINVAL);
	ck_assert_str_eq(err, "argv[3]: bad");
	ck_assert_int_eq(error_format(err, sizeof(err), -EFBIG, "more than %d files", 7), -EFBIG);
	ck_assert_str_eq(err, "more than 7 files");
	ck_assert_int_eq(error_format(err, sizeof(err), 0, "fine"), 0);
}
END_TEST

START_TEST(test_truncates)
{
	char err[8];
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(error_format(err, sizeof(err), -ENOMEM, "%s", "a long message"), -ENOMEM);
	ck_assert_str_eq(err, "a long ");
}
END_TEST

START_TEST(test_no_buffer)
{
	char err[4] = "abc";
	ck_assert_int_eq(error_format(NULL, 16, -EIO, "ignored %d", 1), -EIO);
	ck_assert_int_eq(error_format(err, 0, -EIO, "ignored %d", 1), -EIO);
	ck_assert_str_eq(err, "abc");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("error");
	tcase_add_test(tc, test_formats_and_returns);
	tcase_add_test(tc, test_truncates);
	tcase_add_test(tc, test_no_buffer);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
