/* Unit tests for base/path: the component rules, and the walker refusing every way out of its
 * root (., .., empty, '/', over-long names, a symlink in the middle) while creating what is
 * missing. */
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

#include "base/path.h"

static char root[] = "/tmp/cachepot-path-XXXXXX";
static int rootfd = -1;

static void setup(void)
{
	memcpy(root, "/tmp/cachepot-path-XXXXXX", sizeof(root));
	ck_assert_ptr_nonnull(mkdtemp(root));
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(rootfd, 0);
}

static void teardown(void)
{
	char cmd[128];
	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_component)
{
	char long_name[NAME_MAX + 2];
	ck_assert(path_component_valid("a", 1));
	ck_assert(path_component_valid("...", 3));
	ck_assert(path_component_valid(".hidden", 7));
	ck_assert(!path_component_valid("", 0));
	ck_assert(!path_component_valid(".", 1));
	ck_assert(!path_component_valid("..", 2));
	ck_assert(!path_component_valid("a/b", 3));
	ck_assert(!path_component_valid("a\0b", 3));
	memset(long_name, 'x', sizeof(long_name));
	ck_assert(path_component_valid(long_name, NAME_MAX));
	ck_assert(!path_component_valid(long_name, NAME_MAX + 1));
}
END_TEST

START_TEST(test_relative_and_absolute)
{
	ck_assert(path_relative_valid("a"));
	ck_assert(path_relative_valid("a/b/c"));
	ck_assert(!path_relative_valid(""));
	ck_assert(!path_relative_valid("/a"));
	ck_assert(!path_relative_valid("a/"));
	ck_assert(!path_relative_valid("a//b"));
	ck_assert(!path_relative_valid("a/./b"));
	ck_assert(!path_relative_valid("a/../b"));
	ck_assert(!path_relative_valid(".."));
	ck_assert(path_absolute_valid("/"));
	ck_assert(path_absolute_valid("/cachepot/out"));
	ck_assert(!path_absolute_valid(NULL));
	ck_assert(!path_absolute_valid(""));
	ck_assert(!path_absolute_valid("cachepot"));
	ck_assert(!path_absolute_valid("//cachepot"));
	ck_assert(!path_absolute_valid("/cachepot/../etc"));
	ck_assert(!path_absolute_valid("/cachepot/"));
}
END_TEST

START_TEST(test_walk_creates)
{
	const char *leaf = NULL;
	struct stat st;
	int fd = -1;

	ck_assert_int_eq(path_walk(rootfd, "a/b/c", 1, &fd, &leaf), 0);
	ck_assert_str_eq(leaf, "c");
	ck_assert_int_eq(fstatat(rootfd, "a/b", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(fstatat(rootfd, "a/b/c", &st, AT_SYMLINK_NOFOLLOW), -1);
	close(fd);
	ck_assert_int_eq(path_walk(rootfd, "a/b/c", 1, &fd, NULL), 0);
	ck_assert_int_eq(fstatat(fd, ".", &st, 0), 0);
	ck_assert(S_ISDIR(st.st_mode));
	close(fd);
	/* Without CREATE a missing directory is an error. */
	ck_assert_int_eq(path_walk(rootfd, "a/x/y", 0, &fd, NULL), -ENOENT);
	ck_assert_int_eq(fd, -1);
}
END_TEST

START_TEST(test_walk_refuses_bad_names)
{
	static const char *const bad[] = { "", ".", "..", "a/..", "../a", "a/./b", "/a", "a/",
					    "a//b", "/", NULL };
	char long_name[NAME_MAX + 8];
	const char *leaf;
	int fd = 123;

	for (size_t i = 0; bad[i]; i++) {
		ck_assert_msg(path_walk(rootfd, bad[i], 1, &fd, NULL) == -EINVAL, "%s", bad[i]);
		ck_assert_int_eq(fd, -1);
		ck_assert_msg(path_walk(rootfd, bad[i], 1, &fd, &leaf) == -EINVAL, "%s", bad[i]);
	}
	memset(long_name, 'x', sizeof(long_name));
	long_name[0] = 'a';
	long_name[1] = '/';
	long_name[sizeof(long_name) - 1] = '\0';   /* a/ then NAME_MAX + 5 x */
	ck_assert_int_eq(path_walk(rootfd, long_name, 1, &fd, NULL), -EINVAL);
	/* Nothing was created by the refused walks, not even the valid prefix "a". */
	ck_assert_int_eq(faccessat(rootfd, "a", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}
END_TEST

START_TEST(test_walk_depth)
{
	char deep[2 * (PATH_DEPTH_MAX + 1) + 1];
	int fd = -1;

	for (size_t i = 0; i < PATH_DEPTH_MAX; i++)
		memcpy(deep + 2 * i, "d/", 2);
	deep[2 * PATH_DEPTH_MAX - 1] = '\0';        /* PATH_DEPTH_MAX components */
	ck_assert_int_eq(path_walk(rootfd, deep, 1, &fd, NULL), 0);
	close(fd);
	deep[2 * PATH_DEPTH_MAX - 1] = '/';
	deep[2 * PATH_DEPTH_MAX] = 'd';
	deep[2 * PATH_DEPTH_MAX + 1] = '\0';        /* one more */
	ck_assert_int_eq(path_walk(rootfd, deep, 1, &fd, NULL), -EINVAL);
}
END_TEST

START_TEST(test_walk_refuses_symlink_and_file)
{
	struct stat st;
	int fd = -1, r;

	ck_assert_int_eq(mkdirat(rootfd, "outside", 0755), 0);
	ck_assert_int_eq(mkdirat(rootfd, "a", 0755), 0);
	ck_assert_int_eq(symlinkat("../outside", rootfd, "a/link"), 0);
	r = path_walk(rootfd, "a/link/b", 1, &fd, NULL);
	ck_assert_msg(r == -ELOOP || r == -ENOTDIR, "got %d", r);
	ck_assert_int_eq(fd, -1);
	r = path_walk(rootfd, "a/link/b", 1, &fd, NULL);
	ck_assert_msg(r == -ELOOP || r == -ENOTDIR, "got %d", r);
	/* The symlink's target got nothing. */
	ck_assert_int_eq(fstatat(rootfd, "outside/b", &st, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* A symlink as the leaf is the caller's to open (with O_NOFOLLOW): the walk stops before. */
	const char *leaf = NULL;
	ck_assert_int_eq(path_walk(rootfd, "a/link", 0, &fd, &leaf), 0);
	ck_assert_str_eq(leaf, "link");
	close(fd);

	r = openat(rootfd, "a/file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ge(r, 0);
	close(r);
	ck_assert_int_eq(path_walk(rootfd, "a/file/b", 1, &fd, NULL), -ENOTDIR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("path");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_component);
	tcase_add_test(tc, test_relative_and_absolute);
	tcase_add_test(tc, test_walk_creates);
	tcase_add_test(tc, test_walk_refuses_bad_names);
	tcase_add_test(tc, test_walk_depth);
	tcase_add_test(tc, test_walk_refuses_symlink_and_file);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
