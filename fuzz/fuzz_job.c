/* libFuzzer target: the daemon's parser of client jobs (hash/job.h).
 *
 * The input is a request body, loaded as the daemon does (json_loadb with
 * JSON_REJECT_DUPLICATES), then given to job_from_json. A job that parses goes on as in the
 * daemon: job_key (with the --explain dump, written to memory) and job_expected_outputs. Checks
 * beyond "no crash": an accepted job carries no @argfile and only canonical input paths; every
 * expected output is one path component (the daemon joins it onto the output directory); and
 * job_to_json of an accepted job parses back to the same key.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hash/job.h"

static void check_outputs(const struct job *job)
{
	char **names = NULL;
	size_t n = 0;
	int ret = job_expected_outputs(job, &names, &n);

	if (ret != 0 && ret != -EINVAL && ret != -ENOMEM)
		abort();
	if (ret != 0 && (names || n))
		abort();
	if (n > 3)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!names[i] || !names[i][0] || strchr(names[i], '/') || strcmp(names[i], ".") == 0
		    || strcmp(names[i], "..") == 0)
			abort();
	job_names_free(names, n);
}

static void check_round_trip(const struct job *job, const unsigned char key[DIGEST_SIZE])
{
	unsigned char again[DIGEST_SIZE];
	struct job copy;
	char err[256];
	json_t *json = job_to_json(job);

	if (!json)
		return;
	if (job_from_json(json, &copy, err, sizeof(err)) != 0)
		abort();
	if (job_key(&copy, again, NULL) == 0 && memcmp(key, again, DIGEST_SIZE) != 0)
		abort();
	job_release(&copy);
	json_decref(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char key[DIGEST_SIZE];
	json_error_t jerr;
	struct job job;
	char err[256];
	char *dump = NULL;
	size_t dump_len = 0;
	FILE *f;
	json_t *json = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);

	if (!json)
		return 0;
	if (job_from_json(json, &job, err, sizeof(err)) != 0) {
		if (!memchr(err, '\0', sizeof(err)))
			abort();
		goto out;
	}
	for (size_t i = 0; i < job.argc; i++)
		if (job.argv[i][0] == '@')
			abort();
	for (size_t i = 0; i < job.n_inputs; i++)
		if (!job_path_valid(job.inputs[i].path))
			abort();
	if (!job_path_valid(job.cwd))
		abort();
	f = open_memstream(&dump, &dump_len);
	if (job_key(&job, key, f) == 0) {
		check_outputs(&job);
		check_round_trip(&job, key);
	}
	if (f)
		fclose(f);
	free(dump);
	job_release(&job);
out:
	json_decref(json);
	return 0;
}
