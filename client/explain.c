/* `cachepot --explain RUSTC ARGS...` (or `CC ARGS...`): the job and key of an invocation,
 * compiling nothing (a C compile's preprocessor runs: its output is the job's input). */
#include "config.h"

#include "client/explain.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <limits.h>

#include "client/compiler.h"
#include "hash/c_invocation.h"
#include "hash/invocation.h"

extern char **environ;

/* The C and C++ half: the job, the C part's files, the preprocessor's time. */
static int explain_c(const char *driver, int argc, char **argv, const char *cache_dir, int dump)
{
	struct c_invocation_options options = { .cache_dir = cache_dir, .envp = environ };
	struct c_invocation ci;
	json_t *out = NULL, *job = NULL;
	char key[DIGEST_HEX_SIZE] = "";
	int ret, status = 2;

	ret = c_invocation_build(&ci, driver, argv[0], argc - 1, argv + 1, &options);
	if (ret < 0) {
		fprintf(stderr, "cachepot: --explain: %s\n", strerror(-ret));
		goto out;
	}
	if (ci.reason == C_CACHEABLE)
		digest_to_hex(ci.inv.key, key);
	if (ci.inv.job.argv) {
		job = job_to_json(&ci.inv.job);
		if (!job)
			goto out;
	}
	out = json_pack("{s:s?,s:s,s:b,s:s,s:s,s:s,s:I,s:I,s:I}", "key", key[0] ? key : NULL, "kind", "c",
			"cacheable", ci.reason == C_CACHEABLE, "reason", c_reason_name(ci.reason), "detail",
			ci.reason_detail, "compiler", driver, "us_toolchain", (json_int_t)ci.us_toolchain,
			"us_preprocess", (json_int_t)ci.us_preprocess, "us_hash", (json_int_t)ci.us_hash);
	if (!out)
		goto out;
	if (job) {
		json_object_set(out, "toolchain", json_object_get(job, "toolchain"));
		json_object_set(out, "argv", json_object_get(job, "argv"));
		json_object_set(out, "env", json_object_get(job, "env"));
		json_object_set(out, "cwd", json_object_get(job, "cwd"));
		json_object_set(out, "inputs", json_object_get(job, "inputs"));
	}
	if (ci.inv.toolchain.id[0]) {
		json_t *files = toolchain_files_to_json(&ci.inv.toolchain);
		json_object_set_new(out, "c_toolchain", json_pack("{s:s,s:o}", "id", ci.inv.toolchain.id, "files",
								 files ? files : json_null()));
	}
	if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		goto out;
	fputc('\n', stdout);
	if (dump && ci.reason == C_CACHEABLE) {
		unsigned char again[DIGEST_SIZE];
		fflush(stdout);
		if (job_key(&ci.inv.job, again, stderr) < 0)
			goto out;
	}
	status = 0;
out:
	json_decref(job);
	json_decref(out);
	c_invocation_release(&ci);
	return status;
}

int explain_command(int argc, char **argv, const char *cache_dir)
{
	struct invocation_options options = { .cache_dir = cache_dir, .envp = environ };
	struct invocation inv;
	json_t *out = NULL, *job = NULL;
	char key[DIGEST_HEX_SIZE] = "";
	int dump = 0, ret, status = 2;

	if (argc > 0 && strcmp(argv[0], "--dump") == 0) {
		dump = 1;
		argc--;
		argv++;
	}
	if (argc < 1) {
		fprintf(stderr, "usage: cachepot --explain [--dump] RUSTC|CC ARGS...\n");
		return 2;
	}
	{
		char path[PATH_MAX];
		if (compiler_find(argv[0], path, sizeof(path)) == 0
		    && compiler_identify(argv[0], path, argc - 1, argv + 1) == COMPILER_C)
			return explain_c(path, argc, argv, cache_dir, dump);
	}
	ret = invocation_build(&inv, argv[0], argc - 1, argv + 1, &options);
	if (ret < 0) {
		fprintf(stderr, "cachepot: --explain: %s\n", strerror(-ret));
		goto out;
	}
	if (inv.reason == RUSTC_CACHEABLE)
		digest_to_hex(inv.key, key);
	if (inv.job.argv) {
		job = job_to_json(&inv.job);
		if (!job)
			goto out;
	}
	out = json_pack("{s:s?,s:b,s:s,s:s,s:I,s:I,s:I}", "key", key[0] ? key : NULL, "cacheable",
			inv.reason == RUSTC_CACHEABLE, "reason", rustc_reason_name(inv.reason), "detail",
			inv.reason_detail, "us_toolchain", (json_int_t)inv.us_toolchain, "us_dep_info",
			(json_int_t)inv.us_dep_info, "us_hash", (json_int_t)inv.us_hash);
	if (!out)
		goto out;
	if (job) {
		json_object_set(out, "toolchain", json_object_get(job, "toolchain"));
		json_object_set(out, "argv", json_object_get(job, "argv"));
		json_object_set(out, "env", json_object_get(job, "env"));
		json_object_set(out, "cwd", json_object_get(job, "cwd"));
		json_object_set(out, "inputs", json_object_get(job, "inputs"));
	}
	/* A unit that links: the linker rustc would run, the link part's id and files (where
	 * each comes from), and the inputs only the link reads. */
	if (inv.link.id[0]) {
		json_t *files = toolchain_files_to_json(&inv.link), *extra = json_array();
		for (size_t i = 0; extra && i < inv.job.n_inputs; i++) {
			const char *p = inv.job.inputs[i].path;
			size_t n = strlen(p);
			if ((n > 5 && strcmp(p + n - 5, ".rlib") == 0) || (n > 2 && strcmp(p + n - 2, ".a") == 0)
			    || (n > 3 && strcmp(p + n - 3, ".so") == 0))
				json_array_append_new(extra, json_string(p));
		}
		json_object_set_new(out, "link", json_pack("{s:s,s:s,s:s,s:o,s:o}", "linker", inv.linker,
							  "link_toolchain", inv.link.id, "path", ROOT_LINK_PATH,
							  "files", files ? files : json_null(),
							  "link_inputs", extra ? extra : json_null()));
	}
	if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		goto out;
	fputc('\n', stdout);
	if (dump && inv.reason == RUSTC_CACHEABLE) {
		unsigned char again[DIGEST_SIZE];
		fflush(stdout);
		if (job_key(&inv.job, again, stderr) < 0)
			goto out;
	}
	status = 0;
out:
	json_decref(job);
	json_decref(out);
	invocation_release(&inv);
	return status;
}
