/* Unit test for hash/invocation's direct mode, with the real rustc: a direct build gives the
 * full pass's key, follows file contents, and gives up its list when a variable the pass read
 * unset (option_env!) is set now. Then published lists (what cachepotd publishes, faked here
 * by the published_lists callback, the store side being a set of published keys): a fresh
 * client finds the full pass's key through them, and a list that names fewer files than the
 * job read, a list of another invocation, or a list whose files changed since, each gives a
 * key that is not published (a miss) or the key of the files as they are now (a correct hit),
 * never the key of another job. */
#include "config.h"

#include <check.h>
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
#include "hash/prekey.h"

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

/* What a build of lib.rs made of its lists. */
struct outcome {
	int direct, published;
	unsigned next;
	char key[DIGEST_HEX_SIZE];
	char prekey[DIGEST_HEX_SIZE];
};

/* The fake daemon side: the lists "published" under any pre-key, and how often it was asked. */
static json_t *published;
static int asked;

static int fake_published_lists(void *ctx, const char prekey_hex[DIGEST_HEX_SIZE], json_t **lists)
{
	(void)ctx;
	(void)prekey_hex;
	asked++;
	*lists = published ? json_incref(published) : NULL;
	return 0;
}

/* Build lib.rs with the local lists in DIRECT_NAME (under the workspace), the published ones
 * from fake_published_lists, from list number FROM on; KEEP keeps a published list used. */
static void build_with(char *const *envp, const char *direct_name, unsigned from, int keep, struct outcome *out)
{
	char *argv[] = { "--crate-name", "t", "--edition", "2021", "lib.rs", "--crate-type", "lib",
		"--emit=dep-info,metadata,link", "--out-dir", "target/debug/deps", NULL };
	char cache[PATH_MAX], direct[PATH_MAX];
	struct invocation_options o = { .cache_dir = cache, .direct_dir = direct, .use_direct = 1,
		.envp = envp, .published_lists = fake_published_lists, .direct_from = from };
	struct invocation inv;

	snprintf(cache, sizeof(cache), "%s/cache", ws);
	snprintf(direct, sizeof(direct), "%s/%s", ws, direct_name);
	ck_assert_int_eq(invocation_build(&inv, rustc, 10, argv, &o), 0);
	ck_assert_msg(inv.reason == RUSTC_CACHEABLE, "%s: %s", rustc_reason_name(inv.reason), inv.reason_detail);
	digest_to_hex(inv.key, out->key);
	digest_to_hex(inv.prekey, out->prekey);
	out->direct = inv.direct;
	out->published = inv.direct_published;
	out->next = inv.direct_next;
	if (keep)
		invocation_direct_keep(&inv, &o);
	invocation_release(&inv);
}

/* The local list a full pass recorded in DIRECT_NAME under PREKEY. */
static json_t *local_list(const char *direct_name, const char *prekey)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	json_t *list;
	snprintf(path, sizeof(path), "%s/%s/%s.json", ws, direct_name, prekey);
	ck_assert_int_eq(io_read_file_at(AT_FDCWD, path, 0, 1 << 20, &text, &len), 0);
	list = json_loadb(text, len, 0, NULL);
	free(text);
	ck_assert(prekey_list_valid(list));
	return list;
}

static void publish(json_t *a, json_t *b)
{
	json_decref(published);
	published = json_array();
	if (a)
		json_array_append(published, a);
	if (b)
		json_array_append(published, b);
}

/* LIST with its input named NAME (a suffix) removed, or replaced by REPLACEMENT. */
static json_t *list_edited(const json_t *list, const char *name, const char *replacement)
{
	json_t *copy = json_deep_copy(list), *inputs = json_object_get(copy, "inputs");
	size_t i;
	json_t *v;
	json_array_foreach(inputs, i, v) {
		const char *p = json_string_value(v);
		if (strlen(p) >= strlen(name) && strcmp(p + strlen(p) - strlen(name), name) == 0) {
			if (replacement) {
				char *r = NULL;
				ck_assert_int_ge(asprintf(&r, "%.*s%s", (int)(strlen(p) - strlen(name)), p, replacement), 0);
				json_array_set_new(inputs, i, json_string(r));
				free(r);
			} else {
				json_array_remove(inputs, i);
			}
			return copy;
		}
	}
	ck_abort_msg("no input %s", name);
	return NULL;
}

