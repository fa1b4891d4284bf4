/* Unit tests for hash/depinfo and hash/pathmap. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash/depinfo.h"
#include "hash/pathmap.h"

static const char sample[] =
	"/o/t.d: lib.rs my\\ dir/data.txt /s/lib/libstd-1.rmeta\n"
	"/o/libt.rmeta: lib.rs my\\ dir/data.txt /s/lib/libstd-1.rmeta\n"
	"\n"
	"lib.rs:\n"
	"my\\ dir/data.txt:\n"
	"/s/lib/libstd-1.rmeta:\n"
	"\n"
	"# env-dep:CACHEPOT_TEST_VAR=a b\\nc\\\\d\n"
	"# env-dep:UNSET_VAR\n"
	"# checksum:blake3=00 lib.rs\n";

START_TEST(test_depinfo_sample)
{
	struct depinfo d;
	ck_assert_int_eq(depinfo_parse(sample, sizeof(sample) - 1, &d), 0);
	ck_assert_uint_eq(d.n_files, 3);
	ck_assert_str_eq(d.files[0], "lib.rs");
	ck_assert_str_eq(d.files[1], "my dir/data.txt");
	ck_assert_str_eq(d.files[2], "/s/lib/libstd-1.rmeta");
	ck_assert_uint_eq(d.n_env, 2);
	ck_assert_str_eq(d.env[0].name, "CACHEPOT_TEST_VAR");
	ck_assert_str_eq(d.env[0].value, "a b\nc\\d");
	ck_assert_str_eq(d.env[1].name, "UNSET_VAR");
	ck_assert_ptr_null(d.env[1].value);
	depinfo_release(&d);
}
END_TEST

START_TEST(test_depinfo_malformed)
{
	struct depinfo d;
	static const char nocolon[] = "just words here\n";
	static const char noname[] = "a: b\n# env-dep:=x\n";
	static const char nul[] = "a: b\0c\n";
	ck_assert_int_eq(depinfo_parse(nocolon, sizeof(nocolon) - 1, &d), -EINVAL);
	ck_assert_int_eq(depinfo_parse(noname, sizeof(noname) - 1, &d), -EINVAL);
	ck_assert_int_eq(depinfo_parse(nul, sizeof(nul) - 1, &d), -EINVAL);
	ck_assert_int_eq(depinfo_parse("", 0, &d), 0);
	ck_assert_uint_eq(d.n_files, 0);
	depinfo_release(&d);
	/* a trailing backslash and no newline at the end */
	ck_assert_int_eq(depinfo_parse("a: b\\", 5, &d), 0);
	ck_assert_uint_eq(d.n_files, 1);
	ck_assert_str_eq(d.files[0], "b\\");
	depinfo_release(&d);
}
END_TEST

START_TEST(test_normalise)
{
	char *p;
	ck_assert_int_eq(path_normalise("/a//b/./c/../d/", NULL, &p), 0);
	ck_assert_str_eq(p, "/a/b/d");
	free(p);
	ck_assert_int_eq(path_normalise("src/../lib.rs", "/w/x", &p), 0);
	ck_assert_str_eq(p, "/w/x/lib.rs");
	free(p);
	ck_assert_int_eq(path_normalise("/../..", NULL, &p), 0);
	ck_assert_str_eq(p, "/");
	free(p);
	ck_assert_int_eq(path_normalise("rel", NULL, &p), -EINVAL);
}
END_TEST

START_TEST(test_map)
{
	struct path_map m = { 0 };
	char *p = NULL, *out = NULL;
	size_t len;
	static const char text[] = "/cachepot/out/libx.rmeta: /cachepot/cwd/src/a.rs /cachepot/out-dir/gen.rs "
				   "\"/cachepot/target\" /cachepot/cwdx";
	ck_assert_int_eq(path_map_add(&m, "/home/u/ws", "/cachepot/cwd"), 0);
	ck_assert_int_eq(path_map_add(&m, "/home/u/ws/target/", "/cachepot/target"), 0);
	ck_assert_int_eq(path_map_add(&m, "/home/u/ws/target/debug/build/x/out", "/cachepot/out-dir"), 0);
	ck_assert_int_eq(path_map_add(&m, "/home/u/ws/target/debug/deps", "/cachepot/out"), 0);
	ck_assert_int_eq(path_map_add(&m, "relative", "/x"), -EINVAL);
	ck_assert_int_eq(path_map_to_canonical(&m, "/home/u/ws/src/lib.rs", &p), 0);
	ck_assert_str_eq(p, "/cachepot/cwd/src/lib.rs");
	free(p);
	ck_assert_int_eq(path_map_to_canonical(&m, "/home/u/ws/target/debug/libq.rlib", &p), 0);
	ck_assert_str_eq(p, "/cachepot/target/debug/libq.rlib");
	free(p);
	ck_assert_int_eq(path_map_to_canonical(&m, "/home/u/ws", &p), 0);
	ck_assert_str_eq(p, "/cachepot/cwd");
	free(p);
	/* component boundaries: /home/u/wsx is not under /home/u/ws */
	ck_assert_int_eq(path_map_to_canonical(&m, "/home/u/wsx/a", &p), -ENOENT);
	ck_assert_int_eq(path_map_to_canonical(&m, "/etc/passwd", &p), -ENOENT);
	ck_assert_int_eq(path_map_rewrite_to_local(&m, text, sizeof(text) - 1, &out, &len), 0);
	ck_assert_str_eq(out, "/home/u/ws/target/debug/deps/libx.rmeta: /home/u/ws/src/a.rs "
			      "/home/u/ws/target/debug/build/x/out/gen.rs \"/home/u/ws/target\" /cachepot/cwdx");
	ck_assert_uint_eq(len, strlen(out));
	free(out);
	path_map_release(&m);
}
END_TEST

