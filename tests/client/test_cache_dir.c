/* Unit tests for the wrapper's cache directory (client/cache_dir.h, client/settings.h): never a
 * shared /tmp path when HOME is unset, created 0700, refused when another uid owns it or others
 * may write it (also behind a symlink), and never a relative path. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cache_dir.h"
#include "client/settings.h"

/* A uid no one on a test machine has. */
#define FOREIGN_UID 12345

static char root[] = "/tmp/cachepot-cache-dir.XXXXXX";

static void in_root(char *out, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(out, len, "%s/%s", root, name), (int)len);
}

START_TEST(test_home_unset_uses_the_passwd_home)
{
	struct client_config c;
	struct passwd *pw = getpwuid(geteuid());
	char want[PATH_MAX];

	setenv("CACHEPOT_CONFIG", "/dev/null", 1);
	unsetenv("CACHEPOT_CACHE_DIR");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	ck_assert_int_eq(client_config_load(&c), 0);
	if (pw && pw->pw_dir[0] == '/') {
		snprintf(want, sizeof(want), "%s/.cache/cachepot", pw->pw_dir);
		ck_assert_ptr_nonnull(c.cache_dir);
		ck_assert_str_eq(c.cache_dir, want);
	} else {
		ck_assert_ptr_null(c.cache_dir);
	}
	client_config_release(&c);
}
END_TEST

START_TEST(test_relative_cache_dir_refused)
{
	struct client_config c;

	setenv("CACHEPOT_CONFIG", "/dev/null", 1);
	setenv("HOME", "/home/someone", 1);
	unsetenv("XDG_CACHE_HOME");
	setenv("CACHEPOT_CACHE_DIR", "cache", 1);
	ck_assert_int_eq(client_config_load(&c), -EINVAL);
	ck_assert_str_eq(c.cache_dir, "/home/someone/.cache/cachepot");
	client_config_release(&c);
	setenv("CACHEPOT_CACHE_DIR", "", 1);
	ck_assert_int_eq(client_config_load(&c), -EINVAL);
	ck_assert_str_eq(c.cache_dir, "/home/someone/.cache/cachepot");
	client_config_release(&c);
	unsetenv("CACHEPOT_CACHE_DIR");
	ck_assert_int_eq(cache_dir_prepare("relative/dir", NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_created_0700)
{
	char dir[PATH_MAX], err[PATH_MAX + 200];
	struct stat st;

	umask(0);
	in_root(dir, sizeof(dir), "home/.cache/cachepot");
	ck_assert_int_eq(cache_dir_prepare(dir, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(st.st_uid, geteuid());
	ck_assert_int_eq(cache_dir_prepare(dir, err, sizeof(err)), 0);   /* and accepted again */
	umask(022);
}
END_TEST

START_TEST(test_foreign_owner_refused)
{
	char dir[PATH_MAX], link[PATH_MAX], err[PATH_MAX + 200];

	if (geteuid() == 0) {
		in_root(dir, sizeof(dir), "planted");
		ck_assert_int_eq(mkdir(dir, 0700), 0);
		ck_assert_int_eq(chown(dir, FOREIGN_UID, FOREIGN_UID), 0);
	} else {
		snprintf(dir, sizeof(dir), "/");   /* root's */
	}
	ck_assert_int_eq(cache_dir_prepare(dir, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "belongs to uid"));
	/* A symlink of the caller's leading there changes nothing. */
	in_root(link, sizeof(link), "link-to-planted");
	ck_assert_int_eq(symlink(dir, link), 0);
	ck_assert_int_eq(cache_dir_prepare(link, err, sizeof(err)), -EPERM);
}
END_TEST

START_TEST(test_writable_by_others_refused)
{
	static const unsigned bad[] = { 0770, 0730, 0707, 0777, 01777 };
	char dir[PATH_MAX], err[PATH_MAX + 200];

	in_root(dir, sizeof(dir), "shared");
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(chmod(dir, bad[i]), 0);
		ck_assert_int_eq(cache_dir_prepare(dir, err, sizeof(err)), -EPERM);
		ck_assert_ptr_nonnull(strstr(err, "writable by others"));
	}
	/* Readable by others is the owner's choice (directories made before 0700 was the rule). */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(cache_dir_prepare(dir, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_not_a_directory_refused)
{
	char file[PATH_MAX], err[PATH_MAX + 200];
	FILE *f;

	in_root(file, sizeof(file), "a-file");
	f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(cache_dir_prepare(file, err, sizeof(err)), -ENOTDIR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_dir");
	TCase *tc = tcase_create("cache_dir");
	SRunner *sr;
	int failed;
	char cmd[sizeof(root) + 16];

	if (!mkdtemp(root))
		return EXIT_FAILURE;
	tcase_add_test(tc, test_home_unset_uses_the_passwd_home);
	tcase_add_test(tc, test_relative_cache_dir_refused);
	tcase_add_test(tc, test_created_0700);
	tcase_add_test(tc, test_foreign_owner_refused);
	tcase_add_test(tc, test_writable_by_others_refused);
	tcase_add_test(tc, test_not_a_directory_refused);
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
