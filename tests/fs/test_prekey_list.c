/* Unit tests for fs/prekey_list and the store's pre-key lists: signed like manifests, refused
 * when tampered with, signed by another key or for another pre-key (a valid object of pre-key A
 * served for B), kept newest first without duplicates and at most PREKEY_LISTS_MAX, followed by
 * a reader, and refused when a list has a shape no full pass makes. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/manifest.h"
#include "fs/prekey_list.h"
#include "fs/store.h"
#include "hash/digest.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", "/tmp/cachepot-test-prekey-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void fill_hex(char hex[65], unsigned seed)
{
	unsigned char d[32];
	ck_assert_int_eq(digest_buffer(&seed, sizeof(seed), d), 0);
	digest_to_hex(d, hex);
}

/* A list naming /cachepot/cwd/src/<NAME>.rs. */
static json_t *make_list(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/cachepot/cwd/src/%s.rs", name);
	return json_pack("{s:[s, s], s:[s], s:[]}", "inputs", "/cachepot/cwd/src/lib.rs", path, "env_deps",
			 "SOME_VAR", "env_unset");
}

/* The lists of PREKEY in S, verified against S's key. */
static json_t *lists_of(struct store *s, const char prekey[65])
{
	unsigned char pub[32];
	char *text = NULL;
	size_t len = 0;
	json_t *lists = NULL;
	ck_assert_int_eq(store_get_prekey_lists(s, prekey, &text, &len), 0);
	store_public_key(s, pub);
	ck_assert_int_eq(prekey_lists_verify(text, len, pub, prekey, &lists), 0);
	free(text);
	return lists;
}

static const char *second_input(const json_t *lists, size_t i)
{
	return json_string_value(json_array_get(json_object_get(json_array_get(lists, i), "inputs"), 1));
}