#include <stdio.h>

/* Regression: every name used to be checked against all earlier ones, so parsing grew with the
 * square of the file count; the fuzzer's 220 KB input of 20000 files passed its 10 s timeout.
 * DEPINFO_FILES_MAX names, listed by three rules as rustc does for three outputs (lines of 64
 * names), must come back once each and in order; one name more is -E2BIG. */
static char *many_files_text(unsigned n, size_t *len)
{
	static const char *const targets[] = { "o/x.d:", "o/libx.rmeta:", "o/libx.rlib:" };
	size_t cap = 3 * ((size_t)n * 16 + (n / 64 + 1) * 16) + 64, used = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	for (unsigned t = 0; t < 3; t++)
		for (unsigned i = 0; i < n; i++) {
			if (i % 64 == 0)
				used += (size_t)snprintf(text + used, cap - used, "%s%s",
							 t || i ? "\n" : "", targets[t]);
			used += (size_t)snprintf(text + used, cap - used, " src/m%06u.rs", i);
			ck_assert_uint_lt(used, cap);
		}
	text[used++] = '\n';
	*len = used;
	return text;
}

START_TEST(test_depinfo_many_files)
{
	struct depinfo d;
	char name[32];
	size_t len;
	char *text = many_files_text(DEPINFO_FILES_MAX, &len);

	ck_assert_int_eq(depinfo_parse(text, len, &d), 0);
	ck_assert_uint_eq(d.n_files, DEPINFO_FILES_MAX);
	for (unsigned i = 0; i < DEPINFO_FILES_MAX; i++) {
		snprintf(name, sizeof(name), "src/m%06u.rs", i);
		ck_assert_str_eq(d.files[i], name);
	}
	depinfo_release(&d);
	free(text);

	text = many_files_text(DEPINFO_FILES_MAX + 1, &len);
	ck_assert_int_eq(depinfo_parse(text, len, &d), -E2BIG);
	ck_assert_uint_eq(d.n_files, 0);
	ck_assert_ptr_null(d.files);
	free(text);
}
END_TEST

#include <sys/resource.h>

/* Regression: each name got an allocation the size of the rest of its line, so one rule of
 * 65536 names (720 KB) asked for about 23 GB and the fuzzer stopped at its 2 GB RSS limit.
 * The peak resident size may grow by far less than that while such a rule is parsed. */
START_TEST(test_depinfo_long_rule)
{
	struct rusage before, after;
	struct depinfo d;
	size_t cap = (size_t)DEPINFO_FILES_MAX * 16 + 32, used = 0;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	used += (size_t)snprintf(text, cap, "o/x.d:");
	for (unsigned i = 0; i < DEPINFO_FILES_MAX; i++)
		used += (size_t)snprintf(text + used, cap - used, " a\\ b/f%06u.rs", i);
	ck_assert_uint_lt(used, cap);
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &before), 0);
	ck_assert_int_eq(depinfo_parse(text, used, &d), 0);
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &after), 0);
	ck_assert_uint_eq(d.n_files, DEPINFO_FILES_MAX);
	ck_assert_str_eq(d.files[0], "a b/f000000.rs");
	ck_assert_str_eq(d.files[DEPINFO_FILES_MAX - 1], "a b/f065535.rs");
	/* ru_maxrss is in KiB. */
	ck_assert_int_lt(after.ru_maxrss - before.ru_maxrss, 256 * 1024);
	depinfo_release(&d);
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("depinfo");
	TCase *tc = tcase_create("depinfo");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_depinfo_sample);
	tcase_add_test(tc, test_depinfo_malformed);
	tcase_add_test(tc, test_normalise);
	tcase_add_test(tc, test_map);
	tcase_add_test(tc, test_depinfo_many_files);
	tcase_add_test(tc, test_depinfo_long_rule);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