START_TEST(test_published_lists)
{
	char *plain[] = { path_env, "HOME=/nonexistent", NULL };
	char *with_var[] = { path_env, "HOME=/nonexistent", "CACHEPOT_TEST_OPTIONAL=set", NULL };
	struct outcome full, o, changed;
	json_t *list, *bad;

	ck_assert_int_eq(chdir(ws), 0);
	write_file("lib.rs", "mod m;\npub fn f() -> u32 { m::g() }\npub fn o() -> Option<&'static str> { option_env!(\"CACHEPOT_TEST_OPTIONAL\") }\n");
	write_file("m.rs", "pub fn g() -> u32 { 1 }\n");
	write_file("other.rs", "pub fn g() -> u32 { 2 }\n");

	/* The machine that built it: a full pass, its list recorded. The store holds FULL.key. */
	publish(NULL, NULL);
	build_with(plain, "direct-a", 0, 0, &full);
	ck_assert_int_eq(full.direct, 0);
	list = local_list("direct-a", full.prekey);

	/* A fresh client (no local list): the published list gives the same key, no pass. */
	publish(list, NULL);
	asked = 0;
	build_with(plain, "direct-b", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_int_eq(o.published, 1);
	ck_assert_int_eq(asked, 1);
	ck_assert_str_eq(o.key, full.key);

	/* A list naming fewer files than the job read: another key, a miss; the next number has no
	 * list, so the full pass runs and finds the published key. */
	bad = list_edited(list, "/m.rs", NULL);
	publish(bad, NULL);
	build_with(plain, "direct-b", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_str_ne(o.key, full.key);
	build_with(plain, "direct-b", o.next, 0, &o);
	ck_assert_int_eq(o.direct, 0);
	ck_assert_str_eq(o.key, full.key);
	json_decref(bad);

	/* (The full pass recorded the right list in direct-b: each case below is a client of its
	 * own.) A list of another invocation (other.rs in place of m.rs): another key, a miss. */
	bad = list_edited(list, "/m.rs", "/other.rs");
	publish(bad, NULL);
	build_with(plain, "direct-c", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_str_ne(o.key, full.key);
	json_decref(bad);

	/* A list naming a file this checkout lacks does not apply: the next one is used. */
	bad = list_edited(list, "/m.rs", "/missing.rs");
	publish(bad, list);
	build_with(plain, "direct-f", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_uint_eq(o.next, 3);
	ck_assert_str_eq(o.key, full.key);
	json_decref(bad);

	/* A variable the job read unset is set here: the list does not apply. */
	publish(list, NULL);
	build_with(with_var, "direct-g", 0, 0, &o);
	ck_assert_int_eq(o.direct, 0);
	ck_assert_str_ne(o.key, full.key);

	/* A file changed after the list was made: the key of the files as they are now, which is
	 * the full pass's key for them (a correct hit once that is published), not FULL's. */
	write_file("m.rs", "pub fn g() -> u32 { 3 }\n");
	build_with(plain, "direct-h", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_str_ne(o.key, full.key);
	publish(NULL, NULL);
	build_with(plain, "direct-d", 0, 0, &changed);   /* no list at all: the full pass */
	ck_assert_int_eq(changed.direct, 0);
	ck_assert_str_eq(o.key, changed.key);
	write_file("m.rs", "pub fn g() -> u32 { 1 }\n");

	/* A published list that hit is kept as the local one: later builds here need no daemon. */
	publish(list, NULL);
	build_with(plain, "direct-e", 0, 1, &o);
	ck_assert_int_eq(o.published, 1);
	publish(NULL, NULL);
	asked = 0;
	build_with(plain, "direct-e", 0, 0, &o);
	ck_assert_int_eq(o.direct, 1);
	ck_assert_int_eq(o.published, 0);
	ck_assert_int_eq(asked, 0);
	ck_assert_str_eq(o.key, full.key);
	json_decref(list);
	json_decref(published);
	published = NULL;
}
END_TEST

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
	tcase_add_test(tc, test_published_lists);
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
