/* Unit tests for daemon/listen's address parser and daemon/etag's If-None-Match test: what a
 * listener binds is exactly what was written, and a 304 is never given for another tag. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/etag.h"
#include "daemon/listen.h"

static int parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char err[256];
	return listen_address_parse(spec, ss, len, err, sizeof(err));
}

START_TEST(test_ipv4)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	socklen_t len;

	ck_assert_int_eq(parse("127.0.0.1:8080", &ss, &len), 0);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(*sin));
	ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_int_eq(parse("0.0.0.0:65535", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 65535);
}
END_TEST

START_TEST(test_ipv6_and_any)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;

	ck_assert_int_eq(parse("[::1]:8443", &ss, &len), 0);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(*sin6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 8443);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	ck_assert_int_eq(parse(":8080", &ss, &len), 0);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 8080);
}
END_TEST

START_TEST(test_refused)
{
	static const char *const bad[] = {
		"", ":", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:80x", "127.0.0.1:-1", "127.0.0.1: 80", "localhost:8080", "::1:8080",
		"[::1]8080", "[::1:8080", "[127.0.0.1]:80", "1.2.3:80", "256.1.1.1:80",
		"127.0.0.1:99999999999999999999",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
	};
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], &ss, &len) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_error_names_the_address)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];

	ck_assert_int_eq(listen_address_parse("nowhere:1", &ss, &len, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "'nowhere:1'"));
}
END_TEST

START_TEST(test_etag)
{
	const char *tag = "abc123";

	ck_assert(etag_matches("\"abc123\"", tag));
	ck_assert(etag_matches("  \"abc123\"  ", tag));
	ck_assert(etag_matches("W/\"abc123\"", tag));
	ck_assert(etag_matches("\"x\", \"abc123\"", tag));
	ck_assert(etag_matches("\"x\",W/\"abc123\",\"y\"", tag));
	ck_assert(etag_matches("*", tag));
	ck_assert(etag_matches(" * ", tag));

	ck_assert(!etag_matches(NULL, tag));
	ck_assert(!etag_matches("", tag));
	ck_assert(!etag_matches("abc123", tag));          /* not quoted */
	ck_assert(!etag_matches("\"abc12\"", tag));
	ck_assert(!etag_matches("\"abc1234\"", tag));
	ck_assert(!etag_matches("\"ABC123\"", tag));
	ck_assert(!etag_matches("\"abc123", tag));        /* unterminated */
	ck_assert(!etag_matches("\"x\" junk, \"abc123\"", tag));
	ck_assert(!etag_matches("*, \"x\"", tag));
	ck_assert(!etag_matches("w/\"abc123\"", tag));
}
END_TEST

START_TEST(test_etag_too_long)
{
	size_t n = ETAG_HEADER_MAX + 16;
	char *h = malloc(n + 1);

	ck_assert_ptr_nonnull(h);
	memset(h, ' ', n);
	memcpy(h + n - 8, "\"abc123\"", 8);
	h[n] = '\0';
	ck_assert(!etag_matches(h, "abc123"));
	free(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("listen");
	TCase *tc = tcase_create("listen");
	tcase_add_test(tc, test_ipv4);
	tcase_add_test(tc, test_ipv6_and_any);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_error_names_the_address);
	tcase_add_test(tc, test_etag);
	tcase_add_test(tc, test_etag_too_long);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
