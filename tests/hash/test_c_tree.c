/* Unit test for the C part of the toolchain (hash/link_tree.c, toolchain_c_collect), with the
 * host's real cc, c++ and (when installed) clang: what the part holds and what it leaves out,
 * that it is collected the same twice and answered from the cache, and that the daemon's id of
 * a copied tree agrees with the client's and changes with one byte of the compiler proper. */
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
#include "hash/pathmap.h"
#include "hash/toolchain.h"

static char ws[] = "/tmp/cachepot-ctree.XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(ws));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ws);
	(void)!system(cmd);
	memcpy(ws + strlen(ws) - 6, "XXXXXX", 6);
}

static const struct toolchain_file *find_rel(const struct toolchain *tc, const char *suffix)
{
	size_t n = strlen(suffix);
	for (size_t i = 0; i < tc->n_files; i++) {
		size_t len = strlen(tc->files[i].rel);
		if (len >= n && strcmp(tc->files[i].rel + len - n, suffix) == 0)
			return &tc->files[i];
	}
	return NULL;
}

/* Copy the part's files into the tree at DIR, as the daemon unpacks it. */
static void copy_tree(const struct toolchain *tc, const char *dir)
{
	for (size_t i = 0; i < tc->n_files; i++) {
		char dst[PATH_MAX], *data = NULL, *slash;
		size_t len = 0;
		int fd;
		snprintf(dst, sizeof(dst), "%s/%s", dir, tc->files[i].rel);
		slash = strrchr(dst, '/');
		*slash = '\0';
		ck_assert_int_eq(path_mkdir_parents(dst, 0755), 0);
		*slash = '/';
		ck_assert_int_eq(io_read_file_at(AT_FDCWD, tc->files[i].host_path, 0, 1u << 30, &data, &len), 0);
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, tc->files[i].mode);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(io_write_all(fd, data, len), 0);
		close(fd);
		free(data);
	}
}

/* What every part holds: the driver, the assembler, their closure, all under usr/; nothing
 * of a link. */
static void check_common(const struct toolchain *part, const char *driver_rel)
{
	const struct toolchain_file *f = find_rel(part, driver_rel);

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->mode, 0755);
	ck_assert_ptr_nonnull(find_rel(part, "usr/bin/as"));
	ck_assert_ptr_nonnull(find_rel(part, "/libc.so.6"));
	ck_assert_ptr_nonnull(find_rel(part, "usr/lib64/ld-linux-x86-64.so.2"));
	ck_assert_ptr_null(find_rel(part, "/collect2"));
	ck_assert_ptr_null(find_rel(part, "/crt1.o"));
	ck_assert_ptr_null(find_rel(part, "/libc.so"));
	for (size_t i = 0; i < part->n_files; i++)
		ck_assert_msg(strncmp(part->files[i].rel, "usr/", 4) == 0, "%s outside usr/", part->files[i].rel);
	ck_assert_str_eq(part->sysroot, "");
	ck_assert_ptr_nonnull(part->rustc);
}

