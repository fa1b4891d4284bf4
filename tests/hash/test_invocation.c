/* Unit test for hash/invocation's direct mode, with the real rustc: a direct build gives the
 * full pass's key, follows file contents, and gives up its list when a variable the pass read
 * unset (option_env!) is set now. */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash/invocation.h"
#include "hash/pathmap.h"

static char ws[] = "/tmp/cachepot-invocation.XXXXXX";
static char rustc[PATH_MAX];
static char path_env[PATH_MAX + 8];

/* The first rustc on $PATH (a rustup proxy is resolved by invocation_build). */
static int find_rustc(void)
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
	return found;
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Build the invocation of compiling lib.rs in the workspace; return whether it was direct and
 * the key in HEX. */
static int build(char *const *envp, int use_direct, char hex[DIGEST_HEX_SIZE])
{
	char *argv[] = { "--crate-name", "t", "--edition", "2021", "lib.rs", "--crate-type", "lib",
		"--emit=dep-info,metadata,link", "--out-dir", "target/debug/deps", NULL };
	char cache[PATH_MAX], direct[PATH_MAX];
	struct invocation_options o = { .cache_dir = cache, .direct_dir = direct, .use_direct = use_direct,
		.envp = envp };
	struct invocation inv;
	int was_direct;

	snprintf(cache, sizeof(cache), "%s/cache", ws);
	snprintf(direct, sizeof(direct), "%s/direct", ws);
	ck_assert_int_eq(invocation_build(&inv, rustc, 10, argv, &o), 0);
	ck_assert_msg(inv.reason == RUSTC_CACHEABLE, "%s: %s", rustc_reason_name(inv.reason), inv.reason_detail);
	digest_to_hex(inv.key, hex);
	was_direct = inv.direct;
	invocation_release(&inv);
	return was_direct;
}

START_TEST(test_direct_mode)
{
	char *plain[] = { path_env, "HOME=/nonexistent", NULL };
	char *with_var[] = { path_env, "HOME=/nonexistent", "CACHEPOT_TEST_OPTIONAL=set", NULL };
	char full[DIGEST_HEX_SIZE], hex[DIGEST_HEX_SIZE];

	ck_assert_msg(find_rustc(), "no rustc on PATH");
	ck_assert_ptr_nonnull(mkdtemp(ws));
	ck_assert_int_eq(chdir(ws), 0);
	ck_assert_int_eq(path_mkdir_parents("target/debug/deps", 0755), 0);
	write_file("target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
	write_file("lib.rs", "pub fn f() -> Option<&'static str> { option_env!(\"CACHEPOT_TEST_OPTIONAL\") }\n");

	ck_assert_int_eq(build(plain, 0, full), 0);          /* the full pass records its list */
	ck_assert_int_eq(build(plain, 1, hex), 1);           /* then it is reused ... */
	ck_assert_str_eq(hex, full);                         /* ... for the same key */
	ck_assert_int_eq(build(with_var, 1, hex), 0);        /* set now: the list is void */
	ck_assert_str_ne(hex, full);
	write_file("lib.rs", "pub fn f() -> Option<&'static str> { option_env!(\"CACHEPOT_TEST_OPTIONAL\") }\n// x\n");
	ck_assert_int_eq(build(plain, 1, hex), 1);           /* contents are hashed as they are now */
	ck_assert_str_ne(hex, full);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("invocation");
	TCase *tc = tcase_create("invocation");
	SRunner *sr;
	int failed;
	char cmd[sizeof(ws) + 16];

	tcase_add_test(tc, test_direct_mode);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (strcmp(ws, "/tmp/cachepot-invocation.XXXXXX") != 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", ws);
		if (system(cmd) != 0)
			failed++;
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
