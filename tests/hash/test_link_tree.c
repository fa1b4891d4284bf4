/* Unit test for the link part of the toolchain (hash/link_tree.c) and link jobs, with the host's
 * real cc and rustc: what the part holds, that the daemon's id of a copied tree agrees with the
 * client's and changes with one byte of a crt object (and with it the key of a link job, not of
 * a lib job), and what makes a unit that links not cacheable. */
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
#include "hash/invocation.h"
#include "hash/pathmap.h"

extern char **environ;

static char ws[] = "/tmp/cachepot-link.XXXXXX";
static char rustc[PATH_MAX];
static struct toolchain base, part;

/* The first rustc on $PATH, resolved to the real one. */
static void setup_toolchains(void)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "/usr/bin"), *save = NULL, *real = NULL;
	int found = 0;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		snprintf(rustc, sizeof(rustc), "%s/rustc", dir);
		found = access(rustc, X_OK) == 0;
	}
	free(copy);
	ck_assert_msg(found, "no rustc on PATH");
	ck_assert_int_eq(rustc_resolve(rustc, &real), 0);
	ck_assert_int_eq(toolchain_collect(real, &base), 0);
	free(real);
	ck_assert_int_eq(toolchain_link_collect(&base, "/usr/bin/cc", &part), 0);
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

START_TEST(test_link_part)
{
	const struct toolchain_file *f;

	setup_toolchains();
	f = find_rel(&part, "usr/bin/cc");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->mode, 0755);
	ck_assert_ptr_nonnull(find_rel(&part, "/collect2"));
	ck_assert_ptr_nonnull(find_rel(&part, "/crtbeginS.o"));
	ck_assert_ptr_nonnull(find_rel(&part, "/Scrt1.o"));
	/* libc.so is a linker script: what its GROUP names came along */
	ck_assert_ptr_nonnull(find_rel(&part, "/libc.so"));
	ck_assert_ptr_nonnull(find_rel(&part, "/libc.so.6"));
	ck_assert_ptr_nonnull(find_rel(&part, "/libc_nonshared.a"));
	ck_assert_ptr_nonnull(find_rel(&part, "usr/lib64/ld-linux-x86-64.so.2"));
	/* the driver's closure */
	for (size_t i = 0; i < part.n_files; i++)
		ck_assert_msg(strncmp(part.files[i].rel, "usr/", 4) == 0
				      || strncmp(part.files[i].rel, "rust/lib/rustlib/", 17) == 0,
			      "%s outside usr/ and the sysroot's rustlib", part.files[i].rel);
	/* the same host collected twice gives the same id */
	{
		struct toolchain again;
		ck_assert_int_eq(toolchain_link_collect(&base, "/usr/bin/cc", &again), 0);
		ck_assert_str_eq(again.id, part.id);
		toolchain_release(&again);
	}
	ck_assert_str_ne(part.id, base.id);
}
END_TEST

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

static void job_key_hex(const struct job *job, char hex[DIGEST_HEX_SIZE])
{
	unsigned char key[DIGEST_SIZE];
	ck_assert_int_eq(job_key(job, key, NULL), 0);
	digest_to_hex(key, hex);
}

START_TEST(test_changed_linker_file)
{
	char tree[PATH_MAX], crt[PATH_MAX], id[DIGEST_HEX_SIZE], changed[DIGEST_HEX_SIZE];
	char lib_key[DIGEST_HEX_SIZE], lib_key2[DIGEST_HEX_SIZE], bin_key[DIGEST_HEX_SIZE], bin_key2[DIGEST_HEX_SIZE];
	char *argv[] = { ROOT_RUSTC, "--crate-type", "bin", NULL };
	struct job lib = { .argv = argv, .argc = 3, .cwd = ROOT_CWD }, bin;
	const struct toolchain_file *f;
	unsigned char byte;
	int fd;

	setup_toolchains();
	snprintf(tree, sizeof(tree), "%s/tree", ws);
	copy_tree(&part, tree);
	fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	/* the daemon's id of the unpacked tree is the client's */
	ck_assert_int_eq(toolchain_id_of_tree(fd, id), 0);
	ck_assert_str_eq(id, part.id);

	memcpy(lib.toolchain, base.id, DIGEST_HEX_SIZE);
	argv[2] = "lib";
	job_key_hex(&lib, lib_key);
	argv[2] = "bin";
	bin = lib;
	memcpy(bin.link_toolchain, id, DIGEST_HEX_SIZE);
	job_key_hex(&bin, bin_key);

	/* one byte of a crt object in the copied tree */
	f = find_rel(&part, "/crtbeginS.o");
	ck_assert_ptr_nonnull(f);
	snprintf(crt, sizeof(crt), "%s/%s", tree, f->rel);
	{
		int c = open(crt, O_RDWR | O_CLOEXEC);
		ck_assert_int_ge(c, 0);
		ck_assert_int_eq(pread(c, &byte, 1, 100), 1);
		byte ^= 0x01;
		ck_assert_int_eq(pwrite(c, &byte, 1, 100), 1);
		close(c);
	}
	ck_assert_int_eq(toolchain_id_of_tree(fd, changed), 0);
	close(fd);
	ck_assert_str_ne(changed, id);
	memcpy(bin.link_toolchain, changed, DIGEST_HEX_SIZE);
	job_key_hex(&bin, bin_key2);
	ck_assert_str_ne(bin_key2, bin_key);
	/* a lib job carries no link part: its key is the one it had */
	argv[2] = "lib";
	job_key_hex(&lib, lib_key2);
	ck_assert_str_eq(lib_key2, lib_key);
	ck_assert_str_ne(lib_key, bin_key);
}
END_TEST

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Build the invocation of a bin in the workspace with EXTRA arguments and environment ENVP. */
static void build_bin(struct invocation *inv, char *const *envp, const char *extra1, const char *extra2)
{
	char *argv[16] = { "--crate-name", "t", "--edition", "2021", "main.rs", "--crate-type", "bin",
		"--emit=dep-info,link", "--out-dir", "target/debug/deps" };
	char cache[PATH_MAX];
	struct invocation_options o = { .cache_dir = cache, .envp = envp };
	int argc = 10;

	if (extra1)
		argv[argc++] = (char *)extra1;
	if (extra2)
		argv[argc++] = (char *)extra2;
	snprintf(cache, sizeof(cache), "%s/cache", ws);
	ck_assert_int_eq(invocation_build(inv, rustc, argc, argv, &o), 0);
}

