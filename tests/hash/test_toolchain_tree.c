/* Unit test for hash/toolchain's toolchain_id_of_tree and directories: the id covers regular
 * files only, so a directory with no file beneath it (which every sandbox would see) makes the
 * tree refused, at any depth, and so does a tree with no file at all; directories that lead to
 * files are what the id already names.
 *
 * And the golden vector of the id's recipe (toolchain.h): a small fixed tree whose id is written
 * down here, computed once outside this code from the recipe as toolchain.h states it. Any
 * change to the recipe (tag, field order or tags, the mode normalisation, the sort order) moves
 * every toolchain id and must come with a new tag; this test fails until the vector is updated
 * with it. */
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
static char golden_root[] = "/tmp/cachepot-toolchain-golden.XXXXXX";

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

/* The golden tree. It has an empty file, a NUL in a file, modes that normalise (0700 -> 0755,
 * 0600 -> 0644), and "lib-a" next to "lib/...": '-' sorts before '/', so the order is the byte
 * order of whole relative paths, not a sort of each directory's names ("lib" < "lib-a"). */
static const struct golden_file {
	const char *rel;
	mode_t mode;
	const char *data;
	size_t len;
} golden_files[] = {
	{ "rust/bin/rustc", 0700, "#!/bin/false rustc\n", 19 },
	{ "rust/lib/librustc_driver-golden.so", 0644, "driver\0bytes\n", 13 },
	{ "rust/lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd-golden.rlib", 0600, "std", 3 },
	{ "rust/lib/rustlib/x86_64-unknown-linux-gnu/lib-a", 0644, "", 0 },
	{ "usr/lib64/ld-linux-x86-64.so.2", 0755, "ld.so\n", 6 },
};
/* SHA-256("cachepot-toolchain-v1\0" || for each file in byte order of its path: 'p' u64le(len)
 * path, 'm' u64le(4) u32le(mode), 'h' u64le(32) sha256(bytes)), computed with Python's hashlib. */
#define GOLDEN_ID "fd77bda547c33d97fd484317a6c2287ef6e7ef9c6211135b8022fbc412ec754c"

START_TEST(test_golden_id)
{
	char id[DIGEST_HEX_SIZE], path[PATH_MAX], dir[PATH_MAX];
	struct toolchain_builder b = { 0 };
	struct toolchain tc = { 0 };
	int fd;

	ck_assert_str_eq(TOOLCHAIN_ID_TAG, "cachepot-toolchain-v1");
	for (size_t i = 0; i < sizeof(golden_files) / sizeof(golden_files[0]); i++) {
		const struct golden_file *g = &golden_files[i];
		snprintf(path, sizeof(path), "%s/%s", golden_root, g->rel);
		snprintf(dir, sizeof(dir), "%s", path);
		*strrchr(dir, '/') = '\0';
		ck_assert_int_eq(path_mkdir_parents(dir, 0755), 0);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, g->data, g->len), (ssize_t)g->len);
		ck_assert_int_eq(fchmod(fd, g->mode), 0);
		close(fd);
	}
	/* The daemon's way: the tree it unpacked. */
	fd = open(golden_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(toolchain_id_of_tree(fd, id), 0);
	close(fd);
	ck_assert_str_eq(id, GOLDEN_ID);
	/* The client's way: host files added under their tree paths, in another order. */
	for (size_t i = sizeof(golden_files) / sizeof(golden_files[0]); i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%s", golden_root, golden_files[i].rel);
		ck_assert_int_eq(toolchain_builder_add(&b, path, golden_files[i].rel), 0);
	}
	ck_assert_int_eq(toolchain_builder_finish(&b, &tc), 0);
	ck_assert_str_eq(tc.id, GOLDEN_ID);
	toolchain_release(&tc);
	toolchain_builder_release(&b);
}
END_TEST

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
	char cmd[sizeof(root) + sizeof(golden_root) + 16];

	if (!mkdtemp(root) || !mkdtemp(golden_root))
		return EXIT_FAILURE;
	tcase_add_test(tc, test_golden_id);
	tcase_add_test(tc, test_empty_directories_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", root, golden_root);
	if (system(cmd) != 0)
		failed++;
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
