/* Unit tests for hash/c_args: the command lines the cc crate writes, each option's role, and
 * every reason a C or C++ command line is not cached. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash/c_args.h"

static int parse(struct c_args *a, const char *const *argv)
{
	int n = 0;
	while (argv[n])
		n++;
	return c_args_parse(a, n, (char *const *)argv);
}

/* The index of ARG in A's argv, -1 when absent. */
static int index_of(const struct c_args *a, const char *arg)
{
	for (size_t i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], arg) == 0)
			return (int)i;
	return -1;
}

START_TEST(test_cc_crate_lines)
{
	/* cc 1.0.73's debug build of a C file, and its C++ build, as cargo -vv shows them. */
	static const char *const c_line[] = { "-O0", "-ffunction-sections", "-fdata-sections", "-fPIC", "-g",
		"-fno-omit-frame-pointer", "-m64", "-I", "csrc", "-Wall", "-Wextra", "-o",
		"/w/target/debug/build/cc-demo-1/out/csrc/squares.o", "-c", "csrc/squares.c", NULL };
	static const char *const cxx_line[] = { "-O3", "-ffunction-sections", "-fdata-sections", "-fPIC", "-gdwarf-4",
		"-fno-omit-frame-pointer", "-m64", "-Icsrc", "-DNDEBUG", "-DVERSION=\"1\"", "-std=c++17", "-Wall",
		"-o", "out/triangle.o", "-c", "csrc/triangle.cpp", NULL };
	struct c_args a;

	ck_assert_int_eq(parse(&a, c_line), 0);
	ck_assert_msg(a.reason == C_CACHEABLE, "%s: %s", c_reason_name(a.reason), a.reason_detail);
	ck_assert_str_eq(a.source, "csrc/squares.c");
	ck_assert_int_eq(a.source_index, 14);
	ck_assert_str_eq(a.output, "/w/target/debug/build/cc-demo-1/out/csrc/squares.o");
	ck_assert_int_eq(a.language, C_LANG_C);
	ck_assert_int_eq(a.depfile, 0);
	ck_assert_int_eq(a.roles[index_of(&a, "-O0")], C_ROLE_BOTH);
	ck_assert_int_eq(a.roles[index_of(&a, "-g")], C_ROLE_BOTH);
	ck_assert_int_eq(a.roles[index_of(&a, "-I")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "csrc")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "-o")], C_ROLE_DRIVER);
	ck_assert_int_eq(a.roles[index_of(&a, "-o") + 1], C_ROLE_DRIVER);
	ck_assert_int_eq(a.roles[index_of(&a, "-c")], C_ROLE_DRIVER);
	ck_assert_int_eq(a.roles[a.source_index], C_ROLE_DRIVER);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, cxx_line), 0);
	ck_assert_msg(a.reason == C_CACHEABLE, "%s: %s", c_reason_name(a.reason), a.reason_detail);
	ck_assert_int_eq(a.language, C_LANG_CXX);
	ck_assert_int_eq(a.roles[index_of(&a, "-Icsrc")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "-DNDEBUG")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "-std=c++17")], C_ROLE_BOTH);
	c_args_release(&a);
}
END_TEST

START_TEST(test_forms)
{
	static const char *const depfile[] = { "-MD", "-MF", "dep.d", "-MT", "obj", "-MP", "-c", "x.c", "-oout.o",
		NULL };
	static const char *const mmd[] = { "-MMD", "-c", "x.cc", "-o", "x.o", NULL };
	static const char *const x_lang[] = { "-x", "c++", "-c", "x.c", "-o", "x.o", NULL };
	static const char *const x_after[] = { "-c", "x.c", "-xc++", "-o", "x.o", NULL };
	static const char *const x_none[] = { "-x", "c++", "-x", "none", "-c", "x.c", "-o", "x.o", NULL };
	static const char *const include[] = { "-include", "config.h", "-isystem", "/opt/inc", "-iquote", "q",
		"-isysroot", "/sr", "--sysroot=/sr", "-UFOO", "-D", "BAR=1", "-c", "x.c", "-o", "x.o", NULL };
	static const char *const compile_valued[] = { "--param", "max-inline-insns-single=10", "--param=l1-cache-size=32",
		"-target", "x86_64-linux-gnu", "-Wa,--noexecstack", "-pthread", "-c", "x.c", "-o", "x.o", NULL };
	struct c_args a;

	ck_assert_int_eq(parse(&a, depfile), 0);
	ck_assert_msg(a.reason == C_CACHEABLE, "%s: %s", c_reason_name(a.reason), a.reason_detail);
	ck_assert_int_eq(a.depfile, 1);
	ck_assert_int_eq(a.depfile_named, 1);
	ck_assert_int_eq(a.depfile_target_named, 1);
	ck_assert_str_eq(a.output, "out.o");
	ck_assert_int_eq(a.roles[index_of(&a, "dep.d")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "obj")], C_ROLE_PREPROCESS);
	ck_assert_int_eq(a.roles[index_of(&a, "-MP")], C_ROLE_PREPROCESS);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, mmd), 0);
	ck_assert_int_eq(a.reason, C_CACHEABLE);
	ck_assert_int_eq(a.depfile, 1);
	ck_assert_int_eq(a.depfile_named, 0);
	ck_assert_int_eq(a.language, C_LANG_CXX);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, x_lang), 0);
	ck_assert_int_eq(a.reason, C_CACHEABLE);
	ck_assert_int_eq(a.language, C_LANG_CXX);
	ck_assert_int_eq(a.roles[index_of(&a, "-x")], C_ROLE_DRIVER);
	ck_assert_int_eq(a.roles[index_of(&a, "c++")], C_ROLE_DRIVER);
	c_args_release(&a);

	/* -x applies to the sources after it only */
	ck_assert_int_eq(parse(&a, x_after), 0);
	ck_assert_int_eq(a.reason, C_CACHEABLE);
	ck_assert_int_eq(a.language, C_LANG_C);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, x_none), 0);
	ck_assert_int_eq(a.language, C_LANG_C);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, include), 0);
	ck_assert_msg(a.reason == C_CACHEABLE, "%s: %s", c_reason_name(a.reason), a.reason_detail);
	for (size_t i = 0; i < 12; i++)
		ck_assert_msg(a.roles[i] == C_ROLE_PREPROCESS, "argument %zu (%s)", i, a.argv[i]);
	c_args_release(&a);

	ck_assert_int_eq(parse(&a, compile_valued), 0);
	ck_assert_msg(a.reason == C_CACHEABLE, "%s: %s", c_reason_name(a.reason), a.reason_detail);
	for (size_t i = 0; i < 7; i++)
		ck_assert_msg(a.roles[i] == C_ROLE_BOTH, "argument %zu (%s)", i, a.argv[i]);
	c_args_release(&a);
}
END_TEST