START_TEST(test_gcc_parts)
{
	struct toolchain c, cxx, again, cached;
	char cache[PATH_MAX];

	ck_assert_int_eq(toolchain_c_collect("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "cc1", &c), 0);
	check_common(&c, TOOLCHAIN_C_DRIVER);
	ck_assert_ptr_nonnull(find_rel(&c, "/cc1"));
	ck_assert_ptr_null(find_rel(&c, "/cc1plus"));
	/* the compiler proper's closure (GMP, MPFR, MPC, ISL on Debian) came along */
	ck_assert_ptr_nonnull(find_rel(&c, "/libmpc.so.3"));

	ck_assert_int_eq(toolchain_c_collect("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "cc1", &again), 0);
	ck_assert_str_eq(again.id, c.id);
	toolchain_release(&again);

	if (access("/usr/bin/c++", X_OK) == 0) {
		ck_assert_int_eq(toolchain_c_collect("/usr/bin/c++", TOOLCHAIN_CXX_DRIVER, "cc1plus", &cxx), 0);
		check_common(&cxx, TOOLCHAIN_CXX_DRIVER);
		ck_assert_ptr_nonnull(find_rel(&cxx, "/cc1plus"));
		ck_assert_str_ne(cxx.id, c.id);
		toolchain_release(&cxx);
	}

	/* from the cache: the same id and files, then again after the cache file is written */
	snprintf(cache, sizeof(cache), "%s/cache", ws);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(toolchain_c_get("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "cc1", cache, &cached), 0);
		ck_assert_str_eq(cached.id, c.id);
		ck_assert_uint_eq(cached.n_files, c.n_files);
		toolchain_release(&cached);
	}
	/* another compiler proper is another entry */
	if (access("/usr/bin/c++", X_OK) == 0) {
		ck_assert_int_eq(toolchain_c_get("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "cc1plus", cache, &cached), 0);
		ck_assert_str_ne(cached.id, c.id);
		ck_assert_ptr_nonnull(find_rel(&cached, "/cc1plus"));
		toolchain_release(&cached);
	}
	ck_assert_int_eq(toolchain_c_collect("/usr/bin/cc", "usr/bin/gcc", "cc1", &again), -EINVAL);
	ck_assert_int_eq(toolchain_c_collect("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "no-such-cc1", &again), -ENOENT);
	toolchain_release(&c);
}
END_TEST

START_TEST(test_tree_id)
{
	char tree[PATH_MAX], path[PATH_MAX], id[DIGEST_HEX_SIZE], changed[DIGEST_HEX_SIZE];
	const struct toolchain_file *f;
	struct toolchain c;
	unsigned char byte;
	int fd, cc1;

	ck_assert_int_eq(toolchain_c_collect("/usr/bin/cc", TOOLCHAIN_C_DRIVER, "cc1", &c), 0);
	snprintf(tree, sizeof(tree), "%s/tree", ws);
	copy_tree(&c, tree);
	fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(toolchain_id_of_tree(fd, id), 0);
	ck_assert_str_eq(id, c.id);
	f = find_rel(&c, "/cc1");
	snprintf(path, sizeof(path), "%s/%s", tree, f->rel);
	cc1 = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(cc1, 0);
	ck_assert_int_eq(pread(cc1, &byte, 1, 4096), 1);
	byte ^= 0x01;
	ck_assert_int_eq(pwrite(cc1, &byte, 1, 4096), 1);
	close(cc1);
	ck_assert_int_eq(toolchain_id_of_tree(fd, changed), 0);
	ck_assert_str_ne(changed, id);
	close(fd);
	toolchain_release(&c);
}
END_TEST

START_TEST(test_clang_part)
{
	struct toolchain c;

	if (access("/usr/bin/clang", X_OK) != 0)
		return;
	ck_assert_int_eq(toolchain_c_collect("/usr/bin/clang", TOOLCHAIN_C_DRIVER, "cc1", &c), 0);
	check_common(&c, TOOLCHAIN_C_DRIVER);
	/* clang compiles with itself: no cc1, and its LLVM came with its closure */
	ck_assert_ptr_null(find_rel(&c, "/cc1"));
	ck_assert_msg(strstr(c.rustc, "clang") != NULL, "driver %s", c.rustc);
	/* each library where the loader looks for it (Debian's libclang-cpp is found through a
	 * link in the multiarch directory, to a file under /usr/lib/llvm-14/lib) */
	for (size_t i = 0; i < c.n_files; i++)
		ck_assert_msg(strstr(c.files[i].rel, "/llvm-") == NULL, "%s where no loader looks", c.files[i].rel);
	toolchain_release(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("c_tree");
	TCase *tc = tcase_create("c_tree");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_gcc_parts);
	tcase_add_test(tc, test_tree_id);
	tcase_add_test(tc, test_clang_part);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
