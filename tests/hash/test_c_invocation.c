/* Unit tests for hash/c_invocation: line markers mapped onto the canonical roots, and a real
 * compile's job with the host's cc: its argv, its one input (the preprocessed unit), the depfile
 * written here with local paths, and the same key for a copy of the sources at another path. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "hash/c_invocation.h"

extern char **environ;

START_TEST(test_line_markers)
{
	static const char text[] =
		"# 0 \"/home/me/ws/csrc/x.c\"\n"
		"# 0 \"/home/me/ws//\"\n"
		"# 1 \"/home/me/ws/csrc/x.h\" 1\n"
		"# 1 \"/home/me/wsother/y.h\" 1\n"
		"# 1 \"/usr/include/stdio.h\" 1 3 4\n"
		"#line 7 \"/home/me/target/debug/build/out/gen.h\"\n"
		"# 3 \"csrc/x.c\"\n"
		"const char *f = \"/home/me/ws/csrc/x.c\";\n"
		"# 9 \"/home/me/ws\"\n"
		"#define X \"/home/me/ws/x\"\n"
		"# 2 \"/home/me/ws/a\\\"b.h\" 2";
	static const char want[] =
		"# 0 \"/cachepot/cwd/csrc/x.c\"\n"
		"# 0 \"/cachepot/cwd//\"\n"
		"# 1 \"/cachepot/cwd/csrc/x.h\" 1\n"
		"# 1 \"/home/me/wsother/y.h\" 1\n"
		"# 1 \"/usr/include/stdio.h\" 1 3 4\n"
		"#line 7 \"/cachepot/target/debug/build/out/gen.h\"\n"
		"# 3 \"csrc/x.c\"\n"
		"const char *f = \"/home/me/ws/csrc/x.c\";\n"
		"# 9 \"/cachepot/cwd\"\n"
		"#define X \"/home/me/ws/x\"\n"
		"# 2 \"/cachepot/cwd/a\\\"b.h\" 2";
	struct path_map map = { 0 };
	char *out = NULL;
	size_t len = 0;

	ck_assert_int_eq(path_map_add(&map, "/home/me/target", "/cachepot/target"), 0);
	ck_assert_int_eq(path_map_add(&map, "/home/me/ws", "/cachepot/cwd"), 0);
	/* a root at / (a build run from /) is never applied to markers */
	ck_assert_int_eq(path_map_add(&map, "/", "/cachepot/root"), 0);
	ck_assert_int_eq(c_unit_map_line_markers(&map, text, sizeof(text) - 1, &out, &len), 0);
	ck_assert_str_eq(out, want);
	ck_assert_uint_eq(len, strlen(want));
	free(out);
	ck_assert_int_eq(c_unit_map_line_markers(&map, "", 0, &out, &len), 0);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(len, 0);
	free(out);
	path_map_release(&map);
}
END_TEST

static char ws[] = "/tmp/cachepot-cinv.XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Lay out a checkout at DIR (src/x.c including src/x.h through an absolute -I) and build the
 * job of compiling it there with cc, a depfile asked for; *KEY gets the key's hex. */
static void build_in(const char *dir, struct c_invocation *ci, char key[DIGEST_HEX_SIZE])
{
	char path[PATH_MAX], old[PATH_MAX], inc[PATH_MAX];
	char *argv[] = { "-O1", "-g", "-Wall", "-I", inc, "-DN=3", "-MD", "-c", "src/x.c", "-o", "out/x.o", NULL };
	struct c_invocation_options o = { .envp = environ };

	snprintf(inc, sizeof(inc), "%s/src", dir);

	snprintf(path, sizeof(path), "%s/src", dir);
	ck_assert_int_eq(path_mkdir_parents(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/out", dir);
	ck_assert_int_eq(path_mkdir_parents(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/src/x.h", dir);
	write_file(path, "int x(void);\n");
	snprintf(path, sizeof(path), "%s/src/x.c", dir);
	write_file(path, "#include <x.h>\nint x(void) { return N; }\n");
	ck_assert_ptr_nonnull(getcwd(old, sizeof(old)));
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(c_invocation_build(ci, "/usr/bin/cc", "cc", 11, argv, &o), 0);
	ck_assert_int_eq(chdir(old), 0);
	ck_assert_msg(ci->reason == C_CACHEABLE, "%s: %s", c_reason_name(ci->reason), ci->reason_detail);
	digest_to_hex(ci->inv.key, key);
}

START_TEST(test_real_compile)
{
	static const char *const want_argv[] = { ROOT_C_DRIVER, "-O1", "-g", "-Wall", "-x", "cpp-output", "-c",
		ROOT_C_UNIT "/x.i", "-o", ROOT_OUT "/x.o" };
	char a[PATH_MAX], b[PATH_MAX], dep[PATH_MAX], key_a[DIGEST_HEX_SIZE], key_b[DIGEST_HEX_SIZE];
	char *text = NULL;
	size_t len = 0;
	struct c_invocation ci;
	char unit_dir[PATH_MAX];

	ck_assert_ptr_nonnull(mkdtemp(ws));
	snprintf(a, sizeof(a), "%s/one", ws);
	snprintf(b, sizeof(b), "%s/elsewhere/two", ws);
	build_in(a, &ci, key_a);
	ck_assert_int_eq(ci.inv.job.kind, JOB_KIND_C);
	ck_assert_uint_eq(ci.inv.job.argc, sizeof(want_argv) / sizeof(want_argv[0]));
	for (size_t i = 0; i < ci.inv.job.argc; i++)
		ck_assert_str_eq(ci.inv.job.argv[i], want_argv[i]);
	ck_assert_str_eq(ci.inv.job.cwd, ROOT_CWD);
	ck_assert_uint_eq(ci.inv.job.n_inputs, 1);
	ck_assert_str_eq(ci.inv.job.inputs[0].path, ROOT_C_UNIT "/x.i");
	ck_assert_str_eq(ci.inv.job.env[0].name, "PATH");
	/* the unit: macros expanded, markers canonical, no local path left */
	ck_assert_int_eq(io_read_file_at(AT_FDCWD, ci.inv.input_local[0], 0, 1 << 24, &text, &len), 0);
	ck_assert_ptr_nonnull(strstr(text, "return 3;"));
	ck_assert_ptr_nonnull(strstr(text, "\"" ROOT_CWD "/src/x.h\""));
	ck_assert_ptr_null(strstr(text, a));
	free(text);
	/* the depfile is the preprocessor's, here, local, for the object */
	snprintf(dep, sizeof(dep), "%s/out/x.d", a);
	ck_assert_int_eq(io_read_file_at(AT_FDCWD, dep, 0, 1 << 20, &text, &len), 0);
	ck_assert_msg(strncmp(text, "out/x.o:", 8) == 0, "depfile: %s", text);
	ck_assert_ptr_nonnull(strstr(text, "src/x.h"));
	free(text);
	snprintf(dep, sizeof(dep), "%s/out", a);
	ck_assert_str_eq(ci.inv.out_dir, dep);
	snprintf(unit_dir, sizeof(unit_dir), "%s", ci.unit_dir);
	c_invocation_release(&ci);
	ck_assert_int_eq(access(unit_dir, F_OK), -1); /* removed */

	build_in(b, &ci, key_b);
	ck_assert_str_eq(key_b, key_a);
	c_invocation_release(&ci);
	snprintf(a, sizeof(a), "rm -rf '%s'", ws);
	(void)!system(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("c_invocation");
	TCase *tc = tcase_create("c_invocation");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_line_markers);
	tcase_add_test(tc, test_real_compile);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
