/* Unit test for the files the client keeps in its cache directory (hash/toolchain.c's toolchain
 * cache, hash/invocation.c's direct-mode lists, base/io.c's replace): each is used when it is a
 * regular file there, and a symlink planted in its place is never followed, for reading or for
 * writing. The toolchain cache names the host files that get uploaded, and a direct list the
 * inputs of a key, so following a link would let whoever planted it choose them. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/io.h"
#include "hash/invocation.h"
#include "hash/pathmap.h"
#include "hash/toolchain.h"

static char ws[] = "/tmp/cachepot-cache-files.XXXXXX";
static char rustc[PATH_MAX];
static char path_env[PATH_MAX + 8];

static void find_rustc(void)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "/usr/bin"), *save = NULL;
	int found = 0;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		snprintf(rustc, sizeof(rustc), "%s/rustc", dir);
		found = access(rustc, X_OK) == 0;
	}
	free(copy);
	snprintf(path_env, sizeof(path_env), "PATH=%s", path ? path : "/usr/bin");
	ck_assert_msg(found, "no rustc on PATH");
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* The name of the one file in DIR ending in SUFFIX, into NAME. */
static void only_file(const char *dir, const char *suffix, char *name, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > strlen(suffix) && strcmp(e->d_name + n - strlen(suffix), suffix) == 0) {
			ck_assert_int_eq(found, 0);
			snprintf(name, len, "%s", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	ck_assert_int_eq(found, 1);
}

START_TEST(test_toolchain_cache_never_through_a_symlink)
{
	static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
	char *real = NULL, dir[PATH_MAX], name[NAME_MAX + 1], file[PATH_MAX * 2], planted[PATH_MAX];
	struct toolchain tc;
	json_t *root;
	char id[DIGEST_HEX_SIZE];

	find_rustc();
	ck_assert_int_eq(rustc_resolve(rustc, &real), 0);

	snprintf(dir, sizeof(dir), "%s/a", ws);
	ck_assert_int_eq(toolchain_get(real, dir, &tc), 0);
	memcpy(id, tc.id, sizeof(id));
	toolchain_release(&tc);
	only_file(dir, ".json", name, sizeof(name));

	/* Another id in a copy of the entry: what a planted list would claim. */
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	root = json_load_file(file, 0, NULL);
	ck_assert_ptr_nonnull(root);
	json_object_set_new(root, "id", json_string(zeros));
	snprintf(planted, sizeof(planted), "%s/planted.json", ws);
	ck_assert_int_eq(json_dump_file(root, planted, JSON_COMPACT), 0);
	json_decref(root);

	/* As a regular file in the cache directory the entry is believed ... */
	snprintf(dir, sizeof(dir), "%s/b", ws);
	ck_assert_int_eq(path_mkdir_parents(dir, 0700), 0);
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	ck_assert_int_eq(rename(planted, file), 0);
	ck_assert_int_eq(toolchain_get(real, dir, &tc), 0);
	ck_assert_str_eq(tc.id, zeros);
	toolchain_release(&tc);

	/* ... as a symlink to the same file it is not: the toolchain is collected again. */
	ck_assert_int_eq(rename(file, planted), 0);
	snprintf(dir, sizeof(dir), "%s/c", ws);
	ck_assert_int_eq(path_mkdir_parents(dir, 0700), 0);
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	ck_assert_int_eq(symlink(planted, file), 0);
	ck_assert_int_eq(toolchain_get(real, dir, &tc), 0);
	ck_assert_str_eq(tc.id, id);
	toolchain_release(&tc);
	free(real);
}
END_TEST

/* Build compiling lib.rs in the workspace with direct mode on or off; return whether it was
 * direct. */
static int build(int use_direct)
{
	char *argv[] = { "--crate-name", "t", "--edition", "2021", "lib.rs", "--crate-type", "lib",
		"--emit=dep-info,metadata,link", "--out-dir", "target/debug/deps", NULL };
	char *envp[] = { path_env, "HOME=/nonexistent", NULL };
	char cache[PATH_MAX], direct[PATH_MAX];
	struct invocation_options o = { .cache_dir = cache, .direct_dir = direct, .use_direct = use_direct,
		.envp = envp };
	struct invocation inv;
	int was_direct;

	snprintf(cache, sizeof(cache), "%s/cache", ws);
	snprintf(direct, sizeof(direct), "%s/direct", ws);
	ck_assert_int_eq(invocation_build(&inv, rustc, 10, argv, &o), 0);
	ck_assert_msg(inv.reason == RUSTC_CACHEABLE, "%s: %s", rustc_reason_name(inv.reason), inv.reason_detail);
	was_direct = inv.direct;
	invocation_release(&inv);
	return was_direct;
}

START_TEST(test_direct_list_never_through_a_symlink)
{
	char dir[PATH_MAX], name[NAME_MAX + 1], file[PATH_MAX * 2], planted[PATH_MAX];

	find_rustc();
	ck_assert_int_eq(chdir(ws), 0);
	ck_assert_int_eq(path_mkdir_parents("target/debug/deps", 0755), 0);
	write_file("target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
	write_file("lib.rs", "pub fn f() -> u32 { 1 }\n");

	ck_assert_int_eq(build(0), 0);   /* the full pass records its list */
	ck_assert_int_eq(build(1), 1);   /* which a direct build then uses */
	snprintf(dir, sizeof(dir), "%s/direct", ws);
	only_file(dir, ".json", name, sizeof(name));
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	snprintf(planted, sizeof(planted), "%s/planted-list.json", ws);
	ck_assert_int_eq(rename(file, planted), 0);
	ck_assert_int_eq(symlink(planted, file), 0);
	ck_assert_int_eq(build(1), 0);   /* the same list behind a symlink is not read */
}
END_TEST

START_TEST(test_replace_never_writes_through_a_symlink)
{
	char file[PATH_MAX], tmp[PATH_MAX + 32], victim[PATH_MAX], *text = NULL;
	size_t len;
	struct stat st;

	snprintf(file, sizeof(file), "%s/stats.json", ws);
	snprintf(victim, sizeof(victim), "%s/victim", ws);
	/* The temporary name is predictable (it carries the pid): plant a link there and at the
	 * file itself. */
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", file, (long)getpid());
	ck_assert_int_eq(symlink(victim, tmp), 0);
	ck_assert_int_eq(symlink(victim, file), 0);
	ck_assert_int_eq(io_replace_file(file, "{}", 2, 0600), 0);
	ck_assert_int_eq(lstat(victim, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(lstat(file, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(lstat(tmp, &st), -1);
	ck_assert_int_eq(io_read_file_at(AT_FDCWD, file, O_NOFOLLOW, 16, &text, &len), 0);
	ck_assert_str_eq(text, "{}");
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_files");
	TCase *tc = tcase_create("cache_files");
	SRunner *sr;
	int failed;
	char cmd[sizeof(ws) + 16];

	if (!mkdtemp(ws))
		return EXIT_FAILURE;
	tcase_add_test(tc, test_replace_never_writes_through_a_symlink);
	tcase_add_test(tc, test_toolchain_cache_never_through_a_symlink);
	tcase_add_test(tc, test_direct_list_never_through_a_symlink);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", ws);
	if (system(cmd) != 0)
		failed++;
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
