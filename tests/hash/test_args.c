/* Unit tests for hash/args: every recorded cargo invocation, and each command-line form. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hash/args.h"

static int parse(struct rustc_args *a, const char *const *argv)
{
	int n = 0;
	while (argv[n])
		n++;
	return rustc_args_parse(a, n, (char *const *)argv);
}

/* Parse every invocation of a recorded `cargo build -v`; return how many were cacheable. */
static void check_recorded(const char *name, int expect_cacheable)
{
	char path[4096];
	const char *srcdir = getenv("top_srcdir");
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int total = 0, cacheable = 0, lib_plain = 0;

	snprintf(path, sizeof(path), "%s/tests/data/%s", srcdir ? srcdir : ".", name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (getline(&line, &cap, f) > 0) {
		json_error_t err;
		json_t *inv = json_loads(line, 0, &err), *argv;
		struct rustc_args a;
		char **v;
		size_t n, i;
		int incremental = 0, lib = 0, links = 0, probe = 0;

		ck_assert_msg(inv != NULL, "%s: %s", name, err.text);
		argv = json_object_get(inv, "argv");
		n = json_array_size(argv);
		ck_assert_uint_gt(n, 1);
		v = calloc(n, sizeof(*v));
		for (i = 0; i < n; i++) {
			v[i] = (char *)json_string_value(json_array_get(argv, i));
			if (strstr(v[i], "incremental="))
				incremental = 1;
			/* a build script's probe: a crate root on stdin */
			if (strcmp(v[i], "-") == 0)
				probe = 1;
			if ((i > 0 && strcmp(v[i - 1], "--crate-type") == 0 && strcmp(v[i], "lib") == 0)
			    || strcmp(v[i], "--crate-type=lib") == 0)
				lib = 1;
			if (i > 0 && strcmp(v[i - 1], "--crate-type") == 0
			    && (strcmp(v[i], "bin") == 0 || strcmp(v[i], "proc-macro") == 0))
				links = 1;
		}
		ck_assert_int_eq(rustc_args_parse(&a, (int)n - 1, v + 1), 0);
		/* The parser understands every form cargo wrote. */
		ck_assert_msg(a.reason != RUSTC_NC_UNKNOWN_FLAG && a.reason != RUSTC_NC_MALFORMED,
			      "%s line %d: %s (%s)", name, total + 1, rustc_reason_name(a.reason), a.reason_detail);
		if ((lib || links) && !incremental && !probe) {
			lib_plain++;
			ck_assert_msg(a.reason == RUSTC_CACHEABLE, "%s line %d: unit not cacheable: %s", name,
				      total + 1, a.reason_detail);
			ck_assert_uint_eq(!!(a.crate_types & RUSTC_CRATE_LINKS), links);
			ck_assert_ptr_nonnull(a.crate_name);
			ck_assert_ptr_nonnull(a.out_dir);
			ck_assert_int_ge(a.input_index, 0);
		}
		if (incremental)
			ck_assert_int_ne(a.reason, RUSTC_CACHEABLE);
		if (a.reason == RUSTC_CACHEABLE)
			cacheable++;
		rustc_args_release(&a);
		free(v);
		json_decref(inv);
		total++;
	}
	free(line);
	fclose(f);
	ck_assert_int_gt(total, 50);
	ck_assert_int_eq(cacheable, lib_plain);
	ck_assert_int_eq(cacheable, expect_cacheable);
}

/* Every lib, proc-macro, build script and binary cargo ran, except incremental ones. */
START_TEST(test_recorded_debug) { check_recorded("invocations-debug.jsonl", 74); }
END_TEST
START_TEST(test_recorded_release) { check_recorded("invocations-release.jsonl", 79); }
END_TEST

START_TEST(test_forms)
{
	struct rustc_args a;
	const char *argv[] = { "--crate-name", "foo", "--edition=2021", "src/lib.rs", "--crate-type", "lib",
		"--emit=dep-info,metadata,link", "-Copt-level=3", "-C", "metadata=abc", "--extern",
		"priv:bar=/t/debug/deps/libbar.rmeta", "--extern", "proc_macro", "-L",
		"dependency=/t/debug/deps", "-Lnative=/x", "--cfg", "feature=\"std\"", "--check-cfg",
		"cfg(docsrs)", "--json=artifacts", "--error-format=json", "--target", "spec.json",
		"--out-dir", "/t/debug/deps", "-Awarnings", "--cap-lints", "allow", NULL };
	ck_assert_int_eq(parse(&a, argv), 0);
	ck_assert_int_eq(a.reason, RUSTC_CACHEABLE);
	ck_assert_str_eq(a.crate_name, "foo");
	ck_assert_str_eq(a.out_dir, "/t/debug/deps");
	ck_assert_str_eq(a.dep_dir, "/t/debug/deps");
	ck_assert_str_eq(a.target, "spec.json");
	ck_assert_int_eq(a.input_index, 3);
	ck_assert_uint_eq(a.emit, RUSTC_EMIT_LINK | RUSTC_EMIT_METADATA | RUSTC_EMIT_DEP_INFO);
	ck_assert_uint_eq(a.n_externs, 2);
	ck_assert_str_eq(a.externs[0].name, "bar");
	ck_assert_str_eq(a.externs[0].path, "/t/debug/deps/libbar.rmeta");
	ck_assert_str_eq(a.externs[1].name, "proc_macro");
	ck_assert_ptr_null(a.externs[1].path);
	rustc_args_release(&a);
}
END_TEST

static enum rustc_reason reason_of(const char *const *argv)
{
	struct rustc_args a;
	enum rustc_reason r;
	ck_assert_int_eq(parse(&a, argv), 0);
	r = a.reason;
	rustc_args_release(&a);
	return r;
}

START_TEST(test_reasons)
{
#define BASE "--crate-name", "x", "--crate-type", "lib", "--out-dir", "/o"
	const char *inc[] = { BASE, "a.rs", "-C", "incremental=/i", NULL };
	const char *inc2[] = { BASE, "a.rs", "-Cincremental=/i", NULL };
	const char *stdin_[] = { BASE, "-", NULL };
	const char *emit[] = { BASE, "a.rs", "--emit=asm", NULL };
	const char *emitpath[] = { BASE, "a.rs", "--emit=link=/x/y.rlib", NULL };
	const char *bin[] = { "--crate-name", "x", "--crate-type", "bin", "--out-dir", "/o", "a.rs", NULL };
	const char *pm[] = { "--crate-name", "x", "--crate-type", "proc-macro", "--out-dir", "/o", "a.rs", NULL };
#define BIN "--crate-name", "x", "--crate-type", "bin", "--out-dir", "/o", "a.rs"
	const char *staticlib[] = { "--crate-name", "x", "--crate-type", "staticlib", "--out-dir", "/o", "a.rs", NULL };
	const char *badtype[] = { "--crate-name", "x", "--crate-type", "sharedlib", "--out-dir", "/o", "a.rs", NULL };
	const char *bin_linker[] = { BIN, "-C", "linker=/opt/cc", NULL };
	const char *lib_linker[] = { BASE, "a.rs", "-C", "linker=/opt/cc", NULL };
	const char *bin_flavor[] = { BIN, "-Clinker-flavor=gnu-lld-cc", NULL };
	const char *bin_self_contained[] = { BIN, "-C", "link-self-contained=y", NULL };
	const char *bin_rpath[] = { BIN, "-C", "link-arg=-Wl,-rpath,/opt/lib", NULL };
	const char *bin_argfile[] = { BIN, "-C", "link-args=-Wl,--as-needed @args.txt", NULL };
	const char *bin_plain_arg[] = { BIN, "-C", "link-arg=-Wl,--as-needed", NULL };
	const char *pm_crt_static[] = { "--crate-name", "x", "--crate-type", "proc-macro", "--out-dir", "/o", "a.rs",
		"-C", "target-feature=+crt-static", NULL };
	const char *bin_split[] = { BIN, "-C", "split-debuginfo=unpacked", NULL };
	const char *bin_split_off[] = { BIN, "-C", "split-debuginfo=off", NULL };
	const char *lib_native[] = { BASE, "a.rs", "-l", "static=foo", NULL };
	const char *bin_native[] = { BIN, "-l", "dylib=foo", "-L", "native=/n", NULL };
	const char *unknown[] = { BASE, "a.rs", "--frobnicate", NULL };
	const char *none[] = { BASE, NULL };
	const char *two[] = { BASE, "a.rs", "b.rs", NULL };
	const char *query[] = { "-vV", NULL };
	const char *print[] = { "-", "--print=cfg", NULL };
	const char *output[] = { BASE, "a.rs", "-o", "/x", NULL };
	const char *noout[] = { "--crate-name", "x", "--crate-type", "lib", "a.rs", NULL };
	const char *missing[] = { BASE, "a.rs", "--cfg", NULL };
	const char *badl[] = { BASE, "a.rs", "-L", "bogus=/x", NULL };
	const char *test[] = { BASE, "a.rs", "--test", NULL };
	const char *z[] = { BASE, "a.rs", "-Zunstable-options", NULL };
	ck_assert_int_eq(reason_of(inc), RUSTC_NC_INCREMENTAL);
	ck_assert_int_eq(reason_of(inc2), RUSTC_NC_INCREMENTAL);
	ck_assert_int_eq(reason_of(stdin_), RUSTC_NC_STDIN);
	ck_assert_int_eq(reason_of(emit), RUSTC_NC_EMIT);
	ck_assert_int_eq(reason_of(emitpath), RUSTC_NC_OUTPUT_FILE);
	ck_assert_int_eq(reason_of(bin), RUSTC_CACHEABLE);
	ck_assert_int_eq(reason_of(pm), RUSTC_CACHEABLE);
	ck_assert_int_eq(reason_of(staticlib), RUSTC_NC_CRATE_TYPE);
	ck_assert_int_eq(reason_of(badtype), RUSTC_NC_MALFORMED);
	/* What the link tree cannot reproduce refuses a unit that links, and only such a unit. */
	ck_assert_int_eq(reason_of(bin_linker), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(lib_linker), RUSTC_CACHEABLE);
	ck_assert_int_eq(reason_of(bin_flavor), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_self_contained), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_rpath), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_argfile), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_plain_arg), RUSTC_CACHEABLE);
	ck_assert_int_eq(reason_of(pm_crt_static), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_split), RUSTC_NC_LINK);
	ck_assert_int_eq(reason_of(bin_split_off), RUSTC_CACHEABLE);
	/* -l: a lib would bundle it (not cached); a link unit resolves it in the invocation. */
	ck_assert_int_eq(reason_of(lib_native), RUSTC_NC_UNSUPPORTED);
	ck_assert_int_eq(reason_of(bin_native), RUSTC_CACHEABLE);
	ck_assert_int_eq(reason_of(unknown), RUSTC_NC_UNKNOWN_FLAG);
	ck_assert_int_eq(reason_of(none), RUSTC_NC_NO_INPUT);
	ck_assert_int_eq(reason_of(two), RUSTC_NC_MULTIPLE_INPUTS);
	ck_assert_int_eq(reason_of(query), RUSTC_NC_QUERY);
	ck_assert_int_eq(reason_of(print), RUSTC_NC_STDIN);
	ck_assert_int_eq(reason_of(output), RUSTC_NC_OUTPUT_FILE);
	ck_assert_int_eq(reason_of(noout), RUSTC_NC_NO_OUT_DIR);
	ck_assert_int_eq(reason_of(missing), RUSTC_NC_MALFORMED);
	ck_assert_int_eq(reason_of(badl), RUSTC_NC_MALFORMED);
	ck_assert_int_eq(reason_of(test), RUSTC_NC_CRATE_TYPE);
	ck_assert_int_eq(reason_of(z), RUSTC_NC_UNSUPPORTED);
	ck_assert_str_eq(rustc_reason_name(RUSTC_NC_INCREMENTAL), "incremental");
	ck_assert_str_eq(rustc_reason_name((enum rustc_reason)999), "unknown");