/* Each command line and the reason it is not cached. */
START_TEST(test_reasons)
{
	static const struct {
		const char *argv[12];
		enum c_reason reason;
	} cases[] = {
		{ { "-E", "x.c", "-o", "x.i", NULL }, C_NC_PREPROCESS_ONLY },
		{ { "-M", "x.c", NULL }, C_NC_PREPROCESS_ONLY },
		{ { "-MM", "-c", "x.c", "-o", "x.o", NULL }, C_NC_PREPROCESS_ONLY },
		{ { "x.c", "-o", "x", NULL }, C_NC_NOT_COMPILE },
		{ { "--version", NULL }, C_NC_UNKNOWN_FLAG },
		{ { "-S", "x.c", "-o", "x.s", NULL }, C_NC_NOT_COMPILE },
		{ { "-c", "x.c", "y.c", NULL }, C_NC_MULTIPLE_SOURCES },
		{ { "-c", "x.c", "y.o", "-o", "z.o", NULL }, C_NC_MULTIPLE_SOURCES },
		{ { "-c", "-o", "x.o", NULL }, C_NC_NO_SOURCE },
		{ { "-x", "c", "-c", "-", "-o", "x.o", NULL }, C_NC_STDIN },
		{ { "-march=native", "-c", "x.c", "-o", "x.o", NULL }, C_NC_NATIVE },
		{ { "-mtune=native", "-c", "x.c", "-o", "x.o", NULL }, C_NC_NATIVE },
		{ { "-mcpu=native", "-c", "x.c", "-o", "x.o", NULL }, C_NC_NATIVE },
		{ { "-frobnicate-nothing", "-c", "x.c", "-o", "x.o", NULL }, C_CACHEABLE },
		{ { "-Zsomething", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNKNOWN_FLAG },
		{ { "-P", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNKNOWN_FLAG },
		{ { "-L", "/lib", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNKNOWN_FLAG },
		{ { "-save-temps", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-gsplit-dwarf", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-g3", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "--coverage", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-fprofile-use", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-fdebug-prefix-map=/a=/b", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-B", "/opt/gcc", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-specs=/x.specs", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-fplugin=/x.so", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-Wp,-MD,x.d", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-Xclang", "-foo", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "@args", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-v", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-fsanitize-blacklist=/etc/x", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "--param", "a=/b", "-c", "x.c", "-o", "x.o", NULL }, C_NC_UNSUPPORTED },
		{ { "-c", "x.s", "-o", "x.o", NULL }, C_NC_LANGUAGE },
		{ { "-c", "x.S", "-o", "x.o", NULL }, C_NC_LANGUAGE },
		{ { "-c", "x.i", "-o", "x.o", NULL }, C_NC_LANGUAGE },
		{ { "-x", "assembler", "-c", "x.c", "-o", "x.o", NULL }, C_NC_LANGUAGE },
		{ { "-c", "x.c", NULL }, C_NC_NO_OUTPUT },
		{ { "-c", "x.c", "-o", NULL }, C_NC_MALFORMED },
		{ { "-c", "x.c", "-o", "x.o", "-I", NULL }, C_NC_MALFORMED },
		{ { "-c", "x.c", "-o", "x.o", "-x", NULL }, C_NC_MALFORMED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct c_args a;
		ck_assert_int_eq(parse(&a, cases[i].argv), 0);
		ck_assert_msg(a.reason == cases[i].reason, "case %zu (%s ...): %s (%s), expected %s", i,
			      cases[i].argv[0], c_reason_name(a.reason), a.reason_detail,
			      c_reason_name(cases[i].reason));
		if (a.reason != C_CACHEABLE)
			ck_assert_msg(a.reason_detail[0] != '\0', "case %zu has no detail", i);
		c_args_release(&a);
	}
}
END_TEST

START_TEST(test_names)
{
	for (int r = 0; r < C_REASON_COUNT; r++) {
		const char *name = c_reason_name((enum c_reason)r);
		ck_assert_ptr_nonnull(name);
		ck_assert_str_ne(name, "unknown");
		for (int s = 0; s < r; s++)
			ck_assert_str_ne(name, c_reason_name((enum c_reason)s));
	}
	ck_assert_str_eq(c_reason_name(C_REASON_COUNT), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("c_args");
	TCase *tc = tcase_create("c_args");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_cc_crate_lines);
	tcase_add_test(tc, test_forms);
	tcase_add_test(tc, test_reasons);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