START_TEST(test_link_invocations)
{
	char path_env[PATH_MAX + 8], home_env[PATH_MAX + 8];
	char *env[] = { path_env, home_env, NULL, NULL };
	struct invocation inv;
	int has_path = 0, has_lib = 0;

	setup_toolchains();
	snprintf(path_env, sizeof(path_env), "PATH=%s", getenv("PATH"));
	snprintf(home_env, sizeof(home_env), "HOME=%s", ws);
	ck_assert_int_eq(chdir(ws), 0);
	ck_assert_int_eq(path_mkdir_parents("target/debug/deps", 0755), 0);
	ck_assert_int_eq(path_mkdir_parents("native", 0755), 0);
	write_file("target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
	write_file("main.rs", "fn main() { println!(\"hi\"); }\n");
	write_file("native/libfoo.a", "!<arch>\n");

	build_bin(&inv, env, NULL, NULL);
	ck_assert_msg(inv.reason == RUSTC_CACHEABLE, "%s: %s", rustc_reason_name(inv.reason), inv.reason_detail);
	ck_assert_str_eq(inv.job.link_toolchain, part.id);
	for (size_t i = 0; i < inv.job.n_env; i++)
		if (strcmp(inv.job.env[i].name, "PATH") == 0)
			has_path = strcmp(inv.job.env[i].value, ROOT_LINK_PATH) == 0;
	ck_assert_msg(has_path, "a link job runs with PATH=" ROOT_LINK_PATH);
	invocation_release(&inv);

	/* a native library under a mapped root is an input */
	build_bin(&inv, env, "-lstatic=foo", "-Lnative=native");
	ck_assert_msg(inv.reason == RUSTC_CACHEABLE, "%s: %s", rustc_reason_name(inv.reason), inv.reason_detail);
	for (size_t i = 0; i < inv.job.n_inputs; i++)
		has_lib |= strcmp(inv.job.inputs[i].path, ROOT_CWD "/native/libfoo.a") == 0;
	ck_assert_msg(has_lib, "native/libfoo.a is an input of the link");
	invocation_release(&inv);

	/* one only the host has is not */
	build_bin(&inv, env, "-lz", NULL);
	ck_assert_int_eq(inv.reason, RUSTC_NC_LINK);
	ck_assert_msg(strstr(inv.reason_detail, "-l z"), "%s", inv.reason_detail);
	invocation_release(&inv);

	/* variables that move the driver's search path */
	env[2] = "LIBRARY_PATH=/opt/lib";
	build_bin(&inv, env, NULL, NULL);
	ck_assert_int_eq(inv.reason, RUSTC_NC_LINK);
	ck_assert_msg(strstr(inv.reason_detail, "LIBRARY_PATH"), "%s", inv.reason_detail);
	invocation_release(&inv);
	env[2] = NULL;

	/* a linker other than the collected driver */
	build_bin(&inv, env, "-Clinker=/opt/bin/mycc", NULL);
	ck_assert_int_eq(inv.reason, RUSTC_NC_LINK);
	invocation_release(&inv);
}
END_TEST

static void remove_ws(void)
{
	char *argv[] = { "rm", "-rf", ws, NULL };
	(void)!io_run_capture(argv, environ, 1, NULL, 0, NULL);
}

int main(void)
{
	Suite *s = suite_create("link_tree");
	TCase *tc = tcase_create("link_tree");
	SRunner *sr;
	int failed;

	if (!mkdtemp(ws))
		return 99;
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_link_part);
	tcase_add_test(tc, test_changed_linker_file);
	tcase_add_test(tc, test_link_invocations);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_ws();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
