/* Unit tests for hash/job: the golden vector that pins the v1 key, field boundaries, the wire
 * JSON round trip and its validation, and the expected outputs. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash/job.h"

/* The v1 key of golden_job(). If this changes, the recipe changed: bump JOB_KEY_TAG. */
static const char golden_key[] = "5ddb5ba7b0d3428b1eb8ba0cef45efad6e6c2530edb7fa408b0e835f4c0d066c";

static void golden_job(struct job *job)
{
	static const char *const argv[] = { ROOT_RUSTC, "--crate-name", "cfg_if", "--edition=2018",
		"/cachepot/registry/cfg-if-1.0.0/src/lib.rs", "--crate-type", "lib",
		"--emit=dep-info,metadata,link", "-C", "metadata=0123456789abcdef", "-C",
		"extra-filename=-0123456789abcdef", "--out-dir", ROOT_OUT, "-L",
		"dependency=/cachepot/target/debug/deps", "--cap-lints", "allow" };
	memset(job, 0, sizeof(*job));
	snprintf(job->toolchain, sizeof(job->toolchain), "%s",
		 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	job->argc = sizeof(argv) / sizeof(argv[0]);
	job->argv = calloc(job->argc, sizeof(char *));
	for (size_t i = 0; i < job->argc; i++)
		job->argv[i] = strdup(argv[i]);
	job->n_env = 2;
	job->env = calloc(2, sizeof(*job->env));
	job->env[0].name = strdup("CARGO_PKG_VERSION");
	job->env[0].value = strdup("1.0.0");
	job->env[1].name = strdup("CARGO_PKG_NAME");
	job->env[1].value = strdup("cfg-if");
	job->cwd = strdup("/cachepot/cwd");
	job->n_inputs = 1;
	job->inputs = calloc(1, sizeof(*job->inputs));
	job->inputs[0].path = strdup("/cachepot/registry/cfg-if-1.0.0/src/lib.rs");
	job->inputs[0].mode = 0644;
	for (int i = 0; i < DIGEST_SIZE; i++)
		job->inputs[0].sha256[i] = (unsigned char)i;
	ck_assert_int_eq(job_normalise(job), 0);
}

static void key_hex(const struct job *job, char hex[DIGEST_HEX_SIZE])
{
	unsigned char key[DIGEST_SIZE];
	ck_assert_int_eq(job_key(job, key, NULL), 0);
	digest_to_hex(key, hex);
}

START_TEST(test_golden)
{
	struct job job;
	char hex[DIGEST_HEX_SIZE];
	golden_job(&job);
	ck_assert_str_eq(job.env[0].name, "CARGO_PKG_NAME"); /* normalised order */
	key_hex(&job, hex);
	ck_assert_str_eq(hex, golden_key);
	job_release(&job);
}
END_TEST

START_TEST(test_every_field_counts)
{
	struct job job;
	char base[DIGEST_HEX_SIZE], hex[DIGEST_HEX_SIZE];
	char *saved;

	golden_job(&job);
	key_hex(&job, base);
	/* a boundary moved between two arguments: "--crate-name","cfg_if" -> "--crate-namec","fg_if" */
	saved = job.argv[1];
	job.argv[1] = strdup("--crate-namec");
	free(job.argv[2]);
	job.argv[2] = strdup("fg_if");
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	free(job.argv[1]);
	job.argv[1] = saved;
	free(job.argv[2]);
	job.argv[2] = strdup("cfg_if");
	key_hex(&job, hex);
	ck_assert_str_eq(hex, base);
	job.inputs[0].sha256[31] ^= 1;
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	job.inputs[0].sha256[31] ^= 1;
	job.inputs[0].mode = 0755;
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	job.inputs[0].mode = 0644;
	job.toolchain[63] = '0';
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	job.toolchain[63] = 'f';
	free(job.env[1].value);
	job.env[1].value = strdup("1.0.1");
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	free(job.env[1].value);
	job.env[1].value = strdup("1.0.0");
	free(job.cwd);
	job.cwd = strdup("/cachepot/cwd/x");
	key_hex(&job, hex);
	ck_assert_str_ne(hex, base);
	job_release(&job);
}
END_TEST

START_TEST(test_json_round_trip)
{
	struct job job, back;
	char a[DIGEST_HEX_SIZE], b[DIGEST_HEX_SIZE], err[200];
	json_t *j;
	char *text;

	golden_job(&job);
	j = job_to_json(&job);
	ck_assert_ptr_nonnull(j);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	j = json_loads(text, 0, NULL);
	ck_assert_int_eq(job_from_json(j, &back, err, sizeof(err)), 0);
	key_hex(&job, a);
	key_hex(&back, b);
	ck_assert_str_eq(a, b);
	json_decref(j);
	free(text);
	job_release(&job);
	job_release(&back);
}
END_TEST

/* Take the golden job's JSON, apply EDIT (a JSON patch of one member), expect refusal. */
static void expect_refused(const char *member, json_t *value)
{
	struct job job, back;
	char err[200] = "";
	json_t *j;
	golden_job(&job);
	j = job_to_json(&job);
	json_object_set_new(j, member, value);
	ck_assert_int_eq(job_from_json(j, &back, err, sizeof(err)), -EINVAL);
	ck_assert_msg(err[0] != '\0', "no message for a bad %s", member);
	json_decref(j);
	job_release(&job);
}

static json_t *inputs_with(const char *path, int mode, const char *sha)
{
	return json_pack("[{s:s,s:i,s:s}]", "path", path, "mode", mode, "sha256", sha);
}

START_TEST(test_validation)
{
	static const char sha[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	struct job back;
	char err[200];
	expect_refused("version", json_integer(2));
	expect_refused("toolchain", json_string("xyz"));
	expect_refused("cwd", json_string("/etc"));
	expect_refused("cwd", json_string("/cachepot/../etc"));
	expect_refused("argv", json_pack("[s]", "/usr/bin/rustc"));
	expect_refused("argv", json_pack("[s,s]", ROOT_RUSTC, "@/etc/passwd"));
	expect_refused("argv", json_array());
	expect_refused("env", json_pack("[[s,s],[s,s]]", "A", "1", "A", "2"));
	expect_refused("env", json_pack("[[s]]", "A"));
	expect_refused("env", json_pack("[[s,s]]", "A=B", "1"));
	expect_refused("inputs", inputs_with("/cachepot/registry/../../etc/passwd", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot/registry/./a", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot//a", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot/a/", 0644, sha));
	expect_refused("inputs", inputs_with("/etc/passwd", 0644, sha));
	expect_refused("inputs", inputs_with("relative/a", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot/out/libx.rlib", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot/out", 0644, sha));
	expect_refused("inputs", inputs_with("/cachepot/a", 04755, sha));
	expect_refused("inputs", inputs_with("/cachepot/a", 0644, "ABC"));
	expect_refused("inputs", json_pack("[{s:s,s:i,s:s},{s:s,s:i,s:s}]", "path", "/cachepot/a", "mode",
					   0644, "sha256", sha, "path", "/cachepot/a", "mode", 0644, "sha256", sha));
	expect_refused("inputs", json_stringn("/cachepot/a\0b", 13));
	json_t *one = json_integer(1);
	ck_assert_int_eq(job_from_json(one, &back, err, sizeof(err)), -EINVAL);
	json_decref(one);
	ck_assert(job_path_valid("/cachepot/out-dir/gen.rs"));
	ck_assert(!job_path_valid("/cachepot/out/gen.rs"));
	ck_assert(!job_path_valid("/cachepot"));
}
END_TEST

START_TEST(test_expected_outputs)
{
	struct job job;
	char **names;
	size_t n;
	golden_job(&job);
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "libcfg_if-0123456789abcdef.rlib");
	ck_assert_str_eq(names[1], "libcfg_if-0123456789abcdef.rmeta");
	ck_assert_str_eq(names[2], "cfg_if-0123456789abcdef.d");
	job_names_free(names, n);
	free(job.argv[7]);
	job.argv[7] = strdup("--emit=metadata");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "libcfg_if-0123456789abcdef.rmeta");
	job_names_free(names, n);
	free(job.argv[11]);
	job.argv[11] = strdup("extra-filename=/../../x");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	job_release(&job);
}
END_TEST

/* A job that links carries its link part's id: in the key (field 'L'), in the wire JSON, and
 * its outputs are named by crate type. */
START_TEST(test_link_jobs)
{
	static const char link[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	struct job job, back;
	char plain[DIGEST_HEX_SIZE], linked[DIGEST_HEX_SIZE], other[DIGEST_HEX_SIZE], err[200];
	char **names;
	size_t n;
	json_t *j;

	golden_job(&job);
	key_hex(&job, plain);
	memcpy(job.link_toolchain, link, DIGEST_HEX_SIZE);
	key_hex(&job, linked);
	ck_assert_str_ne(plain, linked);
	job.link_toolchain[0] = 'e';
	key_hex(&job, other);
	ck_assert_str_ne(other, linked);
	job.link_toolchain[0] = 'f';
	j = job_to_json(&job);
	ck_assert_str_eq(json_string_value(json_object_get(j, "link_toolchain")), link);
	ck_assert_int_eq(job_from_json(j, &back, err, sizeof(err)), 0);
	ck_assert_str_eq(back.link_toolchain, link);
	key_hex(&back, other);
	ck_assert_str_eq(other, linked);
	job_release(&back);
	json_object_set_new(j, "link_toolchain", json_string("not-hex"));
	ck_assert_int_eq(job_from_json(j, &back, err, sizeof(err)), -EINVAL);
	json_decref(j);

	free(job.argv[6]);
	job.argv[6] = strdup("bin");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "cfg_if-0123456789abcdef");
	ck_assert_str_eq(names[2], "cfg_if-0123456789abcdef.d");
	job_names_free(names, n);
	free(job.argv[6]);
	job.argv[6] = strdup("proc-macro");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "libcfg_if-0123456789abcdef.so");
	job_names_free(names, n);
	job_release(&job);
}
END_TEST

/* A C job: a preprocessed unit compiled with -c to one object over the C part. */
static const char golden_c_key[] = "6c2033780290154a2cb4948bbb45f7562fb38a280d1400742c0219d55d3ae8bd";

static void golden_c_job(struct job *job)
{
	static const char *const argv[] = { ROOT_C_DRIVER, "-O0", "-ffunction-sections", "-fdata-sections",
		"-fPIC", "-g", "-fno-omit-frame-pointer", "-m64", "-Wall", "-Wextra", "-x", "cpp-output", "-c",
		ROOT_C_UNIT "/squares.i", "-o", ROOT_OUT "/squares.o" };
	memset(job, 0, sizeof(*job));
	job->kind = JOB_KIND_C;
	snprintf(job->toolchain, sizeof(job->toolchain), "%s",
		 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	job->argc = sizeof(argv) / sizeof(argv[0]);
	job->argv = calloc(job->argc, sizeof(char *));
	for (size_t i = 0; i < job->argc; i++)
		job->argv[i] = strdup(argv[i]);
	job->n_env = 1;
	job->env = calloc(1, sizeof(*job->env));
	job->env[0].name = strdup("PATH");
	job->env[0].value = strdup(ROOT_LINK_PATH);
	job->cwd = strdup(ROOT_CWD);
	job->n_inputs = 1;
	job->inputs = calloc(1, sizeof(*job->inputs));
	job->inputs[0].path = strdup(ROOT_C_UNIT "/squares.i");
	job->inputs[0].mode = 0644;
	for (int i = 0; i < DIGEST_SIZE; i++)
		job->inputs[0].sha256[i] = (unsigned char)i;
	ck_assert_int_eq(job_normalise(job), 0);
}

/* The C kind is in the key ('K') and the wire JSON; rustc jobs are as they were (the golden
 * vector above); a C job names ROOT_C_DRIVER or ROOT_CXX_DRIVER, has no link part, and its
 * one output is its -o's. */
START_TEST(test_c_jobs)
{
	static const char sha[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	struct job job, back;
	char c_key[DIGEST_HEX_SIZE], as_rustc[DIGEST_HEX_SIZE], other[DIGEST_HEX_SIZE], err[200];
	char **names;
	size_t n;
	json_t *j, *bad;

	golden_c_job(&job);
	key_hex(&job, c_key);
	ck_assert_str_eq(c_key, golden_c_key);
	job.kind = JOB_KIND_RUSTC;
	key_hex(&job, as_rustc);
	ck_assert_str_ne(as_rustc, c_key);
	job.kind = JOB_KIND_C;

	j = job_to_json(&job);
	ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "c");
	ck_assert_int_eq(job_from_json(j, &back, err, sizeof(err)), 0);
	ck_assert_int_eq(back.kind, JOB_KIND_C);
	key_hex(&back, other);
	ck_assert_str_eq(other, c_key);
	job_release(&back);
	/* the rustc job's JSON has no kind */
	{
		struct job rustc_job;
		json_t *rj;
		golden_job(&rustc_job);
		rj = job_to_json(&rustc_job);
		ck_assert_ptr_null(json_object_get(rj, "kind"));
		json_decref(rj);
		job_release(&rustc_job);
	}

	bad = json_deep_copy(j);
	json_object_set_new(bad, "kind", json_string("go"));
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), -EINVAL);
	json_decref(bad);
	bad = json_deep_copy(j);
	json_array_set_new(json_object_get(bad, "argv"), 0, json_string(ROOT_RUSTC));
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), -EINVAL);
	json_decref(bad);
	bad = json_deep_copy(j);
	json_array_set_new(json_object_get(bad, "argv"), 0, json_string("/usr/bin/gcc"));
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), -EINVAL);
	json_decref(bad);
	bad = json_deep_copy(j);
	json_array_set_new(json_object_get(bad, "argv"), 0, json_string(ROOT_CXX_DRIVER));
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), 0);
	job_release(&back);
	json_decref(bad);
	bad = json_deep_copy(j);
	json_object_set_new(bad, "link_toolchain", json_string(sha));
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), -EINVAL);
	json_decref(bad);
	/* a rustc job may not name a C driver */
	bad = json_deep_copy(j);
	json_object_del(bad, "kind");
	ck_assert_int_eq(job_from_json(bad, &back, err, sizeof(err)), -EINVAL);
	json_decref(bad);
	json_decref(j);

	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "squares.o");
	job_names_free(names, n);
	free(job.argv[15]);
	job.argv[15] = strdup(ROOT_OUT "/sub/squares.o");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	free(job.argv[15]);
	job.argv[15] = strdup(ROOT_OUT "/squares.d");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	free(job.argv[15]);
	job.argv[15] = strdup("/tmp/squares.o");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	free(job.argv[15]);
	job.argv[15] = strdup(ROOT_OUT "/..");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	free(job.argv[14]);
	job.argv[14] = strdup("-c");
	ck_assert_int_eq(job_expected_outputs(&job, &names, &n), -EINVAL);
	job_release(&job);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("job");
	TCase *tc = tcase_create("job");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_every_field_counts);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_validation);
	tcase_add_test(tc, test_expected_outputs);
	tcase_add_test(tc, test_link_jobs);
	tcase_add_test(tc, test_c_jobs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
