/* Unit test for hash/toolchain's toolchain_id_of_tree and directories: the id covers regular
 * files only, so a directory with no file beneath it (which every sandbox would see) makes the
 * tree refused, at any depth, and so does a tree with no file at all; directories that lead to
 * files are what the id already names. */
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

#include "hash/pathmap.h"
#include "hash/toolchain.h"

static char root[] = "/tmp/cachepot-toolchain-tree.XXXXXX";

static void make_file(const char *rel, const char *text)
{
	char path[PATH_MAX], dir[PATH_MAX];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(path_mkdir_parents(dir, 0755), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void make_dir(const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	ck_assert_int_eq(path_mkdir_parents(path, 0755), 0);
}

static void remove_dir(const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	ck_assert_int_eq(rmdir(path), 0);
}

static int id_of(char hex[DIGEST_HEX_SIZE])
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;
	ck_assert_int_ge(fd, 0);
	ret = toolchain_id_of_tree(fd, hex);
	close(fd);
	return ret;
}

START_TEST(test_empty_directories_refused)
{
	char id[DIGEST_HEX_SIZE], again[DIGEST_HEX_SIZE];

	ck_assert_int_eq(id_of(id), -EINVAL);            /* no file: no toolchain */
	make_file("rust/bin/rustc", "rustc");
	make_file("rust/lib/librustc_driver.so", "driver");
	make_file("usr/lib64/ld-linux-x86-64.so.2", "ld");
	ck_assert_int_eq(id_of(id), 0);

	make_dir("usr/share/planted");                   /* an empty directory beside the files */
	ck_assert_int_eq(id_of(again), -EINVAL);
	remove_dir("usr/share/planted");
	remove_dir("usr/share");
	make_dir("rust/lib/a/b/c");                      /* empty all the way down */
	ck_assert_int_eq(id_of(again), -EINVAL);
	remove_dir("rust/lib/a/b/c");
	remove_dir("rust/lib/a/b");
	remove_dir("rust/lib/a");
	make_dir("etc");                                 /* at the top */
	ck_assert_int_eq(id_of(again), -EINVAL);
	remove_dir("etc");

	ck_assert_int_eq(id_of(again), 0);               /* the same files: the same id */
	ck_assert_str_eq(again, id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("toolchain_tree");
	TCase *tc = tcase_create("toolchain_tree");
	SRunner *sr;
	int failed;
	char cmd[sizeof(root) + 16];

	if (!mkdtemp(root))
		return EXIT_FAILURE;
	tcase_add_test(tc, test_empty_directories_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		failed++;
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