#undef BASE
}
END_TEST

START_TEST(test_argfile)
{
	char path[] = "/tmp/cachepot-argfile-XXXXXX";
	char at[64];
	int fd = mkstemp(path);
	static const char body[] = "--crate-name\r\nfoo\n--crate-type\nlib\n--out-dir\n/o\nsrc/lib.rs\n";
	struct rustc_args a;
	const char *argv[] = { at, "--cfg", "x", NULL };
	const char *gone[] = { "@/nonexistent/cachepot-argfile", NULL };

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	close(fd);
	snprintf(at, sizeof(at), "@%s", path);
	ck_assert_int_eq(parse(&a, argv), 0);
	ck_assert_int_eq(a.reason, RUSTC_CACHEABLE);
	ck_assert_uint_eq(a.argc, 9);
	ck_assert_str_eq(a.argv[1], "foo");
	ck_assert_str_eq(a.crate_name, "foo");
	ck_assert_str_eq(a.argv[8], "x");
	rustc_args_release(&a);
	unlink(path);
	ck_assert_int_eq(reason_of(gone), RUSTC_NC_MALFORMED);
}
END_TEST

START_TEST(test_argfile_split_bounds)
{
	char **list = NULL;
	size_t n = 0;
	size_t len = (size_t)RUSTC_ARGS_MAX + 10;
	char *many = malloc(len * 2);
	for (size_t i = 0; i < len; i++) {
		many[2 * i] = 'a';
		many[2 * i + 1] = '\n';
	}
	ck_assert_int_eq(rustc_argfile_split(many, len * 2, &list, &n), -E2BIG);
	ck_assert_uint_eq(n, RUSTC_ARGS_MAX);
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(many);
	list = NULL;
	n = 0;
	ck_assert_int_eq(rustc_argfile_split("", 0, &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(list);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("args");
	TCase *tc = tcase_create("args");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_recorded_debug);
	tcase_add_test(tc, test_recorded_release);
	tcase_add_test(tc, test_forms);
	tcase_add_test(tc, test_reasons);
	tcase_add_test(tc, test_argfile);
	tcase_add_test(tc, test_argfile_split_bounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