START_TEST(test_newest_first)
{
	struct store *s, *r;
	char prekey[65], other[65], *text = NULL;
	size_t len = 0;
	json_t *a = make_list("a"), *b = make_list("b"), *lists;

	fill_hex(prekey, 1);
	fill_hex(other, 2);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	ck_assert_int_eq(store_get_prekey_lists(s, prekey, &text, &len), -ENOENT);
	ck_assert_int_eq(store_add_prekey_list(s, prekey, a), 0);
	ck_assert_int_eq(store_add_prekey_list(s, prekey, a), 2);   /* first already */
	ck_assert_int_eq(store_add_prekey_list(s, prekey, b), 0);
	lists = lists_of(s, prekey);
	ck_assert_uint_eq(json_array_size(lists), 2);
	ck_assert_str_eq(second_input(lists, 0), "/cachepot/cwd/src/b.rs");
	ck_assert_str_eq(second_input(lists, 1), "/cachepot/cwd/src/a.rs");
	json_decref(lists);
	/* An older list seen again moves to the front, once. */
	ck_assert_int_eq(store_add_prekey_list(s, prekey, a), 0);
	lists = lists_of(s, prekey);
	ck_assert_uint_eq(json_array_size(lists), 2);
	ck_assert_str_eq(second_input(lists, 0), "/cachepot/cwd/src/a.rs");
	json_decref(lists);
	/* At most PREKEY_LISTS_MAX: the oldest leave. */
	for (int i = 0; i < PREKEY_LISTS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		json_t *n = make_list(name);
		ck_assert_int_eq(store_add_prekey_list(s, prekey, n), 0);
		json_decref(n);
	}
	lists = lists_of(s, prekey);
	ck_assert_uint_eq(json_array_size(lists), PREKEY_LISTS_MAX);
	ck_assert_str_eq(second_input(lists, 0), "/cachepot/cwd/src/n3.rs");
	json_decref(lists);
	/* Another pre-key is another object. */
	ck_assert_int_eq(store_get_prekey_lists(s, other, &text, &len), -ENOENT);
	/* A reader next to the writer follows it. */
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &r), 0);
	ck_assert_int_eq(store_add_prekey_list(r, other, a), -EROFS);
	ck_assert_int_eq(store_add_prekey_list(s, other, b), 0);
	lists = lists_of(r, other);
	ck_assert_uint_eq(json_array_size(lists), 1);
	json_decref(lists);
	store_close(r);
	store_close(s);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(test_refused)
{
	struct store *s, *t;
	char prekey[65], other[65], tdir[80], *text = NULL, *p;
	unsigned char pub[32], other_pub[32];
	size_t len = 0;
	json_t *a = make_list("a"), *lists = NULL, *bad;
	struct manifest_trust trust = { .n_keys = 0 };

	fill_hex(prekey, 1);
	fill_hex(other, 2);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	snprintf(tdir, sizeof(tdir), "%s/other", dir);
	ck_assert_int_eq(store_open(tdir, STORE_CREATE, &t), 0);
	store_public_key(s, pub);
	store_public_key(t, other_pub);
	ck_assert_int_eq(store_add_prekey_list(s, prekey, a), 0);
	ck_assert_int_eq(store_get_prekey_lists(s, prekey, &text, &len), 0);
	ck_assert_int_eq(prekey_lists_verify(text, len, pub, prekey, &lists), 0);
	json_decref(lists);
	/* A valid object of one pre-key served for another. */
	ck_assert_int_eq(prekey_lists_verify(text, len, pub, other, &lists), -EBADMSG);
	ck_assert_ptr_null(lists);
	/* Signed by a key not pinned. */
	ck_assert_int_eq(prekey_lists_verify(text, len, other_pub, prekey, &lists), -EBADMSG);
	memcpy(trust.keys[0], other_pub, 32);
	trust.n_keys = 1;
	ck_assert_int_eq(prekey_lists_verify_trusted(text, len, &trust, prekey, &lists), -EBADMSG);
	memcpy(trust.keys[1], pub, 32);
	trust.n_keys = 2;
	ck_assert_int_eq(prekey_lists_verify_trusted(text, len, &trust, prekey, &lists), 0);
	json_decref(lists);
	trust.n_keys = 0;
	ck_assert_int_eq(prekey_lists_verify_trusted(text, len, &trust, prekey, &lists), -EBADMSG);
	/* Tampered: a path of the list changed. */
	p = strstr(text, "a.rs");
	ck_assert_ptr_nonnull(p);
	p[0] = 'b';
	ck_assert_int_eq(prekey_lists_verify(text, len, pub, prekey, &lists), -EBADMSG);
	free(text);
	/* A manifest's signed text is not a pre-key object, even when it verifies. */
	const char *mtext = "{\"manifest\":{},\"signature\":{}}\n";
	ck_assert_int_eq(prekey_lists_verify(mtext, strlen(mtext), pub, prekey, &lists), -EBADMSG);
	/* Lists no full pass makes are refused before anything is written. */
	bad = json_pack("{s:[s], s:[], s:[]}", "inputs", "/etc/passwd", "env_deps", "env_unset");
	ck_assert_int_eq(store_add_prekey_list(s, other, bad), -EINVAL);
	json_decref(bad);
	bad = json_pack("{s:[s], s:[s], s:[]}", "inputs", "/cachepot/cwd/a.rs", "env_deps", "A=B", "env_unset");
	ck_assert_int_eq(store_add_prekey_list(s, other, bad), -EINVAL);
	json_decref(bad);
	bad = json_pack("{s:[s], s:[]}", "inputs", "/cachepot/cwd/a.rs", "env_deps");
	ck_assert_int_eq(store_add_prekey_list(s, other, bad), -EINVAL);
	json_decref(bad);
	ck_assert_int_eq(store_get_prekey_lists(s, other, &text, &len), -ENOENT);
	store_close(t);
	store_close(s);
	json_decref(a);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("prekey_list");
	TCase *tc = tcase_create("prekey_list");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_newest_first);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
