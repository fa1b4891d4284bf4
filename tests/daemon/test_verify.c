/* Unit tests for the sampling of daemon/verify.h and its setting: 0 never draws, 1 always does,
 * a fraction draws that share of hits, and --verify-sample takes a decimal from 0 to 1 only. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/settings.h"
#include "daemon/verify.h"

#define DRAWS 100000

static unsigned count_draws(double p, uint64_t seed)
{
	uint64_t state = seed;
	unsigned n = 0;

	for (unsigned i = 0; i < DRAWS; i++) {
		n += verify_sample_draw(&state, p) ? 1 : 0;
		ck_assert(state != 0);
	}
	return n;
}

START_TEST(test_never_and_always)
{
	ck_assert_uint_eq(count_draws(0.0, 0x9e3779b97f4a7c15u), 0);
	ck_assert_uint_eq(count_draws(1.0, 0x9e3779b97f4a7c15u), DRAWS);
	ck_assert_uint_eq(count_draws(1.0, 1), DRAWS);
}
END_TEST

/* A fixed seed makes this exact; the bounds say the generator is not biased grossly (a binomial
 * of 100000 draws is within 1% of its mean far beyond six standard deviations). */
START_TEST(test_fractions)
{
	static const double ps[] = { 0.5, 0.25, 0.01 };

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		for (uint64_t seed = 1; seed < 0x100000000u; seed = seed * 7919 + 1) {
			unsigned n = count_draws(ps[i], seed);
			ck_assert_msg(n > (ps[i] - 0.01) * DRAWS && n < (ps[i] + 0.01) * DRAWS,
				      "p %.2f seed %llu: %u of %u", ps[i], (unsigned long long)seed, n,
				      DRAWS);
		}
}
END_TEST

START_TEST(test_setting)
{
	static const char *good[] = { "0", "1", "0.5", "1.0", "0.001", ".25" };
	static const double want[] = { 0, 1, 0.5, 1, 0.001, 0.25 };
	static const char *bad[] = { "", "2", "1.5", "-0.1", "nan", "inf", "1e-2", "0x0.8", "0.5x",
				     " 0.5", "50%" };
	struct daemon_config cfg;
	char err[256];

	ck_assert_int_eq(daemon_config_init(&cfg), 0);
	ck_assert(cfg.verify_sample == 0.0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_int_eq(daemon_config_set(&cfg, "verify-sample", good[i], err, sizeof(err)), 0);
		ck_assert(cfg.verify_sample == want[i]);
	}
	ck_assert_int_eq(daemon_config_set(&cfg, "verify_sample", "0.75", err, sizeof(err)), 0);
	ck_assert(cfg.verify_sample == 0.75);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_int_eq(daemon_config_set(&cfg, "verify-sample", bad[i], err, sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, "a fraction from 0 to 1 expected"), "%s: %s", bad[i], err);
		ck_assert(cfg.verify_sample == 0.75);   /* bad input changes nothing */
	}
	daemon_config_release(&cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");
	tcase_add_test(tc, test_never_and_always);
	tcase_add_test(tc, test_fractions);
	tcase_add_test(tc, test_setting);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
