/* Unit tests for client/compiler: the PATH search and what a program is taken for. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/compiler.h"

static char dir[] = "/tmp/cachepot-compiler-XXXXXX";

static void make_file(const char *name, mode_t mode)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void make_link(const char *target, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(symlink(target, path), 0);
}

static void make_dir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_dir("a");
	make_dir("b");
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(dir, sizeof(dir), "%s", "/tmp/cachepot-compiler-XXXXXX");
}

/* The kind NAME is taken for when it is no file at all (no link to follow) and has ARG. */
static enum compiler_kind kind_of(const char *name, const char *arg)
{
	char *argv[] = { (char *)arg, NULL };
	return compiler_identify(name, "/nonexistent/cachepot-test", arg ? 1 : 0, argv);
}

START_TEST(test_driver_names)
{
	static const char *const c_names[] = {
		"cc", "c++", "gcc", "g++", "clang", "clang++", "gcc-12", "g++-12", "clang-15",
		"clang++-14.0", "gcc12", "x86_64-linux-gnu-gcc-12", "aarch64-linux-gnu-g++", "musl-gcc",
		"/usr/bin/cc", "/opt/llvm/bin/clang++",
	};
	static const char *const other_names[] = {
		"gcc-ar", "clang-tidy", "c++filt", "ccache", "xcc", "gccx", "gcc-", "gcc-x12", "ld",
		"rustup", "cargo", "sh", "",
	};

	for (size_t i = 0; i < sizeof(c_names) / sizeof(c_names[0]); i++)
		ck_assert_msg(kind_of(c_names[i], NULL) == COMPILER_C, "%s", c_names[i]);
	for (size_t i = 0; i < sizeof(other_names) / sizeof(other_names[0]); i++)
		ck_assert_msg(kind_of(other_names[i], NULL) == COMPILER_OTHER, "%s", other_names[i]);
	ck_assert(kind_of("rustc", NULL) == COMPILER_RUSTC);
	ck_assert(kind_of("/root/.rustup/toolchains/stable/bin/rustc", NULL) == COMPILER_RUSTC);
	ck_assert(kind_of("rustc-1.63", NULL) == COMPILER_RUSTC);
	ck_assert(kind_of("clippy-driver", NULL) == COMPILER_RUSTC);
	ck_assert(kind_of("rustcx", NULL) == COMPILER_OTHER);
}
END_TEST

START_TEST(test_arguments)
{
	/* Unknown names called the way cargo calls rustc are a rustc; a C driver never is. */
	ck_assert(kind_of("my-rustc-wrapper", "-vV") == COMPILER_RUSTC);
	ck_assert(kind_of("my-rustc-wrapper", "--crate-name") == COMPILER_RUSTC);
	ck_assert(kind_of("my-rustc-wrapper", "--print=cfg") == COMPILER_RUSTC);
	ck_assert(kind_of("my-rustc-wrapper", "-c") == COMPILER_OTHER);
	ck_assert(kind_of("my-rustc-wrapper", "--print-file-name=libc.so") == COMPILER_OTHER);
	ck_assert(kind_of("gcc", "--print") == COMPILER_C);
}
END_TEST

START_TEST(test_symlink_chain)
{
	char path[PATH_MAX];

	/* /usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc -> gcc-12 -> x86_64-linux-gnu-gcc-12,
	 * under names that say nothing until the end; one hop absolute, the others relative. */
	make_file("b/x86_64-linux-gnu-gcc-12", 0755);
	make_link("../b/x86_64-linux-gnu-gcc-12", "a/tool");
	snprintf(path, sizeof(path), "%s/a/tool", dir);
	make_link(path, "a/alias");
	make_link("alias", "a/front");
	snprintf(path, sizeof(path), "%s/a/front", dir);
	ck_assert(compiler_identify("front", path, 0, NULL) == COMPILER_C);
	/* A ccache masquerade: the link is named for the driver, the file is ccache. */
	make_file("b/ccache", 0755);
	make_link("../b/ccache", "a/gcc");
	snprintf(path, sizeof(path), "%s/a/gcc", dir);
	ck_assert(compiler_identify(path, path, 0, NULL) == COMPILER_C);
	/* A rustup proxy: rustc -> rustup. */
	make_file("b/rustup", 0755);
	make_link("../b/rustup", "a/rustc");
	snprintf(path, sizeof(path), "%s/a/rustc", dir);
	ck_assert(compiler_identify(path, path, 0, NULL) == COMPILER_RUSTC);
	/* A loop ends the walk without an answer. */
	make_link("loop2", "a/loop1");
	make_link("loop1", "a/loop2");
	snprintf(path, sizeof(path), "%s/a/loop1", dir);
	ck_assert(compiler_identify(path, path, 0, NULL) == COMPILER_OTHER);
}
END_TEST

START_TEST(test_find)
{
	char path[PATH_MAX], want[PATH_MAX], search[2 * PATH_MAX + 2];
	char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

	make_file("a/tool", 0644);
	make_file("b/tool", 0755);
	make_file("a/only-a", 0644);
	make_dir("a/dir-tool");
	make_file("b/dir-tool", 0755);
	snprintf(search, sizeof(search), "%s/a:%s/b", dir, dir);
	setenv("PATH", search, 1);

	/* The first executable regular file wins; a non-executable one or a directory is skipped. */
	ck_assert_int_eq(compiler_find("tool", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/b/tool", dir);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(compiler_find("dir-tool", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/b/dir-tool", dir);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(compiler_find("only-a", path, sizeof(path)), -EACCES);
	ck_assert_int_eq(compiler_find("nowhere", path, sizeof(path)), -ENOENT);
	ck_assert_int_eq(compiler_find("", path, sizeof(path)), -ENOENT);
	/* A name with a '/' is not searched for. */
	ck_assert_int_eq(compiler_find("./tool", path, sizeof(path)), 0);
	ck_assert_str_eq(path, "./tool");
	ck_assert_int_eq(compiler_find("/x/y", path, 4), -ENAMETOOLONG);
	/* An empty entry is the current directory. */
	snprintf(search, sizeof(search), "%s/a:", dir);
	setenv("PATH", search, 1);
	snprintf(want, sizeof(want), "%s/b", dir);
	ck_assert_int_eq(chdir(want), 0);
	ck_assert_int_eq(compiler_find("tool", path, sizeof(path)), 0);
	ck_assert_str_eq(path, "tool");
	ck_assert_int_eq(chdir("/"), 0);
	/* No PATH: /bin:/usr/bin, as execvp has it. */
	unsetenv("PATH");
	ck_assert_int_eq(compiler_find("sh", path, sizeof(path)), 0);
	ck_assert_str_eq(path, "/bin/sh");
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compiler");
	TCase *tc = tcase_create("compiler");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_driver_names);
	tcase_add_test(tc, test_arguments);
	tcase_add_test(tc, test_symlink_chain);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
